"""AIME 2024 from the Hub (HuggingFaceH4/aime_2024): problem, answer (as text), id."""
from rsft.tasks.datafile import save

QUESTIONS = 30  # AIME 2024 I and II: evaluate.py --estimate counts it before the data is downloaded


def download(data_dir):
    import datasets

    aime = datasets.load_dataset("HuggingFaceH4/aime_2024", split="train")
    save(data_dir, "aime24", [{"problem": r["problem"], "answer": str(r["answer"]), "id": r["id"]} for r in aime])
