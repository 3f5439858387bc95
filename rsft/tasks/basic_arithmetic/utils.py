"""basic_arithmetic: reasoning-gym's integer arithmetic (generated locally), graded by its own score_answer."""
from rsft.config import MATH_PROMPT_SUFFIX
from rsft.grading import grade_reasoning_gym
from rsft.tasks.common import load_local, score_samples


def load(**kwargs):
    return load_local("basic_arithmetic", **kwargs)


def doc_to_text(doc):
    return doc["question"] + MATH_PROMPT_SUFFIX


def doc_to_target(doc):
    return doc["answer"]


def process_results(doc, results):
    return score_samples(results, lambda r: grade_reasoning_gym(r, doc))
