"""strongreject: StrongREJECT forbidden prompts (public), asked directly; judged like HEx-PHI (harm rubric)."""
from rsft.judges import generation_only
from rsft.tasks.common import load_local


def load(**kwargs):
    return load_local("strongreject", **kwargs)


def doc_to_text(doc):
    return doc["prompt"]


def process_results(doc, results):
    return generation_only(results)
