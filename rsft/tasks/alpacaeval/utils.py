"""alpacaeval: AlpacaEval 2.0 instructions; scored by a reward model in rsft.judges."""
from rsft.judges import generation_only
from rsft.tasks.common import load_local


def load(**kwargs):
    return load_local("alpacaeval", **kwargs)


def doc_to_text(doc):
    return doc["prompt"]


def process_results(doc, results):
    return generation_only(results)
