"""MMLU-Pro's test split from the Hub (TIGER-Lab/MMLU-Pro), cut to a 1k subset."""
import random

from rsft.tasks.datafile import save


def download(data_dir):
    import datasets

    pro = datasets.load_dataset("TIGER-Lab/MMLU-Pro", split="test")
    by_cat: dict[str, list] = {}
    for r in pro:
        by_cat.setdefault(r["category"], []).append(r)
    rng = random.Random(0)
    per = 1000 // len(by_cat)
    subset = [r for cat in sorted(by_cat) for r in rng.sample(by_cat[cat], min(per, len(by_cat[cat])))]
    save(data_dir, "mmlu_pro", [{"question": r["question"], "options": r["options"], "answer": r["answer"],
                                 "category": r["category"], "question_id": r["question_id"]} for r in subset])
