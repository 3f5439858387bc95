"""The Colab notebook runs: every cell executed in order, on the embedded default model, on the CPU."""
import json
import shlex

from conftest import ROOT
from rsft.config import load_recipe

NOTEBOOK = ROOT / "notebooks/colab_consumer_gpu.ipynb"


def cells():
    nb = json.loads(NOTEBOOK.read_text())
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def python_of(cell) -> str:
    """A cell's Python: IPython magics (%cd, %pip) and comments are left to Colab."""
    return "".join(l for l in cell["source"] if not l.lstrip().startswith(("%", "!", "#")))


def test_the_colab_recipe_and_install_files_exist():
    params = next(c for c in cells() if "parameters" in c["metadata"].get("tags", []))
    ns = {}
    exec(python_of(params), ns)
    recipe = load_recipe(ROOT / ns["RECIPE"], ns["OVERRIDES"])  # loads and validates
    assert recipe.model.finetune == "qlora"
    for line in "".join(c["source"][0] for c in cells()).splitlines():
        if line.startswith("%pip install"):
            assert (ROOT / shlex.split(line)[-1]).exists()


def test_every_cell_runs_on_the_embedded_default(tmp_path, monkeypatch, smollm2_dir):
    monkeypatch.chdir(tmp_path)
    params = {"RECIPE": str(ROOT / "recipes/quickstart.yaml"),
              "OVERRIDES": ["train.max_steps=2", f"train.output_dir={tmp_path / 'run'}", "eval.suite=countdown"],
              "EVAL_ARGS": ["--steps", "2", "--limit", "5"]}
    ns = {}
    for cell in cells():
        if "parameters" in cell["metadata"].get("tags", []):
            ns.update(params)
        else:
            exec(compile(python_of(cell), str(NOTEBOOK), "exec"), ns)
    assert ns["RUN"] == str(tmp_path / "run")
    res = json.loads((tmp_path / "run/eval/quickstart/step00002/countdown.json").read_text())
    assert res["n"] == 5 and res["preset"]["limit"] == 5  # --limit, recorded with the preset
    assert (tmp_path / "report/report.html").stat().st_size > 0
    assert list((tmp_path / "report").glob("*.png"))
