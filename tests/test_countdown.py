"""The embedded Countdown data: every trace verified; the checker executes nothing."""
import time

import pytest

from rsft.countdown import evaluate_expression, is_solution, make_dataset


def test_every_generated_trace_is_a_verified_solution_with_backtracking():
    rows = make_dataset(60, seed=3)
    for r in rows:
        boxed = r["response"].rsplit("\\boxed{", 1)[1][:-1]
        assert is_solution(boxed, r["answer"]["numbers"], r["answer"]["target"])
        assert r["response"].startswith("<think>\n") and "</think>" in r["response"]
    assert sum(": too " in r["response"] for r in rows) > 30  # most traces try, fail and backtrack


def test_puzzles_have_the_quickstart_size_and_traces_search_within_the_dead_end_cap():
    from rsft.countdown import COUNT, MAX_DEAD_ENDS, MAX_NUMBER, TARGETS

    rows = make_dataset(200, seed=4)
    for r in rows:
        numbers, target = r["answer"]["numbers"], r["answer"]["target"]
        assert len(numbers) == COUNT == 3 and all(1 <= n <= MAX_NUMBER == 20 for n in numbers)
        assert TARGETS[0] <= target <= TARGETS[1] and TARGETS == (1, 100)
        thinking = r["response"].split("</think>")[0]
        dead_ends = thinking.count(": too ")
        assert dead_ends <= MAX_DEAD_ENDS == 2 and thinking.count("That reaches the target!") == 1
    assert len({(tuple(sorted(r["answer"]["numbers"])), r["answer"]["target"]) for r in rows}) == 200  # distinct
    assert max(r["response"].count(": too ") for r in rows) == MAX_DEAD_ENDS  # the cap is reached, not just obeyed


def test_chance_counts_every_combination_under_the_traces_rules():
    from rsft.countdown import chance

    # 2 and 3: 2 + 3 = 5, 3 - 2 = 1, 2 * 3 = 6 (2 - 3 is negative, 2 / 3 and 3 / 2 are not whole): one in three
    assert chance([2, 3], 6) == pytest.approx(1 / 3) and chance([3, 2], 1) == pytest.approx(1 / 3)
    assert chance([2, 3], 7) == 0.0
    # 1, 2, 4 by hand: 15 combinations start from (1, 2), 14 from (1, 4), 16 from (2, 4); 7 is reached by
    # (1 + 2) + 4, (1 + 4) + 2, (2 + 4) + 1 and (2 * 4) - 1
    assert chance([1, 2, 4], 7) == pytest.approx(4 / 45) and chance([1, 1, 1], 50) == 0.0
    assert 0 < chance([1, 2, 3, 4], 24) < 1  # four numbers are counted
    assert chance([1, 2, 3, 4, 5], 15) is None  # five are too many to count in a report


def test_generation_is_deterministic_per_seed():
    assert make_dataset(10, seed=1) == make_dataset(10, seed=1)
    assert make_dataset(10, seed=1) != make_dataset(10, seed=2)


@pytest.mark.parametrize("expr,ok", [
    ("(19 + 49) - 9", True),
    ("19 + 49 - 9", True),
    ("49 + 19 - 9", True),
    ("19 + 40", False),          # does not use every number
    ("19 + 49 - 9 + 0", False),  # uses a number not given
    ("(19 + 49) - 8", False),    # wrong value
])
def test_is_solution(expr, ok):
    assert is_solution(expr, [19, 9, 49], 59) is ok


@pytest.mark.parametrize("hostile", [
    "__import__('os').system('echo pwned')",
    "9**9**9**9",
    "(" * 5000,
    "1" + "+1" * 100000,
    "open('/etc/passwd').read()",
    "1/0",
])
def test_hostile_expressions_are_rejected_quickly(hostile):
    t = time.perf_counter()
    assert evaluate_expression(hostile) is None
    assert time.perf_counter() - t < 1.0
