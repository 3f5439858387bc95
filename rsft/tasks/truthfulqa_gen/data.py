"""TruthfulQA's generation split from the Hub (truthfulqa/truthful_qa, generation, validation)."""
from rsft.tasks.datafile import save

QUESTIONS = 817  # TruthfulQA's questions: evaluate.py --estimate counts it before the data is downloaded


def download(data_dir):
    import datasets

    tqa = datasets.load_dataset("truthfulqa/truthful_qa", "generation", split="validation")
    save(data_dir, "truthfulqa_gen", [{"prompt": r["question"].strip(), "best_answer": r["best_answer"],
                                       "category": r["category"], "correct_answers": r["correct_answers"],
                                       "incorrect_answers": r["incorrect_answers"]} for r in tqa])
