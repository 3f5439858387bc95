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
from helpers import ROOT
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
    if line.startswith("%pip install"):
        assert line == "%pip install -q -r requirements-gpu.txt" and (ROOT / "requirements-gpu.txt").exists()
        return
    m = re.fullmatch(r"!python (train|evaluate|report)\.py (.*)", line)
    assert m, f"not a command this kit has: {line}"
    SCRIPTS[f"{m.group(1)}.py"].parse_args(shlex.split(expand(m.group(2), ns)))  # argparse exits on a bad flag


def test_every_shell_line_is_a_command_the_kit_accepts():
    ns = settings() | {"DATA": "/content/drive/MyDrive/rsft/cache/eval-data"}
    lines = shell_lines()  # both need the network: checked here; the kit cell's clone is Python, run below
    assert len(lines) == 2 and any("--download-data" in l for l in lines)
    for line in lines:
        check_shell_line(line, ns)
    with pytest.raises(AssertionError, match="not a command"):  # the check itself refuses what the kit lacks
        check_shell_line("!pip install vllm", ns)
    with pytest.raises(SystemExit):
        check_shell_line("!python evaluate.py --download-everything x", ns)


def kit_cell(url: str, kit: Path, on_drive: Path) -> str:
    """The kit cell's Python with its three settings set as a user (or this test) sets them."""
    code = python_of(tagged("kit"))
    for name, value in (("KIT_GIT_URL", url), ("KIT", kit), ("KIT_ON_DRIVE", on_drive)):
        code, n = re.subn(rf"^{name} = .*$", f"{name} = {str(value)!r}", code, count=1, flags=re.M)
        assert n == 1, f"the kit cell sets {name} on a line of its own"
    return code


def stop_line(excinfo) -> str:
    lines = excinfo.value._render_traceback_()  # what IPython (Colab) prints instead of a traceback
    assert len(lines) == 1 and "\n" not in lines[0]
    return lines[0]


def test_the_first_code_cell_gets_the_kit_or_stops_in_one_line(tmp_path, monkeypatch):
    assert "kit" in cells()[0]["metadata"]["tags"]  # before anything needs the kit
    assert "<you>" not in NOTEBOOK.read_text()  # no placeholder a user must edit blind
    mounted = []
    fake_colab(monkeypatch, mounted)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the cell puts its copy first
    drive_kit = tmp_path / "drive/kit"
    with pytest.raises(Exception) as e:  # neither a URL nor the kit on Drive
        exec(kit_cell("", tmp_path / "rsft", drive_kit), {})
    assert stop_line(e).startswith("STOPPED: the kit is not in this runtime: set KIT_GIT_URL") and mounted
    with pytest.raises(Exception) as e:
        exec(kit_cell(str(tmp_path / "no-such-repo"), tmp_path / "rsft", drive_kit), {})
    assert "git clone" in stop_line(e) and "fix KIT_GIT_URL" in stop_line(e)
    ns = {}
    exec(kit_cell(str(ROOT), tmp_path / "rsft", drive_kit), ns)  # a git URL (here a local repository: offline)
    assert (tmp_path / "rsft/train.py").exists() and Path.cwd() == tmp_path / "rsft"
    (drive_kit).mkdir(parents=True)  # or the kit's folder uploaded to Drive
    (drive_kit / "train.py").write_text("")
    (drive_kit / "runs").mkdir()
    exec(kit_cell("", tmp_path / "rsft2", drive_kit), {})
    assert (tmp_path / "rsft2/train.py").exists() and not (tmp_path / "rsft2/runs").exists()


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

    monkeypatch.chdir(tmp_path)  # the kit cell moves into its clone, where runs/ and reports/ become links to Drive
    monkeypatch.setattr(sys, "path", list(sys.path))
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
        code = python_of(cell)
        if "kit" in cell["metadata"].get("tags", []):  # cloned, as written, from this checkout
            code = kit_cell(str(ROOT), tmp_path / "rsft", tmp_path / "drive/kit")
        with monkeypatch.context() as m:
            if "google.colab" in code:
                fake_colab(m, mounted)
            exec(compile(code, str(NOTEBOOK), "exec"), ns)
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
    assert "evaluation plan 1 model(s) x 2 task(s)" in out  # math500, not downloaded: counted at its published size
    # the quickstart preset's 100 in-domain questions of MATH-500's 500
    assert re.search(r"math500 +100 questions x 1 sample\(s\) x <= 192 tokens .* \(not downloaded yet", out)
    assert re.search(r"time +at most ~\d+ min", out)
    assert re.search(r"^task +countdown", out, re.M)  # the scores table
    assert (drive / "reports/quickstart-max2/report.html").stat().st_size > 0
    assert list((drive / "reports/quickstart-max2").glob("*.png"))
