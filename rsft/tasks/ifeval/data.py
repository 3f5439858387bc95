"""IFEval from the Hub (google/IFEval), and nltk's punkt_tab (two of its checkers need it) for offline use."""
from pathlib import Path

from rsft.tasks.datafile import save

QUESTIONS = 541  # google/IFEval's prompts: evaluate.py --estimate counts it before the data is downloaded


def nltk_dir(data_dir) -> Path:
    """Where --download-data saves punkt_tab; the task's utils.py points nltk at it."""
    return Path(data_dir) / "ifeval" / "nltk_data"


def download(data_dir):
    import datasets
    import nltk

    ife = datasets.load_dataset("google/IFEval", split="train")
    save(data_dir, "ifeval", [{k: r[k] for k in ("key", "prompt", "instruction_id_list", "kwargs")} for r in ife])
    nltk.download("punkt_tab", download_dir=str(nltk_dir(data_dir)), quiet=True, raise_on_error=True)
