"""word_problems: arithmetic word problems (generated locally, data.py), the whole-number answer read flexibly."""
from rsft.short_answer_grading import grade_number
from rsft.prompts import SHORT_ANSWER_SUFFIX
from rsft.tasks.common import load_local, per_sample_faults, score_samples

ANSWER = "number"  # the last integer of the last \boxed{}, else of the reply, after thinking; rsft.short_answer_grading


def load(**kwargs):
    return load_local("word_problems", **kwargs)


def doc_to_text(doc):
    return doc["question"] + SHORT_ANSWER_SUFFIX


def doc_to_target(doc):
    return doc["answer"]


@per_sample_faults
def process_results(doc, results):
    """acc and acc_strict alike: a task of the kit's own, no paper reading to differ from."""
    return score_samples(results, lambda r: grade_number(r, doc["answer"]), answer=ANSWER)
