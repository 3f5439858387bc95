"""Instruction following (IFEval): lm-eval's own checkers, on the reply after thinking (strict) or on the paper's
think-stripped text."""
from __future__ import annotations

from rsft.grading import check_mode, paper_strip_thinking, parse


def _ifeval():
    """lm-eval's IFEval module: the official rule checkers, imported from the installed harness, never copied.

    Importing it runs nltk.download('punkt_tab') if nltk cannot find that data; rsft/tasks/ifeval/utils.py points nltk at the saved copy first.
    langdetect (the language checkers) is seeded, so a response gets the same verdict in every run.
    """
    import langdetect
    from lm_eval.tasks.ifeval import utils

    langdetect.DetectorFactory.seed = 0
    return utils


def grade_ifeval(response: str, doc: dict, mode: str = "strict") -> dict:
    """IFEval's checkers, prompt-level (all of a prompt's instructions followed) and instruction-level, strict and
    loose (IFEval's own two readings, whatever the mode). strict: on the text after thinking, stripped; cut-off
    thinking follows nothing. paper: on the paper's think-stripped text (paper_strip_thinking), which is the whole
    reply when thinking never closed."""
    check_mode(mode)
    n = len(doc["instruction_id_list"])
    if mode == "paper":
        answer = paper_strip_thinking(response)
    else:
        p = parse(response)
        if p.truncated:
            return {"prompt_strict": False, "prompt_loose": False, "inst_strict": [False] * n,
                    "inst_loose": [False] * n}
        answer = p.answer_text.strip()
    u = _ifeval()
    inp = u.InputExample(key=doc["key"], instruction_id_list=list(doc["instruction_id_list"]), prompt=doc["prompt"],
                         kwargs=list(doc["kwargs"]))
    strict = u.test_instruction_following_strict(inp, answer)
    loose = u.test_instruction_following_loose(inp, answer)
    return {"prompt_strict": strict.follow_all_instructions, "prompt_loose": loose.follow_all_instructions,
            "inst_strict": list(strict.follow_instruction_list), "inst_loose": list(loose.follow_instruction_list)}
