"""Every shipped recipe loads and validates, and plans a run on its dataset's size."""
from pathlib import Path

import pytest

from rsft.config import load_recipe
from rsft.schedule import make_plan

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").rglob("*.yaml"))


def test_there_are_recipes():
    assert any(p.name == "quickstart.yaml" for p in RECIPES)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_recipe_loads_and_plans(path):
    r = load_recipe(path)
    rows = r.data.num_examples if r.data.path.startswith("embedded:") else (r.data.limit or 20480)
    plan = make_plan(r.train, r.checkpoints, rows)
    assert plan.total_steps >= 1 and plan.save_steps[-1] == plan.total_steps
