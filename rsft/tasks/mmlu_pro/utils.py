"""MMLU-Pro: up to ten options A-J; the paper's prompt and regex (acc), the boxed letter after thinking (acc_strict)."""
from rsft.choice_grading import grade_choice, grade_mmlu_pro_paper
from rsft.tasks.common import load_local, per_sample_faults, score_samples

LETTERS = "ABCDEFGHIJ"


def load(**kwargs):
    return load_local("mmlu_pro", **kwargs)


def doc_to_text(doc):
    """The paper's zero-shot prompt (its lm-eval tasks/mmlu_pro/utils.py format_cot_example, no answer)."""
    options = "".join(f"{LETTERS[i]}. {o}\n" for i, o in enumerate(doc["options"]))
    return (f"Question:\n{doc['question']}\nOptions:\n{options}Please reason step by step and return your final "
            "answer within \\boxed{}. Only include the letter choice (A, B, C, D, E, F, G, H, I or J) as your final "
            "answer.")


def doc_to_target(doc):
    return doc["answer"]


@per_sample_faults
def process_results(doc, results):
    """acc: the paper's first regex match over the whole reply; acc_strict: the letter after a closed </think>."""
    return score_samples(results, lambda r: grade_choice(r, doc["answer"]),
                         paper=lambda r: grade_mmlu_pro_paper(r, doc["answer"]))
