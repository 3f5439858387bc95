"""ifeval: IFEval, lm-eval's official checkers on the reply after thinking (rsft.instruction_grading.grade_ifeval)."""
from rsft.errors import UserError
from rsft.instruction_grading import grade_ifeval
from rsft.tasks.common import load_local, per_sample_faults, score_samples
from rsft.tasks.datafile import eval_data_dir
from rsft.tasks.ifeval.data import nltk_dir as punkt_dir

ANSWER = "text"  # what counts as the answer (the whole reply after thinking); rsft.tasks.common.extract

IFEVAL_NEEDS_PUNKT = frozenset({"length_constraints:number_sentences", "change_case:capital_word_frequency"})


def use_nltk_data(path) -> None:
    """Let nltk find data saved under `path` (`evaluate.py --download-data` saves punkt_tab there)."""
    import nltk

    if str(path) not in nltk.data.path:
        nltk.data.path.insert(0, str(path))


def punkt_available() -> bool:
    """nltk's English sentence tokenizer data, which two IFEval checkers need (see IFEVAL_NEEDS_PUNKT)."""
    import nltk

    try:
        nltk.data.find("tokenizers/punkt_tab/english/")
        return True
    except LookupError:
        return False


def load(data_dir=None, **kwargs):
    """The prompts, and nltk pointed at DATA_DIR/ifeval/nltk_data; refused here, before any generation, if a prompt
    needs the sentence tokenizer and it is missing (the checkers would otherwise fail after the whole run)."""
    data_dir = data_dir or eval_data_dir()
    data = load_local("ifeval", data_dir=data_dir, **kwargs)
    nltk_dir = punkt_dir(data_dir)
    use_nltk_data(nltk_dir)
    needs = {i for ids in data["test"]["instruction_id_list"] for i in ids} & IFEVAL_NEEDS_PUNKT
    if needs and not punkt_available():
        raise UserError(f"ifeval: {', '.join(sorted(needs))} need nltk's punkt_tab, not found in {nltk_dir}; fill "
                        f"it once online with: python evaluate.py --download-data {data_dir}")
    return data


def doc_to_text(doc):
    return f"Question: {doc['prompt']}\nAnswer:"  # the paper's lm-eval prompt, under the chat template


def doc_to_target(doc):
    return ""  # graded by rules, not against a reference


@per_sample_faults
def process_results(doc, results):
    """acc: prompt-level strict accuracy on the paper's think-stripped text (an unclosed reply whole), the other
    IFEval accuracies likewise; acc_strict: prompt-level strict accuracy after a closed </think> only."""
    responses = results[0] if isinstance(results[0], list) else results
    graded = {r: grade_ifeval(r, doc, mode="paper") for r in responses}
    out = score_samples(results, lambda r: grade_ifeval(r, doc)["prompt_strict"],
                        paper=lambda r: graded[r]["prompt_strict"], answer=ANSWER)
    out["prompt_level_loose_acc"] = sum(graded[r]["prompt_loose"] for r in responses) / len(responses)
    out["inst_level_strict_acc"] = [x for r in responses for x in graded[r]["inst_strict"]]
    out["inst_level_loose_acc"] = [x for r in responses for x in graded[r]["inst_loose"]]
    return out


def mean_of_lists(items):
    """Instruction-level accuracy: every instruction of every prompt (and sample) counts once."""
    flat = [x for item in items for x in item]
    return sum(flat) / max(1, len(flat))
