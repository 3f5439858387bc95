"""What a lower new-token cap per task, and the repetition rule (rsft/repetition.py), would change in an evaluated
quickstart run, read from its replies: each reply cut at c tokens is the reply that cap would have drawn (the
CPU evaluation's noise is keyed per question and token, so the first c tokens do not depend on the cap), and a
reply cut where the rule fires is the reply the rule gives. Each cut reply is graded again by its task's own
process_results. Prints per step and task: the score and the tokens generated, at each cap, without and with
the rule.
    python bench/bench_caps.py runs/bench-quickstart [CAPS]        # CAPS default 32,48,64,96,128,160,192
"""
import importlib
import json
import sys
from pathlib import Path

from transformers import AutoTokenizer

from rsft.models import resolve_model_path
from rsft.repetition import ends_at


def main(run: Path, caps: list[int]) -> None:
    tok = AutoTokenizer.from_pretrained(resolve_model_path("embedded:smollm2-135m-instruct"))
    print(f"{'step':>6} {'task':<14} {'cap':>4}  score (tokens)  | with the repetition rule")
    for f in sorted(run.glob("eval/*/step*/*.samples.jsonl")):
        task = f.name.split(".")[0]
        grade = importlib.import_module(f"rsft.tasks.{task}.utils").process_results
        samples = [json.loads(line) for line in f.read_text().splitlines()]
        ids = [tok(s["response"], add_special_tokens=False)["input_ids"] for s in samples]
        ends = [ends_at(x) for x in ids]
        for cap in caps:
            cells = []
            for rule in (False, True):
                score = tokens = 0
                for s, x, end in zip(samples, ids, ends):
                    keep = min(cap, len(x), end or len(x)) if rule else min(cap, len(x))
                    reply = s["response"] if keep == len(x) else tok.decode(x[:keep], skip_special_tokens=True)
                    score += grade(s["doc"], [reply])["acc"]
                    tokens += keep
                cells.append(f"{100 * score / len(samples):5.1f}% ({tokens:6,})")
            print(f"{f.parent.name:>6} {task:<14} {cap:>4}  {cells[0]}  | {cells[1]}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), [int(c) for c in (sys.argv[2] if len(sys.argv) > 2 else "32,48,64,96,128,160,192").split(",")])
