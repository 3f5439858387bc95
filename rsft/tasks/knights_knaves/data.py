"""knights_knaves: reasoning-gym puzzles generated locally (rsft/tasks/reasoning_gym_tasks.py)."""
from rsft.tasks import reasoning_gym_tasks


def build(data_dir):
    reasoning_gym_tasks.build(data_dir, "knights_knaves")
