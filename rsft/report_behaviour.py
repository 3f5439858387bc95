"""The report's Length and behaviour section, from the saved responses (TASK.samples.jsonl): length, truncation,
missing answers and the reflection and backtracking markers per step (rsft.behaviour), and for Countdown runs the
procedure (are the arithmetic steps right?) beside a random guess's score."""
from __future__ import annotations

import json
from pathlib import Path

from rsft.behaviour import KINDS, MARKERS, Behaviour, countdown_procedure, puzzle_of
from rsft.plots import Line, Panel, colors, figure
from rsft.report_format import rounded, slug, step_label, write_csv
from rsft.report_page import Page
from rsft.results import Result, Series, groups


def _behaviour_by_step(s: Series) -> dict[int, Behaviour]:
    """The responses of all of a step's tasks, pooled; results without a samples file are left out."""
    out: dict[int, Behaviour] = {}
    for (_, step), r in sorted(s.results.items(), key=lambda kv: kv[0][1]):
        if (b := r.behaviour()) is not None:
            out[step] = out[step].merge(b) if step in out else b
    return out


def _behaviour_row(b: Behaviour) -> list:
    no_answer = b.no_answer_share
    return ([b.responses, rounded(b.mean_tokens, 1), rounded(100 * b.truncated_share, 1),
             "—" if no_answer is None else rounded(100 * no_answer, 1)]
            + [rounded(b.per_1k(k)) for k in KINDS] + [rounded(b.per_1k(m)) for m in MARKERS])


def _behaviour_cells(b: Behaviour) -> list[str]:
    """The page's row: one number format per column, 1 decimal for length and shares, 2 for the rates per 1k
    tokens (the CSV keeps _behaviour_row's rounded numbers)."""
    row = _behaviour_row(b)
    return [str(row[0])] + [c if isinstance(c, str) else f"{c:.{1 if i < 3 else 2}f}" for i, c in enumerate(row[1:])]


BEHAVIOUR_HEADER = (["responses", "mean tokens", "truncated %", "no final answer %"]
                    + [f"{k} /1k tok" for k in KINDS] + [f"{m} /1k tok" for m in MARKERS])


def _behaviour_figures(page: Page, series: list[Series], out: Path) -> None:
    for name, members in groups(series).items():
        per = [(s, c, _behaviour_by_step(s)) for s, c in zip(members, colors(len(members)))]

        def panel(title, ylabel, fn):
            return Panel(title, ylabel, [Line(s.label, {st: (y, None) for st, b in bs.items()
                                                        if (y := fn(b)) is not None}, c) for s, c, bs in per])

        path = figure(out / f"length_{slug(name)}.png", f"Response length and truncation ({name})", [
            panel("mean response length", "tokens", lambda b: b.mean_tokens),
            panel("truncated (thinking never closed)", "% of responses", lambda b: 100 * b.truncated_share)])
        page.image(path, f"Mean response length and truncation rate against step ({name}).")
        path = figure(out / f"behaviour_{slug(name)}.png", f"Procedural markers and missing answers ({name})", [
            panel("reflection markers", "per 1,000 tokens", lambda b: b.per_1k("reflection")),
            panel("backtracking markers", "per 1,000 tokens", lambda b: b.per_1k("backtracking")),
            panel("no final answer", "% of responses",
                  lambda b: None if b.no_answer_share is None else 100 * b.no_answer_share)])
        page.image(path, f"Reflection and backtracking markers per 1,000 tokens, and responses with no final "
                         f"answer, against step ({name}).")


def section_behaviour(page: Page, series: list[Series], out: Path) -> None:
    page.heading("Length and behaviour over training")
    page.text("From the saved responses (TASK.samples.jsonl), pooled over a step's tasks. Surface verbosity is "
              "the length; procedural patterns are the reflection and backtracking markers, counted per 1,000 "
              "generated tokens so that length alone does not raise them. Markers (rsft/behaviour.py, matched "
              "case-insensitively as whole words over the whole response, thinking included):")
    page.table(["marker", "kind", "pattern"], [[m, kind, f"`{rx}`"] for m, (kind, rx) in MARKERS.items()])
    csv_rows = []
    for s in series:
        by_step = _behaviour_by_step(s)
        page.heading(s.label, 3)
        missing = [f"{t} at step {st}" for (t, st), r in sorted(s.results.items()) if r.behaviour() is None]
        if missing:
            page.text(f"No samples file for {', '.join(missing)}: left out of this table.")
        page.table(["step"] + BEHAVIOUR_HEADER, [[step_label(st)] + _behaviour_cells(b) for st, b in by_step.items()])
        csv_rows += [[s.label, "all", st] + _behaviour_row(b) for st, b in by_step.items()]
        csv_rows += [[s.label, t, st] + _behaviour_row(r.behaviour()) for (t, st), r in sorted(s.results.items())
                     if r.behaviour() is not None]
    write_csv(out / "behaviour.csv", ["series", "task", "step"] + BEHAVIOUR_HEADER, csv_rows)
    _behaviour_figures(page, series, out)
    section_procedure(page, series, out)


PROCEDURE_HEADER = ["step", "responses", "arithmetic steps", "steps right %", "target claims", "claims true %",
                    "random guess %"]


def guess_rate(samples: list[dict]) -> float | None:
    """rsft.countdown.chance averaged over the distinct puzzles of the samples (repeats counted once): the score
    of a random combination of each puzzle's numbers. None when a sample is not a Countdown puzzle's, or one
    has too many numbers to count."""
    from rsft.countdown import chance

    puzzles = {puzzle_of(x.get("doc")) for x in samples}
    if not puzzles or None in puzzles:
        return None
    rates = [chance(list(numbers), target) for numbers, target in puzzles]
    return None if None in rates else sum(rates) / len(rates)


def read_samples(r: Result) -> list[dict] | None:
    """The lines of a result's samples file; None when it has none."""
    from rsft.rundir import samples_of

    path = samples_of(r.path)
    if not path.exists():
        return None
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _procedure_rows(s: Series) -> list[list]:
    """Countdown procedure per step, from the countdown samples files (rsft.behaviour.Procedure)."""
    rows = []
    for (task, step), r in sorted(s.results.items(), key=lambda kv: kv[0][1]):
        samples = read_samples(r) if task == "countdown" else None
        if samples is None:
            continue
        try:
            p = countdown_procedure(samples)
        except ValueError as e:  # not the kit's Countdown prompts: no procedure to read
            rows.append([step_label(step), f"not read: {e}", "", "", "", "", ""])
            continue
        guess = guess_rate(samples)
        rows.append([step_label(step), p.responses, p.steps, "—" if p.step_accuracy is None else
                     rounded(100 * p.step_accuracy, 1), p.claims, "—" if p.claim_truth is None else
                     rounded(100 * p.claim_truth, 1), "—" if guess is None else rounded(100 * guess, 1)])
    return rows


def section_procedure(page: Page, series: list[Series], out: Path) -> None:
    """Countdown only: is the procedure carried out, or only its surface copied?"""
    per = [(s, rows) for s in series if (rows := _procedure_rows(s))]
    if not per:
        return
    page.heading("Countdown procedure", 3)
    page.text("Read from the Countdown responses' reasoning (rsft/behaviour.py): of the arithmetic steps "
              "\"a op b = c\" written, the share that are right, and of the sentences claiming the target is "
              "reached, the share whose steps are right and end at the target. A model that copies the surface of "
              "the traces writes steps and claims whatever their truth. Random guess: the score of one way of "
              "combining each puzzle's numbers drawn at random (rsft/countdown.py `chance`); a Countdown score "
              "near it is no evidence of search.")
    csv_rows = []
    for s, rows in per:
        page.heading(s.label, 4)
        page.table(PROCEDURE_HEADER, rows)
        csv_rows += [[s.label] + row for row in rows]
    write_csv(out / "procedure.csv", ["series"] + PROCEDURE_HEADER, csv_rows)
