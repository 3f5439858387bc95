"""The filter functions the shared YAML template names (lm-eval imports this file by path)."""
from rsft.tasks.common import keep_all  # noqa: F401
