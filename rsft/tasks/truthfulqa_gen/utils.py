"""truthfulqa_gen: TruthfulQA generation, judged by rsft.judges (truth and info judges); its prompt."""


def doc_to_text(doc):
    return "\n\nQ: " + doc["prompt"]  # the paper's prompt; the judges see the bare question

