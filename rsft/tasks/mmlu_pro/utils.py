"""MMLU-Pro: up to ten options A-J, boxed-letter or 'answer is (X)' scoring after thinking."""
from rsft.grading import grade_choice
from rsft.tasks.common import load_local, score_samples

LETTERS = "ABCDEFGHIJ"


def load(**kwargs):
    return load_local("mmlu_pro", **kwargs)


def doc_to_text(doc):
    lines = "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(doc["options"]))
    return (f"The following is a multiple choice question about {doc['category']}.\n\n{doc['question']}\n\n"
            f"Options:\n{lines}\n\nPlease reason step by step, and put the letter of your final answer within "
            "\\boxed{}.")


def doc_to_target(doc):
    return doc["answer"]


def process_results(doc, results):
    return score_samples(results, lambda r: grade_choice(r, doc["answer"]))
