"""A custom model run as a transformer: the predictor variables the platform's controller sets
(read by modelport.settings.predictor_link) point it at its predictor."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from modelport.protocol.replica_key import REPLICA_KEY_HEADER
from modelport.runtimes import create_model

TRANSFORMER = """
import os

from modelport import Model


class Transformer(Model):
    def load(self):
        # What model code finds in its environment once the server has started it.
        self.key_seen_by_load = os.environ.get("MODELPORT_PREDICTOR_KEY")
        self.ready = True
        return True
"""

KEY_HEADER = REPLICA_KEY_HEADER.decode()


@pytest.fixture
def transformer_dir(tmp_path: Path) -> Path:
    (tmp_path / "model.py").write_text(textwrap.dedent(TRANSFORMER))
    return tmp_path


def test_predictor_variables_point_the_model_at_its_predictor(
    transformer_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELPORT_PREDICTOR_HOST", "127.0.0.1:9001")
    monkeypatch.setenv("MODELPORT_PREDICTOR_PROTOCOL", "v2")
    monkeypatch.setenv("MODELPORT_PREDICTOR_KEY", "replica-secret")
    model = create_model("t", transformer_dir, "custom")
    assert model.predictor_host == "127.0.0.1:9001"
    assert model.protocol == "v2"
    assert model.predictor_headers[KEY_HEADER] == "replica-secret"
    # The key is taken out of the environment before the model's own code runs.
    assert "MODELPORT_PREDICTOR_KEY" not in os.environ
    assert vars(model)["key_seen_by_load"] is None


def test_without_a_protocol_variable_the_models_own_protocol_stays(
    transformer_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELPORT_PREDICTOR_HOST", "127.0.0.1:9001")
    monkeypatch.delenv("MODELPORT_PREDICTOR_PROTOCOL", raising=False)
    monkeypatch.delenv("MODELPORT_PREDICTOR_KEY", raising=False)
    model = create_model("t", transformer_dir, "custom")
    assert model.predictor_host == "127.0.0.1:9001"
    assert model.protocol == "v1"
    assert KEY_HEADER not in model.predictor_headers


def test_without_a_host_the_model_is_not_a_transformer(
    transformer_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODELPORT_PREDICTOR_HOST", raising=False)
    monkeypatch.setenv("MODELPORT_PREDICTOR_PROTOCOL", "v2")
    monkeypatch.setenv("MODELPORT_PREDICTOR_KEY", "replica-secret")
    model = create_model("t", transformer_dir, "custom")
    assert not model.predictor_host
    assert model.protocol == "v1"
    assert KEY_HEADER not in model.predictor_headers
    # Taken all the same: model code never sees a key.
    assert "MODELPORT_PREDICTOR_KEY" not in os.environ
