"""Label/field selectors (apimachinery's forms) and kubectl's ages."""

from __future__ import annotations

import pytest

from modelport.kube.selectors import SelectorError, field_matcher, label_matcher
from modelport.kube.tables import human_duration, wants_table


def obj(name: str = "a", namespace: str = "ns", **labels: str) -> dict:
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels}}


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ("", {}, True),
        ("app", {"app": "x"}, True),
        ("app", {}, False),
        ("!app", {}, True),
        ("app=x", {"app": "x"}, True),
        ("app==x", {"app": "y"}, False),
        ("app!=x", {}, True),
        ("app in (x, y)", {"app": "y"}, True),
        ("app notin (x,y)", {"app": "z"}, True),
        ("app notin (x,y)", {}, True),
        ("app=x,tier in (web)", {"app": "x", "tier": "web"}, True),
        ("example.com/app=x", {"example.com/app": "x"}, True),
    ],
)
def test_label_selectors(selector: str, labels: dict, matches: bool):
    assert label_matcher(selector)(obj(**labels)) is matches


@pytest.mark.parametrize(
    "selector", ["app in (x", "a b", "=x", "app=x y", "-app", "app=" + "x" * 70]
)
def test_bad_label_selectors(selector: str):
    with pytest.raises(SelectorError):
        label_matcher(selector)


def test_field_selectors():
    assert field_matcher("metadata.name=a")(obj("a"))
    assert not field_matcher("metadata.name=a,metadata.namespace!=ns")(obj("a"))
    with pytest.raises(SelectorError):
        field_matcher("status.phase=Running")
    with pytest.raises(SelectorError):
        field_matcher("metadata.name")


@pytest.mark.parametrize(
    ("seconds", "age"),
    [
        (-5, "<invalid>"),
        (-0.5, "0s"),
        (45, "45s"),
        (119, "119s"),
        (200, "3m20s"),
        (360, "6m"),
        (900, "15m"),
        (3 * 3600 + 600, "3h10m"),
        (5 * 3600, "5h"),
        (30 * 3600, "30h"),
        (3 * 86400 + 7200, "3d2h"),
        (20 * 86400, "20d"),
        (3 * 365 * 86400 + 86400 * 10, "3y10d"),
        (10 * 365 * 86400, "10y"),
    ],
)
def test_ages_as_kubectl_prints_them(seconds: float, age: str):
    assert human_duration(seconds) == age


def test_table_negotiation():
    assert wants_table("application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
    assert wants_table("application/json; as=Table; v=v1beta1; g=meta.k8s.io")
    assert not wants_table("application/json")
    assert not wants_table("")
