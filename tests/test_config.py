"""Recipes: a typo, a wrong type or a duplicate key fails with the fix in the message; values are coerced."""
import pytest

from rsft.config import CheckpointConfig, load_recipe
from rsft.errors import UserError
from rsft.schedule import checkpoint_steps, make_plan
from rsft.config import TrainConfig


BASE = "model:\n  name_or_path: m\ndata:\n  path: d.jsonl\n"  # what every recipe must name


def recipe(tmp_path, text, base=True):
    """A recipe file: `text` after the model and data lines (merged into their sections when it has them)."""
    p = tmp_path / "r.yaml"
    if base:
        for sec, line in (("model:\n", "  name_or_path: m\n"), ("data:\n", "  path: d.jsonl\n")):
            text = text.replace(sec, sec + line, 1) if sec in text else sec + line + text
    p.write_text(text)
    return p


def test_unknown_key_names_file_path_and_closest_key(tmp_path):
    p = recipe(tmp_path, "train:\n  learning_rat: 1e-4\n")
    with pytest.raises(UserError) as e:
        load_recipe(p)
    msg = str(e.value)
    assert str(p) in msg and "'train.learning_rat'" in msg and "did you mean 'train.learning_rate'" in msg


def test_unknown_section_is_named(tmp_path):
    with pytest.raises(UserError, match="unknown key 'lorra'.*did you mean 'lora'"):
        load_recipe(recipe(tmp_path, "lorra:\n  r: 8\n"))


def test_duplicate_key_fails_with_both_lines(tmp_path):
    with pytest.raises(UserError, match=r"duplicate key 'r' at line 7 \(first at line 6\)"):
        load_recipe(recipe(tmp_path, "lora:\n  r: 8\n  r: 16\n"))


def test_wrong_type_names_key(tmp_path):
    with pytest.raises(UserError, match="train.per_device_train_batch_size: expected an integer"):
        load_recipe(recipe(tmp_path, "train:\n  per_device_train_batch_size: four\n"))
    with pytest.raises(UserError, match="model.finetune: 'lora2' is not one of lora, qlora, full"):
        load_recipe(recipe(tmp_path, "model:\n  finetune: lora2\n"))


def test_values_are_coerced_to_declared_types(tmp_path):
    r = load_recipe(recipe(tmp_path, "train:\n  learning_rate: 2e-4\n  max_steps: 1e3\ndata:\n  split: no\n"))
    assert r.train.learning_rate == 2e-4 and isinstance(r.train.learning_rate, float)
    assert r.train.max_steps == 1000 and isinstance(r.train.max_steps, int)
    assert r.data.split == "no"  # YAML 1.1 would have made this False


def test_overrides_are_typed_and_checked(tmp_path):
    p = recipe(tmp_path, "train:\n  learning_rate: 1e-4\n")
    r = load_recipe(p, ["train.learning_rate=3e-5", "lora.target_modules=[q_proj, v_proj]"])
    assert r.train.learning_rate == 3e-5 and r.lora.target_modules == ("q_proj", "v_proj")
    with pytest.raises(UserError, match="unknown key 'train.epochs'.*num_train_epochs"):
        load_recipe(p, ["train.epochs=3"])


def test_cross_field_validation(tmp_path):
    with pytest.raises(UserError, match="warmup_ratio must be in"):
        load_recipe(recipe(tmp_path, "train:\n  warmup_ratio: 1.5\n"))


def test_defaults_give_the_papers_plan_and_checkpoint_steps():
    plan = make_plan(TrainConfig(), CheckpointConfig(), rows=20480)
    assert (plan.global_batch, plan.steps_per_epoch, plan.total_steps, plan.warmup_steps) == (256, 80, 640, 64)
    assert plan.save_steps == (10, 20, 40, 80, 160, 320, 480, 640)


def test_checkpoint_schedule_union_and_bounds():
    assert checkpoint_steps(CheckpointConfig(steps=(5,), every=4, doubling_from=0), 10) == (4, 5, 8, 10)
    assert checkpoint_steps(CheckpointConfig(every=10, doubling_from=0), 30) == (10, 20, 30)
    with pytest.raises(UserError, match=r"\[50\] lie beyond the last step \(30\)"):
        checkpoint_steps(CheckpointConfig(steps=(50,)), 30)


def test_a_smoke_test_by_max_steps_drops_later_checkpoints_saves_its_last_step_in_its_own_folder(tmp_path):
    from pathlib import Path

    quick = load_recipe(Path(__file__).parent.parent / "recipes/quickstart.yaml", ["train.max_steps=2"])
    plan = make_plan(quick.train, quick.checkpoints, rows=2560)
    assert plan.total_steps == 2 and plan.save_steps == (2,) and plan.dropped_saves == (10,)
    assert quick.run_dir() == Path("runs/quickstart-max2")  # never the folder the full run resumes from
    full = load_recipe(Path(__file__).parent.parent / "recipes/quickstart.yaml")
    assert full.run_dir() == Path("runs/quickstart") and make_plan(full.train, full.checkpoints, 2560).dropped_saves == ()


def test_too_little_data_for_one_step_is_explained():
    with pytest.raises(UserError, match="fewer than one optimizer step of 256 rows"):
        make_plan(TrainConfig(), CheckpointConfig(), rows=100)
