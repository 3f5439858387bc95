"""The CPU attention the evaluation generates with: grouped-query attention under a padding mask gives what
transformers' own sdpa gives (it copies the key/value heads first), for prefill, cached decoding and training."""
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rsft.models import cpu_attention
from rsft.specs import ModelSpec, WorkerSpec
from rsft.catalogue import preset


@pytest.fixture(scope="module")
def pair(tiny_model_dir):
    """The tiny GQA model (4 query heads, 2 key/value heads) under both attentions, and a left-padded batch."""
    models = [AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32, attn_implementation=impl).eval()
              for impl in ("sdpa", cpu_attention())]
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.padding_side = "left"
    batch = tok(["Using the numbers [3, 4, 5], make 27.", "Capital of France?", "2 + 2 ="], return_tensors="pt",
                padding=True)
    assert (batch["attention_mask"] == 0).any()  # the rows really are padded: the mask is in play
    return models, tok, batch


def test_grouped_attention_scores_like_transformers_sdpa_with_a_padding_mask(pair):
    (ref, gqa), _, batch = pair
    assert gqa.config._attn_implementation == "sdpa_gqa" and ref.config.num_key_value_heads == 2
    with torch.no_grad():
        a, b = ref(**batch).logits, gqa(**batch).logits
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(b[real], a[real], rtol=1e-5, atol=1e-5)


def test_grouped_attention_generates_the_same_tokens_with_the_cache(pair):
    (ref, gqa), tok, batch = pair
    with torch.no_grad():
        a = ref.generate(**batch, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
        b = gqa.generate(**batch, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
    assert torch.equal(a, b)


def test_grouped_attention_without_a_mask_stays_causal(pair):
    (ref, gqa), tok, _ = pair
    ids = tok("a longer unpadded prompt of several tokens", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        a, b = ref(input_ids=ids).logits, gqa(input_ids=ids).logits
        first = gqa(input_ids=ids[:, :3]).logits  # a later token must not change an earlier position's output
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(first, b[:, :3], rtol=1e-5, atol=1e-5)


def test_the_cpu_worker_builds_its_models_with_grouped_attention(tiny_model_dir, tmp_path):
    from rsft.eval_worker import hf_model

    spec = WorkerSpec(model=ModelSpec(base=tiny_model_dir), step=0, tasks=("countdown",), preset_name="quickstart",
                      preset=preset("quickstart"), data_dir=str(tmp_path), out_dir=str(tmp_path / "out"),
                      backend="hf", device="cpu", batch_size=64)
    lm = hf_model(spec)
    assert lm.model.config._attn_implementation == "sdpa_gqa" and lm.batch_size == 64
    assert type(lm).__name__ == "CpuHFLM"  # samples through rsft.sampling


def test_the_cpu_worker_samples_each_question_the_same_in_any_batch(tiny_model_dir, tmp_path):
    from collections import Counter

    from rsft.eval_worker import hf_model

    spec = WorkerSpec(model=ModelSpec(base=tiny_model_dir), step=0, tasks=("countdown",), preset_name="quickstart",
                      preset=preset("quickstart"), data_dir=str(tmp_path), out_dir=str(tmp_path / "out"),
                      backend="hf", device="cpu", batch_size=64)
    lm = hf_model(spec)
    prompts = ["Using the numbers [3, 5, 7], make 22.", "What is 4 + 9?", "Name the capital of France, briefly."]

    def replies(texts):
        ids, mask = lm.tok_batch_encode(texts)
        out = lm._model_generate(ids, max_length=ids.shape[1] + 12, stop=["<|im_end|>"], attention_mask=mask,
                                 do_sample=True, temperature=0.6, top_p=0.95)
        return [row[ids.shape[1]:].tolist() for row in out]

    together = replies(prompts)
    lm.prompts_keyed = Counter()  # a fresh evaluation of the same model
    alone = [replies([p])[0] for p in prompts]
    assert together == alone
    assert replies([prompts[0]])[0] != together[0]  # the question's second repeat: another reply
