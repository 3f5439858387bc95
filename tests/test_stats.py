"""The report's numbers in words: the headline, the floor warning and the Wilson intervals, on synthetic results."""
import pytest

from rsft.report_headline import headline
from rsft.stats import (find_dip, floor_or_ceiling, headline_steps, normal_interval, recovered_step, wilson,
                        wilson_mean, worst_step)


def test_wilson_matches_the_textbook_values_and_stays_inside_0_1():
    lo, hi = wilson(16, 100)
    assert lo == pytest.approx(0.1007, abs=1e-3) and hi == pytest.approx(0.2445, abs=1e-3)
    lo, hi = wilson(0, 50)  # at the floor: an interval above 0, not 0 +- 0
    assert lo == 0.0 and hi == pytest.approx(0.0713, abs=1e-3)
    lo, hi = wilson(8, 50)  # by hand: centre 0.18426, half-width 0.10089
    assert lo == pytest.approx(0.0834, abs=1e-4) and hi == pytest.approx(0.2851, abs=1e-4)
    assert wilson(50, 50)[1] == 1.0
    with pytest.raises(ValueError):
        wilson(0, 0)


def test_the_normal_interval_is_value_plus_minus_1_96_se_clipped_where_asked():
    assert normal_interval(0.5, 0.1) == pytest.approx((0.304, 0.696))
    assert normal_interval(0.02, 0.05, 0.0, 1.0) == pytest.approx((0.0, 0.118))  # a share cannot go below 0
    assert normal_interval(1.42, 1.0) == pytest.approx((-0.54, 3.38))  # a raw unit is not clipped


def test_the_worst_step_is_the_lowest_after_the_base_and_the_earliest_of_equals():
    assert worst_step({0: 0.1, 15: 0.3, 30: 0.2, 45: 0.2}) == 30
    assert worst_step({0: 0.0, 15: 0.5}) == 15  # the base itself is never the worst step


def test_the_headline_reads_the_out_of_domain_average_where_the_dip_table_finds_its_worst_step():
    dipped, never = {0: 0.5, 10: 0.3, 20: 0.45, 40: 0.55}, {0: 0.5, 10: 0.6, 20: 0.7}
    assert find_dip(dipped).worst_step == 10 and find_dip(dipped).recovered_step == 40
    assert headline_steps({0: 0.1, 40: 0.2}, dipped) == {True: 40, False: 10}  # in-domain: the last step
    assert headline_steps({}, never) == {False: 20}  # never below the base: read at the last step
    assert "at step 10, back to the base by step 40" in headline({}, dipped)


def test_recovery_is_the_first_step_after_the_worst_back_at_the_base_either_way_up():
    assert recovered_step({0: 0.5, 10: 0.3, 20: 0.5, 30: 0.2}, worst=10) == 20  # at the base counts as back
    assert recovered_step({0: 0.1, 10: 0.5, 20: 0.2, 30: 0.1}, worst=10, higher_is_better=False) == 30
    assert recovered_step({0: 0.5, 10: 0.3, 20: 0.4}, worst=10) is None


def test_a_task_at_0_or_100_at_every_step_is_a_floor_or_ceiling_not_no_dip():
    assert floor_or_ceiling({0: 0.0, 15: 0.0, 45: 0.0}) == "floor"
    assert floor_or_ceiling({0: 1.0, 45: 1.0}) == "ceiling"
    assert floor_or_ceiling({0: 0.0, 45: 0.02}) is None


def test_headline_names_the_rise_the_drop_and_the_missing_recovery():
    in_domain = {0: 0.0, 15: 0.08, 30: 0.13, 45: 0.16}
    ood = {0: 0.23, 15: 0.08, 30: 0.10, 45: 0.12}
    text = headline(in_domain, ood, in_ci={45: (0.09, 0.23)})
    assert text == ("in-domain +16 points [+9, +23] by step 45; out-of-domain average −15 points at step 15, "
                    "not recovered by step 45 (−11).")


def test_headline_says_when_the_out_of_domain_average_comes_back_or_never_falls():
    assert "back to the base by step 45" in headline({0: 0.0, 45: 0.2}, {0: 0.2, 15: 0.1, 45: 0.21})
    assert "+5 points by step 45, never below the base" in headline({0: 0.0, 45: 0.2}, {0: 0.2, 15: 0.2, 45: 0.25})
    assert "at the last step" in headline({}, {0: 0.2, 45: 0.1})
    assert headline({0: 0.1}, {0: 0.2}) == "No steps beyond the base to compare."  # only the base evaluated


def test_the_report_opens_with_the_headline_and_warns_about_a_task_at_the_floor(tmp_path):
    from rsft.report import write_report
    from helpers import plant

    run = tmp_path / "quick"
    run.mkdir()
    (run / "recipe.yaml").write_text("model:\n  name_or_path: embedded:smollm2-135m-instruct\ndata:\n  path: "
                                     "embedded:countdown\n")
    for step, in_domain, ood in ((0, 0.0, 0.24), (15, 0.08, 0.08), (45, 0.16, 0.10)):
        plant(run, step, "math500", in_domain, n=100)  # the in-domain task of the planted run
        plant(run, step, "word_problems", ood, n=50)
        plant(run, step, "humaneval", 0.0, n=50)  # 0 at every step: a floor, not "no dip"
    _, warnings = write_report([run], tmp_path / "rep")
    md = (tmp_path / "rep/report.md").read_text()
    assert md.index("What happened") < md.index("Warnings") < md.index("Scores")
    line = next(x for x in md.splitlines() if x.startswith("quick"))
    assert "in-domain +16 points [+" in line and "by step 45" in line
    assert "out-of-domain average −" in line and "at step 15, not recovered by step 45" in line
    assert any("humaneval is at 0% at every step (a floor effect)" in w for w in warnings)
    assert not any("word_problems is at" in w for w in warnings)


def test_an_average_of_proportions_has_an_interval_that_stays_sound_at_0_and_100():
    """Two out-of-domain tasks at 0/50 each: the mean's 1.96 s.e. is 0, so [0, 0]; Wilson at the pooled 100
    questions says up to 3.7% is consistent with them."""
    assert wilson_mean([0.0, 0.0], [50, 50]) == wilson(0, 100) and wilson(0, 100)[1] == pytest.approx(0.037, abs=1e-3)
    assert wilson_mean([1.0, 1.0], [50, 50])[0] < 1.0
    # unequal sizes: the effective n is T^2 / sum(1/n) = 4 / (1/100 + 1/25) = 80, at the mean 0.2
    assert wilson_mean([0.1, 0.3], [100, 25]) == pytest.approx(wilson(0.2 * 80, 80))
    with pytest.raises(ValueError):
        wilson_mean([0.5], [0])
