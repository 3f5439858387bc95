"""StrongREJECT from the Hub (walledai/StrongREJECT): the user request in `prompt`."""
from rsft.tasks.datafile import save

QUESTIONS = 313  # StrongREJECT's forbidden prompts: evaluate.py --estimate counts it before the data is downloaded


def download(data_dir):
    import datasets

    sr = datasets.load_dataset("walledai/StrongREJECT", split="train")
    save(data_dir, "strongreject", [{"prompt": r["prompt"], "category": r["category"], "source": r["source"]}
                                    for r in sr])
