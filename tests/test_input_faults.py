"""Bad input, as a careless or adversarial user gives it: each is one line naming the file, or a counted skip.

Recipes go through the real `train.py --check` (it stops before any model loads); data goes through the loader
the training run uses. No case may end in a traceback, and nothing malformed may reach training.
"""
import json
import re
import subprocess
import sys

import pytest

from conftest import ROOT, math_cot_rows, write_jsonl
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
    "not UTF-8": (b"model:\n  name_or_path: caf\xe9\n", r"not UTF-8 text \(byte 26"),
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
