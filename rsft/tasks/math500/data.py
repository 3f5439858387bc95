"""MATH-500 from the Hub (HuggingFaceH4/MATH-500, test split): problem, answer, unique_id."""
from rsft.tasks.datafile import save

QUESTIONS = 500  # HuggingFaceH4/MATH-500's test split: evaluate.py --estimate counts it before the data is downloaded


def download(data_dir):
    import datasets

    math = datasets.load_dataset("HuggingFaceH4/MATH-500", split="test")
    save(data_dir, "math500", [{"problem": r["problem"], "answer": r["answer"], "unique_id": r["unique_id"]}
                               for r in math])
