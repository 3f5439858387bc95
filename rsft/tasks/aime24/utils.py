"""aime24: AIME24 (in-domain), avg@10, math-verify. Data: HuggingFaceH4/aime_2024 (problem, answer)."""
from rsft.prompts import MATH_EVAL_PROMPT_SUFFIX
from rsft.math_grading import grade_math
from rsft.tasks.common import load_local, per_sample_faults, score_samples

ANSWER = "math"  # the last \boxed{} after thinking, else a bare final answer after </think> (rsft.math_grading)


def load(**kwargs):
    return load_local("aime24", **kwargs)


def doc_to_text(doc):
    return doc["problem"] + MATH_EVAL_PROMPT_SUFFIX


def doc_to_target(doc):
    return str(doc["answer"])


@per_sample_faults
def process_results(doc, results):
    """acc: the paper's scoring (math-verify over the whole response); acc_strict: after a closed </think> only."""
    return score_samples(results, lambda r: grade_math(r, str(doc["answer"])),
                         paper=lambda r: grade_math(r, str(doc["answer"]), mode="paper"), answer=ANSWER)
