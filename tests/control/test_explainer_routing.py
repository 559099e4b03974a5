"""Which replica of a unit a request goes to: V1 ``:explain`` to the explainer when there is
one (KServe's ExplainPrefix), everything else to the transformer or the predictor."""

from __future__ import annotations

from typing import Any, cast

from modelport.control.backends.process import Replica
from modelport.control.revisions import Unit
from modelport.control.routing import target_of


def replica(name: str) -> Replica:
    return cast(Replica, name)  # target_of only hands the replica back


def unit(**parts: Any) -> Unit:
    return Unit(predictor=replica("predictor"), **parts)


def test_explain_goes_to_the_explainer() -> None:
    u = unit(explainer=replica("explainer"))
    assert target_of(u, "/v1/models/iris:explain") == "explainer"
    assert target_of(u, "/v1/models/my_model-2:explain") == "explainer"


def test_everything_else_goes_to_the_entry() -> None:
    u = unit(explainer=replica("explainer"), transformer=replica("transformer"))
    for path in (
        "/v1/models/iris:predict",
        "/v2/models/iris/infer",
        "/v2/models/iris/explain",  # KServe routes no V2 explain to the explainer
        "/v1/models/iris:explain/more",
        "/v1/models/a/b:explain",
        "/v1/models/iris:explainx",
    ):
        assert target_of(u, path) == "transformer", path


def test_without_an_explainer_explain_stays_on_the_entry() -> None:
    assert target_of(unit(), "/v1/models/iris:explain") == "predictor"
