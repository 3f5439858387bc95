"""capitals: "What is the capital of X?" (data.py), right when the reply names that capital and no other."""
import re

from rsft.grading import parse
from rsft.prompts import SHORT_ANSWER_SUFFIX
from rsft.tasks.capitals.data import ALIASES, CAPITALS
from rsft.tasks.common import load_local, per_sample_faults, score_samples

ANSWER = "text"  # the reply after thinking; its last \boxed{} when it boxes one

_ALL = {city: (city, *ALIASES.get(city, ())) for _, city in CAPITALS}


def _names(text: str, names) -> bool:
    return any(re.search(rf"(?<!\w){re.escape(n)}(?!\w)", text, re.IGNORECASE) for n in names)


def grade_capital(response: str, gold: str) -> bool:
    """The answer (the last \\boxed{} after thinking, else the whole reply after it) names the gold capital and no
    other capital of the list: a reply that lists cities is not an answer."""
    p = parse(response)
    if p.truncated:
        return False
    text = p.boxed if p.boxed is not None else p.answer_text
    return _names(text, _ALL[gold]) and not any(_names(text, names) for city, names in _ALL.items() if city != gold)


def load(**kwargs):
    return load_local("capitals", **kwargs)


def doc_to_text(doc):
    return doc["question"] + SHORT_ANSWER_SUFFIX


def doc_to_target(doc):
    return doc["answer"]


@per_sample_faults
def process_results(doc, results):
    """acc and acc_strict alike: a task of the kit's own, no paper reading to differ from."""
    return score_samples(results, lambda r: grade_capital(r, doc["answer"]), answer=ANSWER)
