"""The report's first section, What happened: each run's headline in words (the in-domain change by the last step,
the out-of-domain average's dip and recovery, each with a paired-bootstrap interval) and the change-from-base
figure. The numbers come from rsft.stats (the dip, the headline's steps, the bootstraps); the words are here, in
`headline`."""
from __future__ import annotations

from pathlib import Path

from rsft.plots import Line, Panel, colors, figure
from rsft.behaviour import form_share, guess_pairs
from rsft.report_behaviour import read_samples
from rsft.report_format import slug
from rsft.report_page import Page
from rsft.report_scores import of_task
from rsft.report_warnings import small_n
from rsft.results import IN_AVG, OOD_AVG, Series, average, domain_pairs, groups
from rsft.stats import Interval, find_dip, headline_steps, stratified_bootstrap


def _points(x: float) -> str:
    return f"{100 * x:+.0f}".replace("-", "−")


def _bracket(ci: Interval | None) -> str:
    return f" [{_points(ci[0])}, {_points(ci[1])}]" if ci else ""


def headline(in_domain: dict[int, float], ood: dict[int, float], in_ci: dict[int, Interval] | None = None,
             ood_ci: dict[int, Interval] | None = None) -> str:
    """One sentence: the in-domain change from the base (step 0) at the last step, and the out-of-domain
    average's largest drop and whether it came back to the base by the last step (or its gain, if it never fell).
    `*_ci`: an interval of the change from the base per step (a paired bootstrap), shown where given."""
    in_ci, ood_ci = in_ci or {}, ood_ci or {}
    parts = []
    if len(in_domain) > 1:  # a base and a later step: a change to state
        last = max(in_domain)
        parts.append(f"in-domain {_points(in_domain[last] - in_domain[0])} points{_bracket(in_ci.get(last))} "
                     f"by step {last}")
    if len(ood) > 1:
        last, dip = max(ood), find_dip(ood)
        if dip.dipped:
            worst, back = dip.worst_step, dip.recovered_step
            recovery = (f"back to the base by step {back}" if back is not None else
                        f"not recovered by step {last} ({_points(ood[last] - ood[0])})" if last != worst else
                        "at the last step")
            parts.append(f"out-of-domain average {_points(dip.worst - dip.base)} points{_bracket(ood_ci.get(worst))} "
                         f"at step {worst}, {recovery}")
        else:
            parts.append(f"out-of-domain average {_points(ood[last] - ood[0])} points{_bracket(ood_ci.get(last))} by "
                         f"step {last}, never below the base")
    return "; ".join(parts) + "." if parts else "No steps beyond the base to compare."


def _domain_interval(s: Series, in_domain: bool, step: int) -> tuple[float, float] | None:
    """A paired-bootstrap 95% interval (fractions) of the domain average's change from the base at `step`
    (rsft.stats.stratified_bootstrap: questions pair within a task, not across tasks); None where rsft.results'
    domain_pairs finds nothing to pair."""
    pairs = domain_pairs(s, in_domain, 0, step)
    return stratified_bootstrap(pairs)[1:] if pairs else None


def _fractions(s: Series, in_domain: bool) -> dict[int, float]:
    """The domain average as fractions, or {} without a base and a later step to compare it with."""
    avg = {step: v / 100 for step, (v, _) in average(s, in_domain).items()}
    return avg if 0 in avg and len(avg) > 1 else {}


def headline_line(s: Series) -> str | None:
    """The series' headline (`headline`), with its intervals at rsft.stats.headline_steps, and what limits it."""
    in_avg, ood_avg = _fractions(s, True), _fractions(s, False)
    if not in_avg and not ood_avg:
        return None
    cis = {flag: {step: ci} for flag, step in headline_steps(in_avg, ood_avg).items()
           if (ci := _domain_interval(s, flag, step))}
    text = f"{s.label}: {headline(in_avg, ood_avg, in_ci=cis.get(True), ood_ci=cis.get(False))}"
    missing = [name for name, avg, flag in (("in-domain", in_avg, True), ("out-of-domain", ood_avg, False))
               if avg and flag not in cis]
    if missing:
        text += (f" (No interval for the {' or the '.join(missing)} change: a task there has no per-question "
                 f"scores, or other questions at the two steps, so nothing can be paired.)")
    if small := small_n(s):
        text += f" (Only n = {min(small.values())} questions in a task: a smoke test, not a finding; see Warnings.)"
    return text + weak_model_story(s)


def _percent(x: float) -> str:
    return f"{100 * x:.0f}%"


def weak_model_story(s: Series) -> str:
    """For a run evaluated on Countdown (the embedded default): the surface learnt and the substance, in two
    sentences. The surface: the share of replies in the traces' form (rsft.behaviour.countdown_form), at the base
    and the last step. The substance: the last step's score against a random guess of the same puzzles, with a
    paired bootstrap of the difference per puzzle. The paper's weak-model finding is a high first number and a
    second one near the guess."""
    of = of_task(s, "countdown")
    if not of or 0 not in of or len(of) < 2:
        return ""
    last = max(of)
    base, now = read_samples(of[0]), read_samples(of[last])
    if not base or not now:
        return ""
    text = ""
    before, after = form_share(base), form_share(now)
    if before is not None and after is not None:
        text += (f" Surface: {_percent(before)} of the Countdown replies at the base and {_percent(after)} at step "
                 f"{last} are in the training traces' form (thinking closed, then a boxed equation of exactly the "
                 f"puzzle's numbers, whatever it equals).")
    pairs = guess_pairs(now)
    if pairs is not None:
        guess, score = pairs
        change, low, high = stratified_bootstrap([pairs])
        verdict = "above a random guess" if low > 0 else "below a random guess" if high < 0 else \
            "not distinguishable from a random guess at this number of puzzles"
        text += (f" Substance: at step {last} it solves {_percent(sum(score.values()) / len(score))} of the "
                 f"puzzles, against {100 * sum(guess.values()) / len(guess):.1f}% for a random guess at the same "
                 f"puzzles: {_points(change)} points{_bracket((low, high))} (paired per puzzle), {verdict}.")
    return text


def _change_lines(s: Series, colour: str) -> list[Line]:
    """Each domain average minus its base value, in points; step 0 is the point (0, 0)."""
    lines = []
    for name, flag, style in ((IN_AVG, True, "-"), (OOD_AVG, False, "--")):
        avg = average(s, flag)
        if 0 in avg and len(avg) > 1:
            lines.append(Line(f"{s.label}: {name}", {st: (v - avg[0][0], None) for st, (v, _) in avg.items()},
                              colour, linestyle=style))
    return lines


def section_headline(page: Page, series: list[Series], out: Path) -> None:
    """What happened, in words and one figure, before any table: the in-domain change and the out-of-domain
    average's course, each with a paired-bootstrap interval where the results keep their questions."""
    lines = [line for s in series if (line := headline_line(s))]
    if not lines:
        return
    page.heading("What happened")
    for line in lines:
        page.text(line)
    page.text("Changes are in percentage points against the base model (step 0); brackets: a 95% paired bootstrap "
              "over questions (each task's questions resampled, the tasks weighted equally as in the averages).")
    for name, members in groups(series).items():
        change = [line for s, c in zip(members, colors(len(members))) for line in _change_lines(s, c)]
        if change:
            path = figure(out / f"change_{slug(name)}.png", f"Change from the base model ({name})",
                          [Panel("in-domain (solid) and out-of-domain (dashed) average", "change from the base "
                                 "(points)", change, x="symlog", y="change")], ncols=1)
            page.image(path, f"In-domain and out-of-domain average minus the base model's, in points, against "
                             f"step ({name}); step 0 is the base itself.")
