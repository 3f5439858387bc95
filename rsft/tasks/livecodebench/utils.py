"""livecodebench: code generation, graded by running the code in a sandbox (rsft.code_grading.run_code_tests)."""
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rsft.errors import UserError
from rsft.code_grading import extract_code, livecodebench_paper_code, run_code_tests
from rsft.tasks.common import load_local, guarded, per_sample_faults, score_samples

ANSWER = "code"  # what counts as the answer (the last ```python block after thinking); rsft.tasks.common.extract

# The paper's prompt (its evalchemy LiveCodeBench/eval_instruct.py @ 4a20109): intro, question, format, joined with
# no separator, and no starter code
INTRO = ("You are an expert Python programmer. You will be given a question (problem specification) and will "
         "generate a correct Python program that matches the specification and passes all tests.")
STDIN_FORMAT = ("Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test "
                "on the sample inputs). Enclose your code within delimiters as follows: ```python\n# YOUR CODE HERE\n"
                "```. Ensure that when the python program runs, it reads the inputs, runs the algorithm and writes "
                "output to STDOUT.")
CALL_FORMAT = ("Do not directly test on the sample inputs. Enclose your code within delimiters as follows: "
               "```python\n# YOUR CODE HERE\n```. Return the function body without invoking it at the final "
               "solution.")


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
    return INTRO + doc["question_content"] + (STDIN_FORMAT if doc["testtype"] == "stdin" else CALL_FORMAT)


def doc_to_target(doc):
    return ""  # graded by running tests, not against a reference


@per_sample_faults
def process_results(doc, results):
    """acc: the paper's runner (its last python block anywhere, thinking included, on the private tests only, run
    as its run_test_std ran them, one time budget for them all, the whole stripped stdout compared); acc_strict:
    LiveCodeBench's own grading of the last block after a closed </think>, on public + private tests. Each
    distinct (program, rules) runs once."""
    responses = results[0] if isinstance(results[0], list) else results
    spec = json.loads(Path(doc["tests_path"]).read_text())
    private = spec.get("private", spec["tests"])  # data fetched before private tests were kept apart: all of them
    rules = {"strict": lambda c: run_code_tests(c, spec["tests"], spec["fn_name"])[0],
             "paper": lambda c: run_code_tests(c, private, spec["fn_name"], paper=True)[0]}
    code = {(r, mode): (livecodebench_paper_code(r) if mode == "paper" else extract_code(r))
            for r in responses for mode in rules}
    jobs = sorted({(c, mode) for (_, mode), c in code.items() if c is not None})
    with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:  # one sandbox per job, side by side
        passed = dict(zip(jobs, pool.map(guarded(lambda job: rules[job[1]](job[0])), jobs)))
    return score_samples(results, lambda r: code[r, "strict"] is not None and passed[code[r, "strict"], "strict"],
                         paper=lambda r: code[r, "paper"] is not None and passed[code[r, "paper"], "paper"],
                         answer=ANSWER)
