"""CPU sampling (rsft.sampling): the nucleus transformers' top-p keeps, draws with its probabilities, and noise
keyed per question so that a reply does not depend on its batch."""
from collections import Counter

import pytest
import torch
from transformers.generation.logits_process import TopPLogitsWarper

from rsft.sampling import NucleusSample, as_greedy, draw, keyed_uniform, nucleus_mask, question_keys


@pytest.mark.parametrize("top_p", [0.5, 0.9, 0.95])
def test_the_nucleus_is_the_one_transformers_keeps(top_p):
    torch.manual_seed(0)
    peaked = torch.randn(32, 5000) * 8  # a model's next-token scores: the nucleus within the 64 most likely
    flat = torch.randn(4, 5000)  # thousands of tokens in the nucleus: the full sort
    for scores, tolerance in ((peaked, 0), (flat, 5)):
        theirs = TopPLogitsWarper(top_p)(None, scores.clone()) == float("-inf")
        ours = nucleus_mask(scores, top_p)
        assert int((theirs != ours).sum()) <= tolerance  # flat: float rounding at the boundary only
        assert not ours.all(-1).any()  # the most likely token always stays


def test_draws_follow_the_nucleus_probabilities():
    torch.manual_seed(1)
    logits = torch.tensor([3.0, 2.5, 2.0, 1.0, 0.0, -1.0, -4.0, -9.0])
    keep = ~nucleus_mask(logits[None], 0.9)[0]
    assert keep.tolist() == [True, True, True, False, False, False, False, False]  # 0.46 + 0.28 + 0.17 >= 0.9
    assert keep.tolist() == (TopPLogitsWarper(0.9)(None, logits[None].clone())[0] > float("-inf")).tolist()
    want = torch.softmax(logits.masked_fill(~keep, float("-inf")), -1)
    n = 40_000
    keys = torch.arange(n)  # n questions with the same scores: n independent draws
    got = torch.bincount(draw(logits.expand(n, -1), keys, 0, 0.9).flatten(), minlength=8) / n
    sigma = (want * (1 - want) / n).sqrt()
    assert ((got - want).abs() <= 5 * sigma + 1e-9).all(), (got, want)
    everything = torch.bincount(draw(logits.expand(n, -1), keys, 3, 1.0).flatten(), minlength=8) / n
    assert (everything - torch.softmax(logits, -1)).abs().max() < 0.01  # top_p 1: every token can come


def test_keyed_noise_is_uniform_and_independent_across_keys_steps_and_tokens():
    u = keyed_uniform(torch.arange(2000), 7, torch.arange(50).expand(2000, -1))
    assert 0 < float(u.min()) and float(u.max()) < 1
    counts = torch.histc(u, bins=10, min=0, max=1)
    assert (counts - 10_000).abs().max() < 5 * 100  # 100_000 draws: 10,000 per tenth, s.d. ~95
    assert abs(float(torch.corrcoef(torch.stack([u[:, 0], u[:, 1]]))[0, 1])) < 0.1  # neighbouring tokens
    other_step = keyed_uniform(torch.arange(2000), 8, torch.arange(50).expand(2000, -1))
    assert abs(float(torch.corrcoef(torch.stack([u.flatten(), other_step.flatten()]))[0, 1])) < 0.02
    assert torch.equal(u, keyed_uniform(torch.arange(2000), 7, torch.arange(50).expand(2000, -1)))


def test_the_hash_arithmetic_is_exact_32_bit_arithmetic():
    import random

    from rsft.sampling import _mix, _mul32

    def mix(x):  # lowbias32 on Python ints
        x ^= x >> 16
        x = (x * 0x7FEB352D) & 0xFFFFFFFF
        x ^= x >> 15
        x = (x * 0x846CA68B) & 0xFFFFFFFF
        return x ^ (x >> 16)

    rng = random.Random(0)
    xs = [0, 1, 0xFFFFFFFF, 0x80000000] + [rng.getrandbits(32) for _ in range(2000)]
    t = torch.tensor(xs, dtype=torch.int64)
    for c in (0x7FEB352D, 0x846CA68B, 0x9E3779B9):
        assert _mul32(t, c).tolist() == [(x * c) & 0xFFFFFFFF for x in xs]
    assert _mix(t).tolist() == [mix(x) for x in xs]


def test_the_extreme_hashes_stay_strictly_inside_0_1(monkeypatch):
    import rsft.sampling as sampling

    monkeypatch.setattr(sampling, "_mix", lambda x: torch.full_like(x, 0xFFFFFFFF))  # the largest hash there is
    assert float(keyed_uniform(torch.arange(3), 0, torch.arange(4).expand(3, -1)).max()) < 1.0
    monkeypatch.setattr(sampling, "_mix", lambda x: torch.zeros_like(x))  # the smallest
    assert float(keyed_uniform(torch.arange(3), 0, torch.arange(4).expand(3, -1)).min()) > 0.0


def test_a_rows_draw_does_not_depend_on_the_other_rows_of_its_batch():
    torch.manual_seed(3)
    scores = torch.randn(5, 300) * 6
    scores[3] = torch.randn(300) * 0.1  # flat: its nucleus needs the whole vocabulary
    keys = torch.tensor([11, 22, 33, 44, 55])
    together = draw(scores, keys, 4, 0.95)
    alone = torch.cat([draw(scores[i:i + 1], keys[i:i + 1], 4, 0.95) for i in range(5)])
    assert torch.equal(together, alone)
    assert not torch.equal(together, draw(scores, keys, 5, 0.95))  # another step: other noise


def test_question_keys_follow_the_prompt_and_its_repeat_not_the_padding():
    seen = Counter()
    context = torch.tensor([[0, 0, 5, 6], [7, 8, 5, 6], [0, 0, 5, 6]])  # rows 0 and 2: one prompt, padded
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1], [0, 0, 1, 1]])
    keys = question_keys(context, mask, 1234, seen)
    assert keys[0] != keys[2]  # two repeats of one question draw two replies
    again = question_keys(torch.tensor([[5, 6]]), torch.tensor([[1, 1]]), 1234, Counter())
    assert again[0] == keys[0]  # the same question, unpadded in another batch: the same key
    assert question_keys(torch.tensor([[5, 6]]), torch.tensor([[1, 1]]), 99, Counter())[0] != keys[0]  # seed


def test_the_processor_leaves_only_the_drawn_token_for_greedy_to_pick():
    torch.manual_seed(2)
    scores = torch.randn(6, 100) * 5
    out = NucleusSample(torch.arange(6), 3, temperature=0.6, top_p=0.95)(torch.zeros(6, 5, dtype=torch.long), scores)
    assert (torch.isfinite(out).sum(-1) == 1).all()
    assert not nucleus_mask(scores / 0.6, 0.95).gather(-1, out.argmax(-1, keepdim=True)).any()
    with pytest.raises(ValueError, match="temperature must be > 0"):
        NucleusSample(torch.arange(6), 3, temperature=0.0)


def test_generate_keywords_turn_sampling_into_the_processor_and_keep_greedy_as_is():
    greedy = {"do_sample": False, "max_gen_toks": 5}
    keys = torch.arange(2)
    assert as_greedy(greedy, keys, 3) is greedy
    kw = as_greedy({"do_sample": True, "temperature": 0.6, "top_p": 0.95, "until": ["x"]}, keys, 3)
    assert kw["do_sample"] is False and "temperature" not in kw and "top_p" not in kw and kw["until"] == ["x"]
    (sampler,) = kw["logits_processor"]
    assert (sampler.temperature, sampler.top_p, sampler.top_k) == (0.6, 0.95, 0)
    assert sampler.keys is keys and sampler.prompt_width == 3
