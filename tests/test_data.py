"""Data: the paper's prompt and loss mask under a real chat template, schemas, length policy, bad rows, cache."""
import dataclasses
import re

import numpy as np
import pytest

from helpers import BAD_ROWS, USER, math_cot_rows, write_jsonl
from rsft.config import DataConfig
from rsft.prompts import MATH_PROMPT_SUFFIX
from rsft.data import adapt_rows, apply_length_policy, collate, load_rows, load_tokenized, tokenize
from rsft.errors import UserError


def cfg(path, **kw):
    return DataConfig(path=str(path), **kw)


def test_loss_mask_is_exactly_response_plus_eos_under_the_real_chat_template(tokenizer):
    rows = math_cot_rows(3)
    prompts, responses, _ = adapt_rows(rows, DataConfig())
    tok = tokenize(prompts, responses, tokenizer)
    train = apply_length_policy(tok, DataConfig(max_length=4096))
    batch = collate(train.examples, tokenizer.pad_token_id)
    for i, row in enumerate(rows):
        ids, labels, mask = batch["input_ids"][i], batch["labels"][i], batch["attention_mask"][i]
        n = int(mask.sum())
        supervised = labels[labels != -100].tolist()
        # the target: the response verbatim, then the tokenizer's EOS, and nothing else
        assert tokenizer.decode(supervised) == row["response"] + tokenizer.eos_token
        assert supervised[-1] == tokenizer.eos_token_id
        # the prompt: the chat template over the one user turn, with the generation prompt
        expected_prompt = tokenizer.apply_chat_template(row["message"], add_generation_prompt=True, tokenize=False)
        prompt_len = n - len(supervised)
        assert tokenizer.decode(ids[:prompt_len].tolist()) == expected_prompt
        assert expected_prompt.endswith("<|im_start|>assistant\n")
        assert (labels[:prompt_len] == -100).all() and (labels[n:] == -100).all()


def test_paper_schema_prompt_sources():
    q = "What is 1+1?"
    rows = [
        {"message": [{"role": "user", "content": q + MATH_PROMPT_SUFFIX}], "response": "2"},
        {"prompt": q + MATH_PROMPT_SUFFIX, "response": "2", "answer": {"numbers": [1, 1], "target": 2}},
        {"question": q, "response": "2"},
    ]
    prompts, responses, skipped = adapt_rows(rows, DataConfig())
    assert prompts == [[{"role": "user", "content": q + MATH_PROMPT_SUFFIX}]] * 3 and responses == ["2"] * 3
    assert skipped == []


def test_messages_schema_uses_the_last_assistant_turn_as_target():
    rows = [{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                          {"role": "assistant", "content": "a"}]}]
    prompts, responses, _ = adapt_rows(rows, DataConfig(schema="auto"))
    assert prompts == [rows[0]["messages"][:2]] and responses == ["a"]


BAD_CHATS = [  # messages schema
    ({"messages": [{"role": "assistant", "content": "a"}]}, "'messages' has no user turn before the assistant's"),
    ({"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}]},
     "'messages' has no user turn"),
    ({"messages": [{"role": "user", "content": "u"}]}, "the last turn of 'messages' must be the assistant's"),
    ({"messages": "u: hi"}, "field 'messages' must be a non-empty list"),
    ({"prompt": "u", "response": "a"}, "missing field 'messages'"),
]


@pytest.mark.parametrize("row,reason", BAD_ROWS)
def test_malformed_row_is_an_error_naming_the_row(row, reason):
    rows = math_cot_rows(3)
    rows.insert(2, row)
    with pytest.raises(UserError, match=rf"1 of 4 rows .*row 2: {re.escape(reason)}.*on_bad_row: skip"):
        adapt_rows(rows, DataConfig())


@pytest.mark.parametrize("row,reason", BAD_CHATS)
def test_a_chat_without_user_turn_or_target_is_refused(row, reason):
    good = {"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]}
    with pytest.raises(UserError, match=rf"messages schema.*row 1: {re.escape(reason)}"):
        adapt_rows([good, row], DataConfig(schema="messages"))
    _, responses, skipped = adapt_rows([good, row], DataConfig(schema="messages", on_bad_row="skip"))
    assert responses == ["a"] and skipped == [{"row": 1, "reason": skipped[0]["reason"]}]


def test_every_bad_row_is_named_at_once_first_20_and_a_count():
    rows = math_cot_rows(50) + [{"response": "r"}]
    for i in range(0, 50, 2):
        rows[i] = {"message": "hello", "response": "r"}
    rows[1] = {"message": USER}
    with pytest.raises(UserError) as e:
        adapt_rows(rows, DataConfig())  # 27 bad rows: 0, 1, 2, 4, ..., 48, 50
    msg = str(e.value)
    assert "27 of 51 rows do not fit the paper schema" in msg and msg.count("; row ") == 19
    assert "row 0: field 'message'" in msg and "row 1: missing field 'response'" in msg and "row 36:" in msg
    assert "row 38:" not in msg and "; ... and 7 more; fix them or set data.on_bad_row: skip" in msg


def test_malformed_rows_are_counted_when_skipping_is_allowed(tmp_path, tokenizer, capsys):
    rows = math_cot_rows(4)
    rows[1] = BAD_ROWS[0][0]
    rows[3] = BAD_ROWS[5][0]  # a message that is a string: once kept and trained on
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    tok = load_tokenized(cfg(path, on_bad_row="skip"), tokenizer, "t")
    stats = apply_length_policy(tok, cfg(path)).stats
    assert stats["rows"] == 4 and stats["malformed_skipped"] == 2 and stats["kept"] == 2
    assert [s["row"] for s in stats["skipped_rows"]] == [1, 3]
    line = f"data: skipped 2 of 4 rows of {path} (data.on_bad_row: skip): row 1: missing field 'response'; row 3:"
    assert line in capsys.readouterr().out
    load_tokenized(cfg(path, on_bad_row="skip"), tokenizer, "t")  # from the token cache: said again
    assert line in capsys.readouterr().out


def test_skipping_everything_says_how_many_were_skipped(tmp_path, tokenizer, capsys):
    path = write_jsonl(tmp_path / "d.jsonl", [BAD_ROWS[5][0]] * 3)
    with pytest.raises(UserError, match="no usable rows: all 3 were skipped as malformed"):
        load_tokenized(cfg(path, on_bad_row="skip"), tokenizer, "t")
    assert "data: skipped 3 of 3 rows" in capsys.readouterr().out


def _lengths_fixture(tokenizer):
    rows = math_cot_rows(3, response_words=5) + math_cot_rows(2, response_words=200)
    prompts, responses, _ = adapt_rows(rows, DataConfig())
    return tokenize(prompts, responses, tokenizer)


def test_over_length_truncate_keeps_rows_cut_on_the_right(tokenizer):
    tok = _lengths_fixture(tokenizer)
    limit = int(tok.lengths()[:3].max())  # the 3 short rows fit, the 2 long ones do not
    train = apply_length_policy(tok, DataConfig(max_length=limit, over_length="truncate"))
    assert train.stats["over_max_length"] == 2 and train.stats["truncated"] == 2 and train.stats["kept"] == 5
    long_row = train.examples[3]
    assert len(long_row.input_ids) == limit
    assert np.array_equal(long_row.input_ids, tok.ids[tok.offsets[3] : tok.offsets[3] + limit])


def test_over_length_drop_and_error(tokenizer):
    tok = _lengths_fixture(tokenizer)
    limit = int(tok.lengths()[:3].max())
    dropped = apply_length_policy(tok, DataConfig(max_length=limit, over_length="drop"))
    assert dropped.stats["dropped"] == 2 and dropped.stats["kept"] == 3
    with pytest.raises(UserError, match=f"2 rows exceed data.max_length={limit}"):
        apply_length_policy(tok, DataConfig(max_length=limit, over_length="error"))


def test_prompt_longer_than_the_limit_is_refused_not_trained_on(tokenizer):
    tok = _lengths_fixture(tokenizer)
    with pytest.raises(UserError, match="prompts alone reach data.max_length=10"):
        apply_length_policy(tok, DataConfig(max_length=10, over_length="truncate"))


def test_tokenization_is_cached_and_keyed_on_content(tmp_path, tokenizer, monkeypatch):
    import rsft.data

    path = write_jsonl(tmp_path / "d.jsonl", math_cot_rows(4))
    first = load_tokenized(cfg(path), tokenizer, "t")
    calls = []
    real = rsft.data.tokenize
    monkeypatch.setattr(rsft.data, "tokenize", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = load_tokenized(cfg(path), tokenizer, "t")
    assert calls == [] and np.array_equal(first.ids, again.ids)
    write_jsonl(path, math_cot_rows(5))  # new content: tokenized again
    assert len(load_tokenized(cfg(path), tokenizer, "t")) == 5 and calls == [1]


def test_local_files_jsonl_json_parquet_and_limit(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = math_cot_rows(5)
    jl = write_jsonl(tmp_path / "d.jsonl", rows)
    js = tmp_path / "d.json"
    js.write_text(__import__("json").dumps(rows))
    pqf = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(rows), pqf)
    for p in (jl, js, pqf):
        got, _ = load_rows(cfg(p, limit=3))
        assert [r["response"] for r in got] == [r["response"] for r in rows[:3]]


def test_missing_file_and_bad_json_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="data file not found"):
        load_rows(cfg(tmp_path / "nope.jsonl"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"response": "x"}\n{not json\n')
    rows, _ = load_rows(cfg(bad))
    with pytest.raises(UserError, match="row 0: missing field: .*row 1: line 2 is not valid JSON"):
        adapt_rows(rows, DataConfig())


def test_hub_id_while_offline_suggests_a_local_path(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(UserError, match=r"\(HF_HUB_OFFLINE=1\).*`hf download jasonrqh/Math-CoT-20k --repo-type "
                                        "dataset` .*, or set data.path to a local"):
        load_rows(DataConfig(path="jasonrqh/Math-CoT-20k"))


def test_embedded_countdown_rows_are_in_the_countdown_cot_schema():
    rows, _ = load_rows(dataclasses.replace(DataConfig(), path="embedded:countdown", num_examples=5))
    assert len(rows) == 5
    assert set(rows[0]) >= {"prompt", "message", "response", "answer"}
    assert set(rows[0]["answer"]) == {"numbers", "target"}
