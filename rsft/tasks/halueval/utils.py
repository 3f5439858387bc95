"""halueval: HaluEval qa/dialogue/summarization, the paper's judge prompts, the last Yes/No after thinking."""
from rsft.short_answer_grading import grade_yes_no
from rsft.tasks.common import load_local, per_sample_faults, score_samples

ANSWER = "yes_no"  # what counts as the answer (the last Yes/No after thinking); rsft.tasks.common.extract

# The paper's instructions (its lm-eval task, after RUCAIBox/HaluEval's evaluate.py, without the few-shot examples),
# kept verbatim, stray quote included: the prompt is part of the protocol.
_TAIL = ("contains non-factual or hallucinated information. You SHOULD give your judgement based on the following "
         "hallucination types and the world knowledge.\nYou should try your best to determine if the {x} contains "
         "non-factual or hallucinated information. The answer you give MUST be \"Yes\" or \"No\"\".")
INSTRUCTIONS = {
    "qa": "I want you act as an answer judge. Given a question and an answer, your objective is to determine if the "
          "provided answer " + _TAIL.format(x="answer"),
    "dialogue": "I want you act as a response judge. Given a dialogue history and a response, your objective is to "
                "determine if the provided response " + _TAIL.format(x="response"),
    "summarization": "I want you act as a summary judge. Given a document and a summary, your objective is to "
                     "determine if the provided summary " + _TAIL.format(x="summary"),
}


def load(**kwargs):
    return load_local("halueval", **kwargs)


def doc_to_text(doc):
    s = doc["subset"]
    if s == "qa":
        body = f"#Knowledge: {doc['knowledge']}\n#Question#: {doc['question']}\n#Answer#: {doc['answer']}"
    elif s == "dialogue":
        body = (f"#Knowledge: {doc['knowledge']}\n#Dialogue History#: {doc['dialogue_history']}\n"
                f"#Response#: {doc['response']}")
    else:
        body = f"#Document#: {doc['document']}\n#Summary#: {doc['summary']}"
    return f"{INSTRUCTIONS[s]}\n\n{body}\n#Your Judgement#:"


def doc_to_target(doc):
    return doc["hallucination"]  # "yes" (it contains a hallucination) or "no"


@per_sample_faults
def process_results(doc, results):
    """acc: the paper's reading (its think-stripping, the last Yes/No, else the first line); acc_strict: the last
    Yes/No after a closed </think>. acc_<subset>: the paper's, only this subset's docs counting in its mean."""
    out = score_samples(results, lambda r: grade_yes_no(r, doc["hallucination"]),
                        paper=lambda r: grade_yes_no(r, doc["hallucination"], mode="paper"), answer=ANSWER)
    out[f"acc_{doc['subset']}"] = out["acc"]
    return out
