"""The quickstart preset's repetition rule (rsft.repetition): a reply that only repeats itself ends at the end of
its third copy of one block, on every backend, and nowhere else; what it had written stays as it was."""
import pytest
import torch

from rsft.repetition import COPIES, MIN_SPAN, Repeats, ends_at

BLOCK = list(range(100, 120))  # a 20-token line


def test_a_line_written_three_times_ends_the_reply_at_its_third_copy():
    assert ends_at([1, 2, 3] + BLOCK * 5) == 3 + COPIES * len(BLOCK)


@pytest.mark.parametrize("tokens", [
    [1, 0, 0, 0, 5] * 3,  # "1000" and such: short runs
    [7] * (MIN_SPAN - 1),  # one token, not yet MIN_SPAN of them
    [1] + list(range(200, 210)) * 4,  # 4 copies of a 10-token block span 40 < MIN_SPAN
    BLOCK * 2 + [5] + BLOCK,  # two copies, then another token: not three in a row
    list(range(500)),
])
def test_short_runs_and_two_copies_do_not_end_a_reply(tokens):
    assert ends_at(tokens) is None


def test_a_long_run_of_one_token_ends_at_min_span():
    assert ends_at([3, 4] + [7] * 100) == 2 + MIN_SPAN


def test_each_row_keeps_its_own_count_when_rows_leave_the_batch():
    rule = Repeats(3)
    rows = [[5] + BLOCK * 3, list(range(300, 361)), [6] + BLOCK * 3]
    ids = torch.tensor(rows)
    fired = {}
    for n in range(1, ids.shape[1] + 1):
        live = torch.tensor([0, 2]) if n > 30 else torch.tensor([0, 1, 2])  # row 1 left the batch at 30
        ended = rule.update(live, ids[live, :n])
        for row, e in zip(live.tolist(), ended.tolist()):
            if e:
                fired.setdefault(row, n)
    assert fired == {0: 61, 2: 61}


@pytest.fixture(scope="module")
def looping(tiny_model_dir, tmp_path_factory):
    """The tiny random model, greedy, 160 tokens: its replies fall into loops (what the rule is for)."""
    from rsft.catalogue import preset
    from rsft.eval_worker import hf_model
    from rsft.specs import ModelSpec, WorkerSpec

    tmp = tmp_path_factory.mktemp("repeats")
    spec = WorkerSpec(model=ModelSpec(base=tiny_model_dir), step=0, tasks=("countdown",), preset_name="quickstart",
                      preset=preset("quickstart"), data_dir=str(tmp), out_dir=str(tmp / "out"), backend="hf",
                      device="cpu", batch_size=64)
    lm = hf_model(spec)
    ids, mask = lm.tok_batch_encode(["Using the numbers [3, 4, 5], make 27.", "Capital of France?", "2 + 2 ="])
    kw = dict(max_length=ids.shape[1] + 160, stop=["<|im_end|>"], attention_mask=mask, do_sample=False)
    lm.end_repeats = False
    free = [row[ids.shape[1]:].tolist() for row in lm._model_generate(ids, **kw)]
    return lm, ids, kw, free


def _ended(rows, pad):
    return [r[:len(r) - next((i for i, t in enumerate(reversed(r)) if t != pad), len(r))] for r in rows]


@pytest.mark.parametrize("path", ["cpu loop", "generate"])
def test_the_hf_backend_ends_a_looping_reply_where_the_rule_fires_and_keeps_the_rest(looping, path):
    from rsft.lm_backends import kit_hflm

    lm, ids, kw, free = looping
    ends = [ends_at(r) for r in free]
    assert any(e is not None for e in ends), "the tiny model did not loop: the test checks nothing"
    lm.end_repeats = True
    try:
        out = lm._model_generate(ids, **kw) if path == "cpu loop" else kit_hflm()._model_generate(lm, ids, **kw)
    finally:
        lm.end_repeats = False
    got = [row[ids.shape[1]:].tolist() for row in out]
    pad = lm.tokenizer.pad_token_id
    for reply, whole, end in zip(_ended(got, pad), _ended(free, pad), ends):
        assert reply == (whole if end is None else whole[:end])


def test_vllm_replies_are_cut_where_the_rule_fires(looping):
    from rsft.lm_backends import cut_repeats

    lm, _, _, free = looping
    tok = lm.tokenizer
    for ids in free:
        text = tok.decode(ids, skip_special_tokens=True)
        again = tok(text, add_special_tokens=False)["input_ids"]
        end = ends_at(again)
        assert cut_repeats(tok, text) == (text if end is None else tok.decode(again[:end], skip_special_tokens=True))
    looped = next(ids for ids in free if ends_at(ids) is not None)
    text = tok.decode(looped, skip_special_tokens=True)
    assert len(cut_repeats(tok, text)) < len(text)
