"""word_problems: arithmetic word problems (generated locally, data.py), math-verify against the gold number."""
from rsft.grading import grade_math
from rsft.tasks.common import load_local, score_samples

# The short instruction of the calibration in issue 11: after the paper's longer "Please reason step by step, ..."
# the 135M base model rarely boxes an answer (bench/RESULTS.md, 2026-11-28: no answer in 5 of 5 on each task)
INSTRUCTION = " Put the final answer in \\boxed{}."


def load(**kwargs):
    return load_local("word_problems", **kwargs)


def doc_to_text(doc):
    return doc["question"] + INSTRUCTION


def doc_to_target(doc):
    return doc["answer"]


def process_results(doc, results):
    return score_samples(results, lambda r: grade_math(r, doc["answer"]))
