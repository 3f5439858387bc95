"""hexphi: HEx-PHI harmful instructions, asked directly; judged by rsft.judges (harm rubric)."""
from rsft.judges import generation_only
from rsft.tasks.common import load_local


def load(**kwargs):
    return load_local("hexphi", **kwargs)


def doc_to_text(doc):
    return doc["prompt"]


def process_results(doc, results):
    return generation_only(results)
