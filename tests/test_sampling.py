"""CPU sampling (rsft.sampling): the nucleus transformers' top-p keeps, and draws with its probabilities."""
import pytest
import torch
from transformers.generation.logits_process import TopPLogitsWarper

from rsft.sampling import NucleusSample, as_greedy, draw, nucleus_mask


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
    got = torch.bincount(draw(logits.expand(n, -1), 0.9).flatten(), minlength=8) / n
    sigma = (want * (1 - want) / n).sqrt()
    assert ((got - want).abs() <= 5 * sigma + 1e-9).all(), (got, want)
    everything = torch.bincount(draw(logits.expand(n, -1), 1.0).flatten(), minlength=8) / n
    assert (everything - torch.softmax(logits, -1)).abs().max() < 0.01  # top_p 1: every token can come


def test_the_processor_leaves_only_the_drawn_token_for_greedy_to_pick():
    torch.manual_seed(2)
    scores = torch.randn(6, 100) * 5
    out = NucleusSample(temperature=0.6, top_p=0.95)(None, scores)
    assert (torch.isfinite(out).sum(-1) == 1).all()
    assert not nucleus_mask(scores / 0.6, 0.95).gather(-1, out.argmax(-1, keepdim=True)).any()
    with pytest.raises(ValueError, match="temperature must be > 0"):
        NucleusSample(temperature=0.0)


def test_generate_keywords_turn_sampling_into_the_processor_and_keep_greedy_as_is():
    greedy = {"do_sample": False, "max_gen_toks": 5}
    assert as_greedy(greedy) is greedy
    kw = as_greedy({"do_sample": True, "temperature": 0.6, "top_p": 0.95, "until": ["x"]})
    assert kw["do_sample"] is False and "temperature" not in kw and "top_p" not in kw and kw["until"] == ["x"]
    (sampler,) = kw["logits_processor"]
    assert (sampler.temperature, sampler.top_p, sampler.top_k) == (0.6, 0.95, 0)
