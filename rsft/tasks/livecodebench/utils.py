"""livecodebench: code generation, graded by running the code in a sandbox (rsft.code_grading.grade_code)."""
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rsft.errors import UserError
from rsft.code_grading import grade_code
from rsft.tasks.common import load_local, score_samples

ANSWER = "code"  # what counts as the answer (the last ```python block after thinking); rsft.tasks.common.extract

# The paper's prompt (its evalchemy LiveCodeBench task), parts separated by blank lines
INTRO = ("You are an expert Python programmer. You will be given a question (problem specification) and will "
         "generate a correct Python program that matches the specification and passes all tests.")
STDIN_FORMAT = ("Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test "
                "on the sample inputs). Enclose your code within delimiters as follows: ```python\n# YOUR CODE HERE\n"
                "```. Ensure that when the python program runs, it reads the inputs, runs the algorithm and writes "
                "output to STDOUT.")
CALL_FORMAT = ("Do not directly test on the sample inputs. Enclose your code within delimiters as follows: "
               "```python\n# YOUR CODE HERE\n```. Return the function body without invoking it at the final "
               "solution.")
STARTER = ("You will use the following starter code to write the solution to the problem and enclose your code "
           "within delimiters.\n```python\n{}\n```")  # LiveCodeBench's own wording


def load(data_dir=None, **kwargs):
    """The problems, each with the absolute path of its tests file (checked now, not after generation)."""
    data = load_local("livecodebench", data_dir=data_dir, **kwargs)["test"]
    root = Path(data_dir) / "livecodebench"
    missing = [f for f in data["tests_file"] if not (root / f).is_file()]
    if missing:
        raise UserError(f"livecodebench: {len(missing)} tests files missing in {root} (first: {missing[0]}); fill "
                        f"them once online with: python evaluate.py --download-data {data_dir}")
    return {"test": data.map(lambda row: {"tests_path": str(root / row["tests_file"])})}


def doc_to_text(doc):
    if doc["testtype"] == "stdin":
        return f"{INTRO}\n\n{doc['question_content']}\n\n{STDIN_FORMAT}"
    return f"{INTRO}\n\n{doc['question_content']}\n\n{STARTER.format(doc['starter_code'])}\n\n{CALL_FORMAT}"


def doc_to_target(doc):
    return ""  # graded by running tests, not against a reference


def process_results(doc, results):
    responses = results[0] if isinstance(results[0], list) else results
    spec = json.loads(Path(doc["tests_path"]).read_text())
    with ThreadPoolExecutor(max_workers=len(responses)) as pool:  # one sandbox per sample, side by side
        verdicts = dict(zip(responses, pool.map(lambda r: grade_code(r, spec["tests"], spec["fn_name"]), responses)))
    return score_samples(results, verdicts.__getitem__, answer=ANSWER)
