"""lm-evaluation-harness task definitions, one folder per benchmark, loaded with TaskManager(include_path=here).

Each folder: a YAML (lm-eval's own format) and a small utils.py. Grading lives in rsft.grading (how a reply is
read) and the graders by answer kind it names (rsft.math_grading, rsft.choice_grading, ...); the shared
pieces (reading the task's local data, keeping every repeat for avg@k) in rsft.tasks.common.
"""
from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent
