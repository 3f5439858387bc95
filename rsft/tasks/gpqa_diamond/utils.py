"""GPQA-Diamond: deterministic option shuffle, boxed-letter scoring after thinking."""
import hashlib
import random

from rsft.grading import grade_choice
from rsft.tasks.common import load_local, score_samples

LETTERS = "ABCD"


def load(**kwargs):
    return load_local("gpqa_diamond", **kwargs)


def options(doc):
    """(shuffled options, the correct letter); the same order in every process and on every machine."""
    opts = [doc["Correct Answer"], doc["Incorrect Answer 1"], doc["Incorrect Answer 2"], doc["Incorrect Answer 3"]]
    opts = [o.strip() for o in opts]
    seed = int(hashlib.sha256(doc["Question"].encode()).hexdigest()[:8], 16)
    order = list(range(4))
    random.Random(42 + seed).shuffle(order)
    shuffled = [opts[i] for i in order]
    return shuffled, LETTERS[order.index(0)]


def doc_to_text(doc):
    opts, _ = options(doc)
    lines = "\n".join(f"{LETTERS[i]}) {o}" for i, o in enumerate(opts))
    return (f"{doc['Question'].strip()}\n\n{lines}\n\nPlease reason step by step and return your final answer "
            "within \\boxed{}. Only include the letter choice (A, B, C, or D) as your final answer.")


def doc_to_target(doc):
    return options(doc)[1]


def process_results(doc, results):
    gold = options(doc)[1]
    return score_samples(results, lambda r: grade_choice(r, gold))
