"""GPQA Diamond from the Hub (Idavidrein/gpqa, gated: accept its terms and set HF_TOKEN)."""
from rsft.tasks.datafile import save

GATED = "accept the dataset's terms on the Hub and set HF_TOKEN"  # what a user must do when the download is refused

QUESTIONS = 198  # GPQA's diamond set: evaluate.py --estimate counts it before the data is downloaded


def download(data_dir):
    import datasets

    gpqa = datasets.load_dataset("Idavidrein/gpqa", "gpqa_diamond", split="train")
    keep = ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
    save(data_dir, "gpqa_diamond", [{k: r[k] for k in keep} for r in gpqa])
