"""The quickstart's weak-model story in numbers (rsft.behaviour): the share of Countdown replies in the traces'
form (the surface), and the score against a random guess, paired per puzzle (the substance)."""
import pytest

from rsft.behaviour import countdown_form, form_share, guess_pairs
from rsft.countdown import chance
from rsft.stats import stratified_bootstrap

NUMBERS = [3, 5, 7]


@pytest.mark.parametrize("reply, formed", [
    ("<think>\nTry 3 + 5 = 8, 8 * 7 = 56. That reaches the target!\n</think>\n\n\\boxed{(3 + 5) * 7}", True),
    ("<think>\nTry 3 * 5 = 15.\n</think>\n\n\\boxed{3 * 5 + 7}", True),  # wrong value, right form: surface
    ("<think>\nTry 7 - 3 = 4\n</think>\n\n\\boxed{7 - 3 = 4}", False),  # not every number used
    ("<think>\nTry 3 + 3 = 6\n</think>\n\n\\boxed{3 + 3 + 5 + 7}", False),  # a number used twice
    ("<think>\nTry 3 + 5 = 8, 8 * 7 = 56. Try 3 + 5 = 8, 8 * 7 = 56. Try", False),  # cut off: no closed thinking
    ("\\boxed{(3 + 5) * 7}", False),  # no thinking: not the traces' form
    ("<think>\nhm\n</think>\n\nThe answer is (3 + 5) * 7.", False),  # nothing boxed
    ("<think>\nx\n</think>\n\n\\boxed{__import__('os')}", False),  # not arithmetic
])
def test_a_reply_is_in_the_traces_form_only_with_closed_thinking_and_a_boxed_equation_of_the_numbers(reply,
                                                                                                       formed):
    assert countdown_form(reply, NUMBERS) is formed


def sample(doc_id, reply, acc, numbers=NUMBERS, target=56):
    return {"doc_id": doc_id, "response": reply, "doc_acc": acc, "doc": {"numbers": numbers, "target": target}}


GOOD = "<think>\nTry 3 + 5 = 8, 8 * 7 = 56.\n</think>\n\n\\boxed{(3 + 5) * 7}"
FORM_ONLY = "<think>\nTry 3 * 5 = 15.\n</think>\n\n\\boxed{3 * 5 + 7}"


def test_the_form_share_counts_replies_in_form_whatever_they_solve():
    samples = [sample(0, GOOD, 1.0), sample(1, FORM_ONLY, 0.0), sample(2, "Try 3 + 5", 0.0), sample(3, "no", 0.0)]
    assert form_share(samples) == 0.5
    assert form_share([{"doc_id": 0, "response": GOOD, "doc": {"question": "capital?"}}]) is None  # not Countdown
    assert form_share([]) is None


def test_the_score_is_paired_with_each_puzzles_random_guess():
    samples = [sample(0, GOOD, 1.0), sample(1, FORM_ONLY, 0.0, target=22), sample(2, "no", 0.0, [2, 4, 6], 12)]
    guess, score = guess_pairs(samples)
    assert score == {0: 1.0, 1: 0.0, 2: 0.0}
    assert guess == {0: chance(NUMBERS, 56), 1: chance(NUMBERS, 22), 2: chance([2, 4, 6], 12)}
    assert 0 < guess[0] < 1
    change, low, high = stratified_bootstrap([(guess, score)])
    assert change == pytest.approx(sum(score.values()) / 3 - sum(guess.values()) / 3)
    assert low <= change <= high


def test_a_sample_without_its_puzzle_or_score_gives_no_pairs():
    assert guess_pairs([sample(0, GOOD, None)]) is None  # an old result without per-question scores
    assert guess_pairs([{"doc_id": 0, "response": GOOD, "doc_acc": 1.0, "doc": {"q": 1}}]) is None
    assert guess_pairs([sample(0, GOOD, 1.0, numbers=[1, 2, 3, 4, 5, 6], target=21)]) is None  # too many to count
