"""truthfulqa_gen: TruthfulQA generation; judged by rsft.judges (truth and info judges)."""
from rsft.judges import generation_only
from rsft.tasks.common import load_local


def load(**kwargs):
    return load_local("truthfulqa_gen", **kwargs)


def doc_to_text(doc):
    return "\n\nQ: " + doc["prompt"]  # the paper's prompt; the judges see the bare question


def process_results(doc, results):
    return generation_only(results)
