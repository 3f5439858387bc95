"""Bad input, as a careless or adversarial user gives it: each is one line naming the file, or a counted skip.

Recipes go through the real `train.py --check` (it stops before any model loads); data goes through the loader
the training run uses. No case may end in a traceback, and nothing malformed may reach training.
"""
import json
import re
import subprocess
import sys

import pytest

from helpers import BAD_ROWS, ROOT, math_cot_rows, write_jsonl
from rsft.config import DataConfig
from rsft.data import adapt_rows, apply_length_policy, load_rows, load_tokenized
from rsft.errors import UserError

NAMED = "model:\n  name_or_path: m\ndata:\n  path: d.jsonl\n"  # the two keys every recipe must state

RECIPE_FAULTS = {
    "empty": (b"", "the recipe is empty"),
    "only a comment": (b"# nothing here\n", "the recipe is empty"),
    "a list": (b"- model\n- data\n", "not a list"),
    "a scalar": (b"quickstart\n", "not a str"),
    "binary": (bytes(range(256)), "NUL byte"),
    "not UTF-8": (b"model:\n  name_or_path: caf\xe9\n", r"not UTF-8 text \(byte offset 26"),
    "a NUL byte": (NAMED.encode() + b"train:\n  seed: 1\x00\n", "NUL byte"),
    "5,000 deep": (("a:\n" + "".join("  " * i + "a:\n" for i in range(1, 5000))).encode(), "nested too deeply"),
    "5,000 brackets": (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    "aliases": (NAMED.encode() + b"lora:\n  target_modules: &t [q_proj]\ncheckpoints:\n  steps: *t\n",
                r"aliases \(\*t\)"),
    "a list as key": (b"? [a, b]\n: c\n", "a key must be a plain name"),
    "max_length 1e30": (b"model:\n  name_or_path: m\ndata:\n  path: d.jsonl\n  max_length: 1e30\n",
                        r"data.max_length: 1e\+30 is out of range"),
    "a 400-digit integer": (b"model:\n  name_or_path: m\ndata:\n  path: d.jsonl\n  max_length: " + b"9" * 400,
                            "data.max_length: a number of over 300 digits is out of range"),
    "a 5,000-digit integer": (NAMED.encode() + b"train:\n  seed: " + b"9" * 5000, "a number too long to read"),
    "no model": (b"data:\n  path: d.jsonl\n", "must name model.name_or_path"),
    "a mistyped model": (b"modle:\n  name_or_path: m\ndata:\n  path: d.jsonl\n", "did you mean 'model'"),
    "no data": (b"model:\n  name_or_path: m\n", "must name data.path"),
    "an empty model": (b"model:\n  name_or_path: ''\ndata:\n  path: d.jsonl\n", "must name model.name_or_path"),
    "learning_rate .inf": (NAMED.encode() + b"train:\n  learning_rate: .inf\n", "expected a finite number, got inf"),
    "learning_rate .nan": (NAMED.encode() + b"train:\n  learning_rate: .nan\n", "expected a finite number, got nan"),
    "learning_rate 1e400": (NAMED.encode() + b"train:\n  learning_rate: 1e400\n", "expected a finite number"),
    "warmup_ratio -.inf": (NAMED.encode() + b"train:\n  warmup_ratio: -.inf\n", "expected a finite number"),
    "lora_alpha 0": (NAMED.encode() + b"lora:\n  lora_alpha: 0\n", "lora.lora_alpha must be positive"),
    "lora_alpha -8": (NAMED.encode() + b"lora:\n  lora_alpha: -8\n", "lora.lora_alpha must be positive"),
    "no target modules": (NAMED.encode() + b"lora:\n  target_modules: []\n", "target_modules is empty"),
    "max_grad_norm 0": (NAMED.encode() + b"train:\n  max_grad_norm: 0\n", "max_grad_norm must be positive"),
    "adam_beta2 1": (NAMED.encode() + b"train:\n  adam_beta2: 1\n", r"adam_beta2 must be in \[0, 1\)"),
    "weight_decay -0.1": (NAMED.encode() + b"train:\n  weight_decay: -0.1\n", "weight_decay must be at least 0"),
    "seed -1": (NAMED.encode() + b"train:\n  seed: -1\n", "train.seed must be at least 0"),
    "max_length 0": (b"model:\n  name_or_path: m\ndata:\n  path: d.jsonl\n  max_length: 0\n",
                     "data.max_length must be at least 1"),
}


def one_line_error(res, *fragments):
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr and res.stderr.startswith("error: ")
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    for fragment in fragments:
        assert re.search(fragment, res.stderr), res.stderr


def train_py(*args, cwd=ROOT, env=None):
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)


@pytest.mark.parametrize("case", RECIPE_FAULTS, ids=str)
def test_a_bad_recipe_is_one_line_naming_the_file(tmp_path, case):
    content, reason = RECIPE_FAULTS[case]
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    one_line_error(train_py(path, "--check"), re.escape(str(path)), reason)


def test_an_override_is_held_to_the_same_rules(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(NAMED)
    one_line_error(train_py(path, "train.learning_rate=.nan", "--check"), "expected a finite number, got nan")
    one_line_error(train_py(path, "lora.lora_alpha=0", "--check"), "lora_alpha must be positive")


def test_a_recipe_that_is_a_folder_or_missing(tmp_path):
    one_line_error(train_py(tmp_path, "--check"), "is a folder")
    one_line_error(train_py(tmp_path / "nope.yaml", "--check"), "recipe file not found")


# ------------------------------------------------------------------------------------------------ data files


def data_recipe(tmp_path, model_dir, data, extra=""):
    p = tmp_path / "r.yaml"
    p.write_text(f"model:\n  name_or_path: {model_dir}\n  backend: hf\ndata:\n  path: {data}\n{extra}"
                 f"train:\n  output_dir: {tmp_path / 'run'}\n  per_device_train_batch_size: 2\n"
                 "  gradient_accumulation_steps: 2\n")
    return p


def good_lines(n):
    return [json.dumps(r).encode() + b"\n" for r in math_cot_rows(n)]


def test_invalid_utf8_lines_are_bad_rows_named_or_skipped_by_train_py(tmp_path, tiny_model_dir):
    lines = good_lines(6)
    lines[1] = b'{"question": "caf\xe9", "response": "r"}\n'
    lines[4] = b"\xff\xfe\n"
    data = tmp_path / "d.jsonl"
    data.write_bytes(b"".join(lines))
    res = train_py(data_recipe(tmp_path, tiny_model_dir, data), "--check")
    one_line_error(res, "2 of 6 rows", r"row 1: line 2 is not UTF-8 \(byte offset 17 in the line\); "
                                       r"row 4: line 5 is not UTF-8", "on_bad_row: skip")
    res = train_py(data_recipe(tmp_path, tiny_model_dir, data, "  on_bad_row: skip\n"), "--check")
    assert res.returncode == 0, res.stderr
    assert f"data: skipped 2 of 6 rows of {data}" in res.stdout and "malformed rows  2 skipped" in res.stdout


def test_skipped_rows_are_reported_even_when_too_few_are_left(tmp_path, tiny_model_dir):
    data = write_jsonl(tmp_path / "d.jsonl", math_cot_rows(3) + [{"message": "hello", "response": "r"}] * 3)
    recipe = data_recipe(tmp_path, tiny_model_dir, data, "  on_bad_row: skip\n")
    res = train_py(recipe, "train.gradient_accumulation_steps=4", "--check")  # 3 rows left, 8 needed
    assert f"data: skipped 3 of 6 rows of {data}" in res.stdout
    one_line_error(res, "fewer than one optimizer step")


DATA_FILE_FAULTS = {
    "corrupt.parquet": (b"PAR1" + bytes(range(200)) + b"PAR1", "not a readable parquet file"),
    "truncated.parquet": (None, "not a readable parquet file"),
    "empty.parquet": (b"", "not a readable parquet file"),
    "bad.json": (b'[{"response": "r"}', r"not valid JSON \(.* at line 1\)"),
    "latin1.json": (b'[{"question": "caf\xe9", "response": "r"}]', r"not UTF-8 text \(byte offset 18\)"),
    "object.json": (b'{"rows": []}', "a .json data file must hold a list of rows"),
    "deep.json": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    "rows.csv": (b"question,response\nq,r\n", "unsupported data file type '.csv'"),
    "empty.jsonl": (b"\n\n", "holds no rows"),
}


@pytest.mark.parametrize("name", DATA_FILE_FAULTS, ids=str)
def test_an_unreadable_data_file_is_one_line(tmp_path, tokenizer, name):
    content, reason = DATA_FILE_FAULTS[name]
    path = tmp_path / name
    if content is None:  # a real parquet file cut in half, as an interrupted copy leaves it
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(math_cot_rows(50)), path)
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    with pytest.raises(UserError, match=re.escape(str(path)) + ": " + reason) as e:
        load_tokenized(DataConfig(path=str(path)), tokenizer, "t")
    assert "\n" not in str(e.value)


def test_a_deeply_nested_jsonl_line_is_a_bad_row_not_a_crash(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_bytes(b"".join(good_lines(2)) + b"[" * 100_000 + b"]" * 100_000 + b"\n")
    rows, _ = load_rows(DataConfig(path=str(data)))
    prompts, _, skipped = adapt_rows(rows, DataConfig(path=str(data), on_bad_row="skip"))
    assert len(prompts) == 2 and skipped == [{"row": 2, "reason": "line 3 is nested too deeply"}]


def test_nothing_malformed_reaches_the_training_examples(tmp_path, tokenizer):
    """Each bad row of the paper schema, mixed among good ones: only the good rows' responses are trained on."""
    good = math_cot_rows(len(BAD_ROWS))
    rows = [r for pair in zip(good, (bad for bad, _ in BAD_ROWS)) for r in pair]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    tok = load_tokenized(DataConfig(path=str(path), on_bad_row="skip"), tokenizer, "t")
    train = apply_length_policy(tok, DataConfig(path=str(path), max_length=4096))
    trained = [tokenizer.decode(e.input_ids[e.prompt_len:].tolist()) for e in train.examples]
    assert trained == [r["response"] + tokenizer.eos_token for r in good]
    assert train.stats["malformed_skipped"] == len(BAD_ROWS)


# ------------------------------------------------------------------------------------------------ offline


def hub_recipe(tmp_path, model="rsft-test/not-downloaded", extra=""):
    data = write_jsonl(tmp_path / "d.jsonl", math_cot_rows(8))
    p = tmp_path / "r.yaml"
    p.write_text(f"model:\n  name_or_path: {model}\n  backend: hf\n  gradient_checkpointing: false\n"
                 f"lora:\n  r: 4\n  lora_alpha: 8\n{extra}data:\n  path: {data}\n  max_length: 256\n"
                 f"train:\n  output_dir: {tmp_path / 'run'}\n  per_device_train_batch_size: 2\n"
                 "  gradient_accumulation_steps: 2\n  num_train_epochs: 1\ncheckpoints:\n  every: 0\n"
                 "  doubling_from: 0\n")
    return p


def fails_before_any_hub_call(monkeypatch):
    """Any request through huggingface_hub (what transformers, peft and datasets use) fails the test."""
    import huggingface_hub.utils._http as http

    def refuse(*a, **k):
        raise AssertionError("a Hub request was made")

    monkeypatch.setattr(http, "get_session", refuse)


@pytest.mark.parametrize("args", [["--check"], []], ids=["check", "train"])
def test_hf_hub_offline_and_not_cached_is_one_line_naming_the_download(tmp_path, monkeypatch, args):
    import train

    fails_before_any_hub_call(monkeypatch)
    with pytest.raises(UserError) as e:
        train.main([str(hub_recipe(tmp_path)), *args])
    msg = str(e.value)
    assert "model.name_or_path 'rsft-test/not-downloaded' is not in the local Hugging Face cache" in msg
    assert "(HF_HUB_OFFLINE=1)" in msg and "`hf download rsft-test/not-downloaded`" in msg
    assert "a local folder" in msg and "\n" not in msg


def test_an_unreachable_endpoint_is_found_out_and_switches_offline_mode_on(tmp_path, monkeypatch, unreachable_hub):
    import os

    import train
    from huggingface_hub import constants

    fails_before_any_hub_call(monkeypatch)
    with pytest.raises(UserError, match=rf"cannot be reached \({unreachable_hub}: no answer within 2 s .*refused"):
        train.main([str(hub_recipe(tmp_path, extra=""))])
    assert constants.HF_HUB_OFFLINE and os.environ["HF_HUB_OFFLINE"] == "1"  # workers inherit it


def test_a_hub_dataset_offline_names_the_download(monkeypatch, unreachable_hub):
    with pytest.raises(UserError, match=r"could not load dataset 'jasonrqh/Math-CoT-20k': the Hub cannot be reached "
                                        r".*`hf download jasonrqh/Math-CoT-20k --repo-type dataset --revision abc`"):
        load_rows(DataConfig(path="jasonrqh/Math-CoT-20k", revision="abc"))


def test_a_path_that_is_neither_a_folder_nor_a_hub_id(tmp_path):
    import train

    with pytest.raises(UserError, match="'/no/such/model': no such local folder, and not a Hub id"):
        train.main([str(hub_recipe(tmp_path, model="/no/such/model")), "--check"])


def test_unknown_target_modules_fail_before_the_weights_load(tmp_path, tiny_model_dir, monkeypatch):
    import train
    from transformers import AutoModelForCausalLM

    def refuse(*a, **k):
        raise AssertionError("the weights were loaded")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", refuse)
    recipe = hub_recipe(tmp_path, model=tiny_model_dir, extra="  target_modules: [q_proj, nonexistent_proj]\n")
    with pytest.raises(UserError, match="lora.target_modules: nonexistent_proj names no layer of .*its layers LoRA "
                                        "can adapt: down_proj, embed_tokens, gate_proj, k_proj, lm_head, o_proj"):
        train.main([str(recipe)])


def test_target_modules_by_name_or_dotted_tail_pass_and_are_checked(tmp_path, tiny_model_dir):
    from rsft.config import load_recipe
    from rsft.models import preflight

    ok = hub_recipe(tmp_path, model=tiny_model_dir, extra="  target_modules: [self_attn.q_proj, mlp.down_proj]\n")
    assert preflight(load_recipe(ok)) == tiny_model_dir
    bad = hub_recipe(tmp_path, model=tiny_model_dir, extra="  target_modules: [mlp.q_proj]\n")
    with pytest.raises(UserError, match="mlp.q_proj names no layer"):
        preflight(load_recipe(bad))


# ------------------------------------------------------------------------------------------------ python -m rsft.hub


def hub_cli(*args):
    return subprocess.run([sys.executable, "-m", "rsft.hub", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


@pytest.mark.parametrize("meta", [b"", b"{", b"[1, 2]", b"\xff\xfe", b'{"step": 10}'],
                         ids=["empty", "truncated", "a list", "binary", "keys missing"])
def test_a_checkpoint_with_a_corrupt_meta_json_is_one_line(tmp_path, meta):
    ckpt = tmp_path / "run/checkpoints/step00010"
    ckpt.mkdir(parents=True)
    (ckpt / "meta.json").write_bytes(meta)
    (ckpt / "adapter_config.json").write_text("{}")
    for args in (["push", ckpt, "me/x", "--dry-run"], ["card", ckpt]):
        one_line_error(hub_cli(*args), re.escape(str(ckpt / "meta.json")), "the checkpoint is incomplete")


def test_push_of_a_folder_that_holds_no_checkpoint_is_one_line(tmp_path):
    one_line_error(hub_cli("push", tmp_path, "me/x", "--dry-run"), "neither a checkpoint")


@pytest.mark.parametrize("record", [b"", b"{", b"[]", b"{}", b"\xff"], ids=["empty", "cut", "list", "no key", "binary"])
def test_a_corrupt_run_json_is_one_line(tmp_path, tiny_model_dir, record):
    recipe = data_recipe(tmp_path, tiny_model_dir, write_jsonl(tmp_path / "d.jsonl", math_cot_rows(8)))
    (tmp_path / "run").mkdir()
    (tmp_path / "run/run.json").write_bytes(record)
    one_line_error(train_py(recipe, "--check"), re.escape(str(tmp_path / "run/run.json")), "is damaged")


def test_check_refuses_unknown_target_modules(tmp_path, tiny_model_dir):
    recipe = hub_recipe(tmp_path, model=tiny_model_dir, extra="  target_modules: [nonexistent_proj]\n")
    one_line_error(train_py(recipe, "--check"), "nonexistent_proj names no layer")


@pytest.mark.parametrize("kind", ["fifo", "link to a device"])
def test_a_data_path_that_is_a_fifo_or_a_device_is_refused_before_reading(tmp_path, kind):
    import os
    import signal

    from rsft.tasks.common import load_local

    path = tmp_path / "train.jsonl"
    os.mkfifo(path) if kind == "fifo" else path.symlink_to("/dev/null")  # /dev/zero: read until memory runs out
    task_file = tmp_path / "data" / "math500" / "test.jsonl"
    task_file.parent.mkdir(parents=True)
    task_file.symlink_to(path)

    def hung(*_):
        raise TimeoutError(f"{path} was read: it never ends")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        with pytest.raises(UserError, match="not a regular file"):
            load_rows(DataConfig(path=str(path)))
        with pytest.raises(UserError, match="not a regular file"):
            load_local("math500", data_dir=str(tmp_path / "data"))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
