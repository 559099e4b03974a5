"""Tiny models and running servers for the OpenAI route tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.openai import tiny_models


@pytest.fixture(scope="session")
def gpt_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GPT-2 that never emits an end token (exact token counts), 64 positions."""
    return tiny_models.causal_lm(tmp_path_factory.mktemp("gpt"))


@pytest.fixture(scope="session")
def embed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT (BertModel) for text_embedding, 64 positions."""
    return tiny_models.bert(tmp_path_factory.mktemp("embed"), "BertModel")


ServerFactory = Callable[..., object]
