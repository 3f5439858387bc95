"""countdown: in-domain for the embedded default: held-out Countdown puzzles (generated locally)."""
from rsft.short_answer_grading import grade_countdown
from rsft.tasks.common import load_local, per_sample_faults, score_samples


def load(**kwargs):
    return load_local("countdown", **kwargs)


def doc_to_text(doc):
    return doc["prompt"]


def doc_to_target(doc):
    return doc["target"]


@per_sample_faults
def process_results(doc, results):
    """acc and acc_strict alike: the paper ran no Countdown evaluation, so the kit's scoring is the preset's."""
    return score_samples(results, lambda r: grade_countdown(r, doc["numbers"], doc["target"]))
