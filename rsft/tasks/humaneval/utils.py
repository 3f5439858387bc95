"""humaneval: complete a Python function, graded by running the problem's check() in a sandbox."""
from concurrent.futures import ThreadPoolExecutor

from rsft.code_grading import grade_humaneval
from rsft.tasks.common import load_local, guarded, per_sample_faults, score_samples

ANSWER = "code"  # what counts as the answer (the last ```python block after thinking); rsft.tasks.common.extract

INSTRUCTION = ("You are an expert Python programmer. Complete the following Python function so that it does what its "
               "docstring says. Enclose the complete function, signature included, within delimiters as follows: "
               "```python\n# YOUR CODE HERE\n```.")


def load(**kwargs):
    return load_local("humaneval", **kwargs)


def doc_to_text(doc):
    return f"{INSTRUCTION}\n\n```python\n{doc['prompt']}```"


def doc_to_target(doc):
    return ""  # graded by running the problem's tests, not against a reference


@per_sample_faults
def process_results(doc, results):
    responses = results[0] if isinstance(results[0], list) else results
    with ThreadPoolExecutor(max_workers=len(responses)) as pool:  # one sandbox per sample, side by side
        verdicts = dict(zip(responses, pool.map(guarded(lambda r: grade_humaneval(r, doc)), responses)))
    return score_samples(results, verdicts.__getitem__, answer=ANSWER)  # the paper ran no HumanEval: acc = strict
