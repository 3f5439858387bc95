"""arith: out-of-domain for the embedded default: procedural multi-step arithmetic word problems, math-verify graded."""
from rsft.config import MATH_PROMPT_SUFFIX
from rsft.grading import grade_math
from rsft.tasks.common import load_local, score_samples


def load(**kwargs):
    return load_local("arith", **kwargs)


def doc_to_text(doc):
    return doc["question"] + MATH_PROMPT_SUFFIX


def doc_to_target(doc):
    return doc["answer"]


def process_results(doc, results):
    return score_samples(results, lambda r: grade_math(r, doc["answer"]))
