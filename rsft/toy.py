"""Random-weight models with the paper's real architectures, and a tokenizer trained locally, for machines that
cannot download weights (the GPU tests and benchmarks in bench/). Speed and memory depend on the shapes, not on
the weights, so a Qwen3-8B shape with random weights trains exactly as fast as Qwen3-8B-Base.

    python -m rsft.toy qwen3-1.7b /dev/shm/qwen3-1.7b     # writes config, safetensors, tokenizer
"""
from __future__ import annotations

import sys
from pathlib import Path

from rsft.model_shapes import QWEN3_SHAPES, QWEN3_VOCAB

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
# Qwen's ChatML layout without the system-prompt and tool branches: user turn, then the assistant's.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def corpus(n_rows: int = 400) -> list[str]:
    """Text in the shape of the training data: Countdown prompts and long-CoT traces, digits, LaTeX."""
    from rsft.countdown import make_dataset

    rows = make_dataset(n_rows, seed=123)
    extra = ["\\boxed{\\frac{1}{2}} \\sqrt{x^2+1} Let me double-check. Hmm, alternatively, wait."]
    return [r["prompt"] + "\n" + r["response"] for r in rows] + extra


def build_tokenizer(vocab_size: int = 4096):
    """A byte-level BPE trained in about a second on `corpus()`, with ChatML specials and a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_model(shape: str, out_dir: str | Path, device: str = "cpu") -> str:
    """Save a Qwen3 model of `shape` with random bf16 weights and the local tokenizer into out_dir."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    if shape not in QWEN3_SHAPES:
        raise ValueError(f"unknown shape '{shape}'; shapes: {', '.join(QWEN3_SHAPES)}")
    out = Path(out_dir)
    tok = build_tokenizer()
    vocab = len(tok) if shape == "qwen3-tiny" else QWEN3_VOCAB
    cfg = Qwen3Config(vocab_size=vocab, max_position_embeddings=40960, rope_theta=1_000_000.0,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, **QWEN3_SHAPES[shape])
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen3ForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


if __name__ == "__main__":
    dev = "cuda" if __import__("torch").cuda.is_available() else "cpu"
    print(build_model(sys.argv[1], sys.argv[2], device=dev))
