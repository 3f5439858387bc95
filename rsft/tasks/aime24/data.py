"""AIME 2024 from the Hub (HuggingFaceH4/aime_2024): problem, answer (as text), id."""
from rsft.tasks.datafile import save


def download(data_dir):
    import datasets

    aime = datasets.load_dataset("HuggingFaceH4/aime_2024", split="train")
    save(data_dir, "aime24", [{"problem": r["problem"], "answer": str(r["answer"]), "id": r["id"]} for r in aime])
