"""GPQA-Diamond: the paper's prompt and scorer (acc), the letter after thinking (acc_strict); a deterministic shuffle."""
import hashlib
import random

from rsft.choice_grading import grade_choice, grade_gpqa_paper
from rsft.tasks.common import load_local, per_sample_faults, score_samples

LETTERS = "ABCD"


def load(**kwargs):
    return load_local("gpqa_diamond", **kwargs)


def options(doc):
    """(shuffled options, the correct letter), the paper's procedure (evalchemy GPQADiamond/eval_instruct.py: seed
    42 + hash(question) % 10000, random.Random(seed).shuffle of [correct, incorrect 1-3]) with sha256 in place of
    Python's hash(), which is salted per process, so the paper's order cannot be reproduced; this one is the same
    in every process and on every machine."""
    opts = [doc["Correct Answer"], doc["Incorrect Answer 1"], doc["Incorrect Answer 2"], doc["Incorrect Answer 3"]]
    seed = 42 + int(hashlib.sha256(doc["Question"].encode()).hexdigest(), 16) % 10000
    order = list(range(4))
    random.Random(seed).shuffle(order)
    shuffled = [opts[i] for i in order]
    return shuffled, LETTERS[order.index(0)]


def doc_to_text(doc):
    """The paper's prompt: options "A) x, B) y, ..." on one line, question and options as written (not stripped)."""
    opts, _ = options(doc)
    listed = ", ".join(f"{LETTERS[i]}) {o}" for i, o in enumerate(opts))
    return (f"Problem: {doc['Question']}\nOptions: {listed}\nPlease reason step by step and return your final answer "
            "within \\boxed{}. Only include the letter choice (A, B, C, or D) as your final answer.")


def doc_to_target(doc):
    return options(doc)[1]


@per_sample_faults
def process_results(doc, results):
    """acc: the paper's scorer (the last box anywhere, thinking included); acc_strict: the letter after </think>."""
    gold = options(doc)[1]
    return score_samples(results, lambda r: grade_choice(r, gold), paper=lambda r: grade_gpqa_paper(r, gold))
