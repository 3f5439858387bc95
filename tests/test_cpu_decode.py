"""The CPU evaluation's decoding loop (rsft.cpu_decode): rows that have ended leave the batch, and every row gets
the tokens transformers' generate gives it, ended where generate ends it (end of sequence, stop string, budget)."""
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rsft import cpu_decode
from rsft.cpu_decode import StopStrings, decode
from rsft.kv_cache import PreallocatedLayer, preallocated_cache
from rsft.models import cpu_attention

PROMPTS = ["Using the numbers [3, 4, 5], make 27.", "Capital of France?", "2 + 2 =", "Name three colours, please.",
           "What is the square root of 81? Think step by step."]
NEW = 16


@pytest.fixture(scope="module")
def setup(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32,
                                                 attn_implementation=cpu_attention()).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.padding_side = "left"
    batch = tok(PROMPTS, return_tensors="pt", padding=True)
    return model, tok, batch


def greedy(scores, rows, step):
    return scores.argmax(dim=-1, keepdim=True)


def reference(model, tok, batch, eos, **kw):
    with torch.no_grad():
        return model.generate(**batch, max_new_tokens=NEW, do_sample=False, pad_token_id=tok.pad_token_id,
                              eos_token_id=eos, **kw)


def run(model, tok, batch, budgets, eos, **kw):
    width = batch["input_ids"].shape[1]
    cache = preallocated_cache(model.config, width + int(budgets.max()))
    return decode(model, batch["input_ids"], batch["attention_mask"], budgets, greedy, eos_ids=eos,
                  pad_id=tok.pad_token_id, cache=cache, **kw)


def test_rows_that_end_leave_the_batch_and_every_row_gets_generates_tokens(setup, monkeypatch):
    model, tok, batch = setup
    width = batch["input_ids"].shape[1]
    free = reference(model, tok, batch, eos=tok.eos_token_id)
    end = int(free[0, width + 3])  # the token row 0 generates 4th: an end of sequence for it (others may hit it)
    expected = reference(model, tok, batch, eos=end)
    selected, own = [], PreallocatedLayer.batch_select_indices

    def spy(self, indices):
        selected.append(len(indices))
        own(self, indices)

    monkeypatch.setattr(PreallocatedLayer, "batch_select_indices", spy)
    got = run(model, tok, batch, torch.full((len(PROMPTS),), NEW), eos=[end])
    assert selected, "no row left the batch: the test does not exercise the compaction"
    assert torch.equal(got, expected)
    assert (got[0, width + 4:] == tok.pad_token_id).all()  # ended at its end token, padded after


def test_each_row_ends_at_its_own_budget(setup):
    model, tok, batch = setup
    width = batch["input_ids"].shape[1]
    expected = reference(model, tok, batch, eos=None)
    budgets = torch.tensor([3, 16, 7, 1, 12])
    got = run(model, tok, batch, budgets, eos=[])
    assert got.shape[1] == width + 16
    for row, budget in enumerate(budgets.tolist()):
        assert torch.equal(got[row, :width + budget], expected[row, :width + budget])
        assert (got[row, width + budget:] == tok.pad_token_id).all()


def test_a_stop_string_ends_its_row_with_the_text_lm_eval_keeps(setup):
    """lm-eval's criterion stops generate only once every row has written a stop string, then cuts each reply at
    its first one: a row of the loop ends at its stop string, and the same text is kept."""
    model, tok, batch = setup
    width = batch["input_ids"].shape[1]
    free = reference(model, tok, batch, eos=None)
    stop = tok.decode(free[1, width + 5:width + 7])  # a string row 1 writes at its 6th and 7th tokens
    assert stop.strip(), "the tiny model wrote only spaces: choose other tokens"
    got = run(model, tok, batch, torch.full((len(PROMPTS),), NEW), eos=[], stops=StopStrings(tok, [stop]))

    def kept(ids):
        return tok.decode(ids, skip_special_tokens=True).split(stop)[0]

    assert [kept(r[width:]) for r in got] == [kept(r[width:]) for r in free]
    assert (got[1, width + 7:] == tok.pad_token_id).all()  # row 1 ended at its stop string


def test_a_callers_rule_ends_a_row(setup):
    model, tok, batch = setup
    width = batch["input_ids"].shape[1]
    expected = reference(model, tok, batch, eos=None)

    def ends(rows, generated):  # row 2 ends after its 5th token
        return (rows == 2) & (generated.shape[1] >= 5)

    got = run(model, tok, batch, torch.full((len(PROMPTS),), NEW), eos=[], ends=ends)
    assert torch.equal(got[2, :width + 5], expected[2, :width + 5])
    assert (got[2, width + 5:] == tok.pad_token_id).all()
    assert torch.equal(got[[0, 1, 3, 4]], expected[[0, 1, 3, 4]])


def test_the_cpu_worker_samples_the_replies_generate_sampled(tiny_model_dir, tmp_path):
    """CpuHFLM's loop against its generate path: the same keyed noise, the same replies."""
    from collections import Counter

    from rsft.catalogue import preset
    from rsft.eval_worker import hf_model
    from rsft.lm_backends import kit_hflm
    from rsft.specs import ModelSpec, WorkerSpec

    spec = WorkerSpec(model=ModelSpec(base=tiny_model_dir), step=0, tasks=("countdown",), preset_name="quickstart",
                      preset=preset("quickstart"), data_dir=str(tmp_path), out_dir=str(tmp_path / "out"),
                      backend="hf", device="cpu", batch_size=64)
    lm = hf_model(spec)
    ids, mask = lm.tok_batch_encode(PROMPTS)
    kw = dict(max_length=ids.shape[1] + 24, stop=["<|im_end|>"], attention_mask=mask, do_sample=True,
              temperature=0.6, top_p=0.95)
    loop = lm._model_generate(ids, **kw)
    lm.prompts_keyed = Counter()
    generate = kit_hflm()._model_generate(lm, ids, **kw)  # KitHFLM's: generate, through CpuHFLM._generate
    assert torch.equal(loop, generate)


def test_a_model_with_other_logits_processors_is_decoded_by_generate(tiny_model_dir, tmp_path, monkeypatch):
    from rsft.catalogue import preset
    from rsft.eval_worker import hf_model
    from rsft.lm_backends import plain_generation
    from rsft.specs import ModelSpec, WorkerSpec

    spec = WorkerSpec(model=ModelSpec(base=tiny_model_dir), step=0, tasks=("countdown",), preset_name="quickstart",
                      preset=preset("quickstart"), data_dir=str(tmp_path), out_dir=str(tmp_path / "out"),
                      backend="hf", device="cpu", batch_size=64)
    monkeypatch.setattr(cpu_decode, "decode", lambda *a, **k: pytest.fail("the loop ran"))
    lm = hf_model(spec)
    assert plain_generation(lm.model.generation_config)
    lm.model.generation_config.repetition_penalty = 1.3
    assert not plain_generation(lm.model.generation_config)
    ids, mask = lm.tok_batch_encode(PROMPTS[:2])
    with torch.no_grad():
        expected = lm.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=6, do_sample=False,
                                     repetition_penalty=1.3, pad_token_id=lm.tokenizer.pad_token_id)
    got = lm._model_generate(ids, max_length=ids.shape[1] + 6, stop=[], attention_mask=mask, do_sample=False)
    assert torch.equal(got[:, :expected.shape[1]], expected)


def test_a_bfloat16_model_attends_over_float32_keys_with_the_same_scores(tiny_model_dir, monkeypatch):
    """Without AMX the CPU evaluation keeps a bfloat16 model's keys and values in float32 (rsft.models.
    cpu_cache_dtype): attention over the same values, in float32, as torch's bfloat16 kernel computes inside; the
    next-token scores agree to bfloat16's rounding (a random tiny bfloat16 model has near-ties, so its greedy
    tokens may part; the embedded model's replies are compared in bench/RESULTS.md)."""
    from rsft import models

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16,
                                                 attn_implementation=cpu_attention()).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.padding_side = "left"
    batch = tok(PROMPTS, return_tensors="pt", padding=True)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    scores = {}
    for store in (torch.bfloat16, torch.float32):
        cache = preallocated_cache(model.config, ids.shape[1] + 2, store)
        with torch.no_grad():
            first = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache).logits
            nxt = first[:, -1].argmax(-1, keepdim=True) * 0 + 42  # the same next token for both
            second = model(input_ids=nxt, attention_mask=torch.cat([mask, torch.ones_like(nxt)], 1),
                           position_ids=positions[:, -1:] + 1, past_key_values=cache).logits
        assert {layer.keys.dtype for layer in cache.layers} == {store}
        scores[store] = torch.cat([first[:, -1], second[:, -1]]).float()
    torch.testing.assert_close(scores[torch.float32], scores[torch.bfloat16], rtol=0, atol=0.05)
    monkeypatch.setattr(models, "Path", lambda _: type("F", (), {"read_text": lambda self: "fpu avx512_bf16"})())
    assert models.cpu_cache_dtype(torch.bfloat16) == torch.float32
    assert models.cpu_cache_dtype(torch.float32) == torch.float32
    monkeypatch.setattr(models, "Path", lambda _: type("F", (), {"read_text": lambda self: "avx512_bf16 amx_bf16"})())
    assert models.cpu_cache_dtype(torch.bfloat16) == torch.bfloat16  # AMX: measured fast in bfloat16 before
