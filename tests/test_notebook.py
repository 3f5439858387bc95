"""The Colab notebook: its shell lines are commands this kit accepts, its GPU check stops a CPU runtime, and every
cell runs in order on the CPU with the embedded default, its run and caches on the (fake) Drive."""
import json
import re
import shlex
import sys
import types
from pathlib import Path

import pytest

import evaluate
import report
import train
from conftest import ROOT
from rsft.catalogue import PRESETS
from rsft.config import load_recipe

NOTEBOOK = ROOT / "notebooks/colab_consumer_gpu.ipynb"
SCRIPTS = {"train.py": train, "evaluate.py": evaluate, "report.py": report}


def cells():
    nb = json.loads(NOTEBOOK.read_text())
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def tagged(tag):
    return next(c for c in cells() if tag in c["metadata"].get("tags", []))


def shell_lines():
    return [l.strip() for c in cells() for l in "".join(c["source"]).splitlines() if l.lstrip().startswith(("!", "%"))]


def python_of(cell) -> str:
    """A cell's Python: its IPython lines (!shell, %magic) are for Colab; shell_lines() checks them."""
    return "".join(l for l in cell["source"] if not l.lstrip().startswith(("%", "!")))


def settings() -> dict:
    ns = {}
    exec(python_of(tagged("parameters")), ns)
    return ns


def expand(line: str, ns: dict) -> str:
    """IPython's {NAME} substitution in ! lines, from the notebook's own variables."""
    return re.sub(r"\{(\w+)\}", lambda m: str(ns[m.group(1)]), line)


def check_shell_line(line: str, ns: dict) -> None:
    """Every ! and % line is one of these, with arguments the kit's own parsers accept."""
    if line == "%cd /content/rsft":
        return
    if line.startswith("%pip install"):
        assert line == "%pip install -q -r requirements-gpu.txt" and (ROOT / "requirements-gpu.txt").exists()
        return
    if line.startswith("!test -d /content/rsft || git clone"):
        assert line == "!test -d /content/rsft || git clone {REPO_URL} /content/rsft", "the clone must use REPO_URL"
        return
    m = re.fullmatch(r"!python (train|evaluate|report)\.py (.*)", line)
    assert m, f"not a command this kit has: {line}"
    SCRIPTS[f"{m.group(1)}.py"].parse_args(shlex.split(expand(m.group(2), ns)))  # argparse exits on a bad flag


def test_every_shell_line_is_a_command_the_kit_accepts():
    ns = settings() | {"DATA": "/content/drive/MyDrive/rsft/cache/eval-data"}
    lines = shell_lines()
    assert any("git clone" in l for l in lines) and any("--download-data" in l for l in lines)
    for line in lines:
        check_shell_line(line, ns)
    with pytest.raises(AssertionError, match="not a command"):  # the check itself refuses what the kit lacks
        check_shell_line("!pip install vllm", ns)
    with pytest.raises(SystemExit):
        check_shell_line("!python evaluate.py --download-everything x", ns)


def test_the_clone_url_is_one_marked_setting():
    url = settings()["REPO_URL"]
    named = re.search(r"https://github\.com/[\w.-]+/[\w.-]+", (ROOT / "README.md").read_text())
    if named:  # the README names the repository: the notebook clones that one
        assert url == named.group(0)
    else:
        assert "<you>" in url and "EDIT" in "".join(tagged("parameters")["source"])


def test_the_recipe_is_the_consumer_qlora_and_checkpoints_often():
    ns = settings()
    recipe = load_recipe(ROOT / ns["RECIPE"], ns["OVERRIDES"])  # loads and validates, overrides included
    assert recipe.model.finetune == "qlora" and recipe.model.backend == "unsloth"
    assert recipe.eval.preset == "consumer" and recipe.checkpoints.every <= 40
    evaluate.parse_args(["runs/x", *ns["EVAL_ARGS"]])


def test_the_gpu_check_stops_a_cpu_runtime(monkeypatch):
    monkeypatch.setenv("PATH", "")  # no nvidia-smi, as on a Colab CPU runtime
    with pytest.raises(RuntimeError, match="No GPU in this runtime: Runtime > Change runtime type > T4 GPU"):
        exec(python_of(tagged("gpu-check")), {})


def fake_colab(monkeypatch, mounted: list) -> None:
    """google.colab as the notebook uses it: drive.mount records its folder, the HF_TOKEN secret is absent.
    Installed only while a cell that imports it runs: libraries that look for Colab (accelerate) must not see it."""

    class SecretNotFoundError(Exception):
        pass

    class NotebookAccessError(Exception):
        pass

    def get(key):
        raise SecretNotFoundError(key)

    colab = types.ModuleType("google.colab")
    colab.drive = types.SimpleNamespace(mount=mounted.append)
    colab.userdata = types.SimpleNamespace(get=get, SecretNotFoundError=SecretNotFoundError,
                                           NotebookAccessError=NotebookAccessError)
    if "google" not in sys.modules:
        monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)


def test_every_cell_runs_on_the_embedded_default(tmp_path, monkeypatch, capsys, smollm2_dir):
    import os

    monkeypatch.chdir(tmp_path)  # the clone's root, where runs/ and reports/ become links to Drive
    mounted = []
    monkeypatch.delenv("HF_HOME", raising=False)  # the notebook sets it (and RSFT_CACHE); restored after the test
    drive = tmp_path / "drive"
    (drive / "cache").mkdir(parents=True)
    (drive / "cache/models").symlink_to(Path(os.environ["RSFT_CACHE"]) / "models")  # the converted embedded model
    # the embedded default, two steps; math500 has no data offline, so it is skipped while countdown runs
    params = {"DRIVE": str(drive), "RECIPE": str(ROOT / "recipes/quickstart.yaml"),
              "OVERRIDES": ["train.max_steps=2", "checkpoints.steps=[]", "eval.suite=countdown,math500"],
              "EVAL_ARGS": ["--steps", "2", "--limit", "5"]}
    ns = {}
    for cell in cells():
        if "gpu-check" in cell["metadata"].get("tags", []):
            continue  # test_the_gpu_check_stops_a_cpu_runtime
        with monkeypatch.context() as m:
            if "google.colab" in python_of(cell):
                fake_colab(m, mounted)
            exec(compile(python_of(cell), str(NOTEBOOK), "exec"), ns)
        if "parameters" in cell["metadata"].get("tags", []):
            ns.update(params)
    out = capsys.readouterr().out
    assert mounted == ["/content/drive"]
    assert os.environ["RSFT_CACHE"] == str(drive / "cache") and os.environ["HF_HOME"] == str(drive / "hf")
    assert "no HF_TOKEN secret" in out
    run = drive / "runs/quickstart-max2"  # train.max_steps: a smoke test's own folder
    assert Path(ns["RUN"]).resolve() == run.resolve()
    res = json.loads((run / "eval/quickstart-limit5/step00002/countdown.json").read_text())
    assert res["n"] == 5 and res["preset"]["limit"] == 5  # --limit, recorded with the preset, in a folder of its own
    assert "math500" in json.loads((run / "eval/quickstart-limit5/step00002/skipped.json").read_text())
    assert "evaluation plan 1 model(s) x 2 task(s)" in out and re.search(r"math500 +skipped: no data", out)
    assert re.search(r"time +at most ~\d+ min", out)
    assert re.search(r"^task +countdown", out, re.M)  # the scores table
    assert (drive / "reports/quickstart-max2/report.html").stat().st_size > 0
    assert list((drive / "reports/quickstart-max2").glob("*.png"))
