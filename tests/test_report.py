"""The report: right numbers in the tables, the dip found, markers counted, bootstraps that tell noise from a real
change, plots and HTML written, and mixed or missing results said out loud."""
import csv
import json
import re
import shutil
from pathlib import Path

import pytest

import evaluate
import report
import train
from helpers import ROOT, make_recipe, plant
from rsft.behaviour import MARKERS, count_markers, summarize
from rsft.errors import UserError
from rsft.report import write_report
from rsft.results import load_series, paper_data, paper_points
from rsft.stats import find_dip, paired_bootstrap

# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def real_run(tmp_path_factory, tiny_model_dir):
    """A tiny run (checkpoints at steps 2 and 4) evaluated by evaluate.py on countdown and basic_arithmetic at steps
    0 and 4 only: step 2 is a gap."""
    import rsft.catalogue as ev

    tmp = tmp_path_factory.mktemp("reportrun")
    recipe = make_recipe(tmp, tiny_model_dir, extra="eval:\n  suite: countdown,basic_arithmetic\n")
    train.main([str(recipe), "train.num_train_epochs=1", "checkpoints.steps=[]"])
    with pytest.MonkeyPatch.context() as mp:  # the preset lives as long as the module's tests use it
        mp.setitem(ev.PRESETS, "tiny", ev.Preset(max_gen_toks=4, repeats=2, limit=2))
        assert evaluate.main([str(tmp / "run"), "--data-dir", str(tmp / "data"), "--preset", "tiny", "--steps",
                              "0,4"]) == 0
        yield tmp / "run"


def planted_run(root: Path, name: str = "cot4b") -> Path:
    """Qwen3-4B-Base + Math-CoT-20k with the paper's own Table 9 values (so run - paper = 0), a recovered dip on
    math500 and ifeval, an unrecovered one on gpqa_diamond, and a lower-is-better attack-success rate."""
    run = root / name
    run.mkdir(parents=True)
    (run / "recipe.yaml").write_text("model:\n  name_or_path: Qwen/Qwen3-4B-Base\ndata:\n  path: "
                                     "jasonrqh/Math-CoT-20k\n")
    values = {"math500": (0.708, 0.629, 0.862), "ifeval": (0.492, 0.330, 0.494),
              "gpqa_diamond": (0.500, 0.300, 0.400), "harm_asr": (0.100, 0.500, 0.300)}
    for task, vs in values.items():
        for step, v in zip((0, 20, 640), vs):
            plant(run, step, task, v, **({"higher_is_better": False} if task == "harm_asr" else {}))
    return run


@pytest.fixture
def cot4b(tmp_path):
    return planted_run(tmp_path)


def read_csv(path: Path) -> list[dict]:
    return list(csv.DictReader(path.open()))


# ------------------------------------------------------------------------------------------------ tables


def test_tables_hold_the_numbers_the_evaluation_wrote(real_run, tmp_path):
    page, _ = write_report([real_run], tmp_path / "rep")
    rows = read_csv(tmp_path / "rep/scores.csv")
    md = (tmp_path / "rep/report.md").read_text()
    for path in sorted(real_run.glob("eval/tiny/step*/*.json")):
        r = json.loads(path.read_text())
        row = next(x for x in rows if x["task"] == r["task"] and int(x["step"]) == r["step"])
        assert float(row["value"]) == pytest.approx(100 * r["value"], abs=0.01)
        assert float(row["stderr"] or 0) == pytest.approx(100 * (r["stderr"] or 0), abs=0.01)
        assert int(row["n"]) == r["n"] == 2 and int(row["k"]) == r["k"] == 2
        # avg@2: not a proportion of n, so value ± 1.96 s.e. (clipped to 0..100), not Wilson
        v, half = 100 * r["value"], 196 * (r["stderr"] or 0)
        assert f"{v:.1f} [{max(0, v - half):.1f}, {min(100, v + half):.1f}]" in md
        assert row["ci95_kind"] == "±1.96 s.e." and float(row["ci95_low"]) == pytest.approx(max(0, v - half), abs=0.01)
    assert "countdown (n=2, k=2, ±1.96 s.e.)" in md
    # countdown is the only in-domain task and basic_arithmetic the only out-of-domain one: the averages equal them
    for step in (0, 4):
        by = {x["task"]: float(x["value"]) for x in rows if int(x["step"]) == step}
        assert by["in-domain avg"] == by["countdown"] and by["out-of-domain avg"] == by["basic_arithmetic"]
    assert "| 0 (base) |" in md  # the base row


def test_averages_and_lower_is_better_tasks(cot4b, tmp_path):
    write_report([cot4b], tmp_path / "rep")
    rows = {(x["task"], int(x["step"])): x for x in read_csv(tmp_path / "rep/scores.csv")}
    assert float(rows[("out-of-domain avg", 640)]["value"]) == pytest.approx(40.0, abs=0.01)  # gpqa; not ifeval
    assert float(rows[("in-domain avg", 20)]["value"]) == pytest.approx(62.9, abs=0.01)
    assert rows[("harm_asr", 20)]["higher_is_better"] == "False"  # shown, but in no average
    md = (tmp_path / "rep/report.md").read_text()
    assert ("Not in the averages (general capability, lower is better, or not a percentage):\n\n| step | harm_asr "
            "(lower is better, n=1000, Wilson) | ifeval (n=1000, Wilson) |") in md


# ------------------------------------------------------------------------------------------------ the dip


def test_dip_detector_finds_a_planted_dip_and_its_recovery():
    d = find_dip({0: 0.708, 10: 0.649, 20: 0.629, 40: 0.715, 640: 0.862})
    assert (d.worst, d.worst_step, d.recovered_step, d.verdict) == (0.629, 20, 40, "recovered at step 40")
    d = find_dip({0: 0.5, 20: 0.3, 640: 0.4})
    assert (d.worst_step, d.recovered_step, d.verdict) == (20, None, "not recovered")
    assert find_dip({0: 0.5, 20: 0.6}).verdict == "no dip (never worse than base)"
    d = find_dip({0: 0.1, 20: 0.5, 640: 0.05}, higher_is_better=False)  # an attack-success rate
    assert (d.worst, d.worst_step, d.recovered_step) == (0.5, 20, 640)
    assert find_dip({10: 0.5}).verdict == "no base (step 0) result"


def test_report_names_the_dips_and_warns_about_an_unrecovered_run(cot4b, tmp_path):
    _, warnings = write_report([cot4b], tmp_path / "rep")
    dips = {x["benchmark"]: x for x in read_csv(tmp_path / "rep/dips.csv")}
    assert (dips["math500"]["worst_step"], dips["math500"]["verdict"]) == ("20", "recovered at step 640")
    assert dips["gpqa_diamond"]["verdict"] == "not recovered"
    assert (dips["harm_asr"]["worst"], dips["harm_asr"]["verdict"]) == ("50.0", "not recovered")
    assert dips["out-of-domain avg"]["verdict"] == "not recovered"
    assert any("still below base" in w and "under-optimized" in w for w in warnings)
    assert "still below base" in (tmp_path / "rep/report.html").read_text()


def test_a_still_rising_run_is_flagged(tmp_path):
    run = tmp_path / "rising"
    run.mkdir()
    (run / "recipe.yaml").write_text("model:\n  name_or_path: Qwen/Qwen3-4B-Base\ndata:\n  path: jasonrqh/Math-CoT-20k")
    for step, v in ((0, 0.5), (20, 0.3), (40, 0.45), (80, 0.6)):
        plant(run, step, "gpqa_diamond", v)
    _, warnings = write_report([run], tmp_path / "rep")
    assert any("still rising" in w and "paired-bootstrap interval of the change [+" in w for w in warnings)
    assert not any("still below base" in w for w in warnings)


def test_without_per_question_scores_a_rise_is_read_from_the_standard_errors(tmp_path):
    from rsft.rundir import samples_of

    run = tmp_path / "rising"
    run.mkdir()
    (run / "recipe.yaml").write_text("model:\n  name_or_path: Qwen/Qwen3-4B-Base\ndata:\n  path: jasonrqh/Math-CoT-20k")
    for step, v in ((0, 0.5), (20, 0.3), (40, 0.45), (80, 0.6)):
        samples_of(plant(run, step, "gpqa_diamond", v)).unlink()  # only the result files, as a judged task has
    _, warnings = write_report([run], tmp_path / "rep")
    assert any("still rising" in w and "1.96 standard errors" in w for w in warnings)  # +15 points, s.e. ~2.2


def test_two_right_answers_at_a_zero_floor_are_not_called_still_rising(tmp_path):
    run = tmp_path / "floor"  # the quickstart's shape: out of domain 0% at step 35, 2 of 50 right at step 70
    run.mkdir()
    (run / "recipe.yaml").write_text("model:\n  name_or_path: Qwen/Qwen3-4B-Base\ndata:\n  path: jasonrqh/Math-CoT-20k")
    for step, (wp, caps) in ((0, (0.2, 0.66)), (35, (0.0, 0.0)), (70, (0.04, 0.0))):
        plant(run, step, "word_problems", wp, n=50)
        plant(run, step, "capitals", caps, n=50)
    _, warnings = write_report([run], tmp_path / "rep")
    assert any("still below base" in w for w in warnings)
    assert not any("still rising" in w for w in warnings)  # 2.0 points, > 1 s.e. (1.4), but [+0, +4] by bootstrap


# ------------------------------------------------------------------------------------------------ behaviour

MARKER_FIXTURES = [  # hand-counted
    ("Wait, let me check that. Hmm... wait! Let me double-check: alternatively we could try again.",
     {"wait": 2, "hmm": 1, "let me check": 1, "double-check": 1, "alternatively": 1, "retry": 1}),
    ("I await the waiter. Hmmm. Let me recheck, then recalculate and start over. Double checking, hm.",
     {"wait": 0, "hmm": 2, "let me check": 1, "double-check": 1, "alternatively": 0, "retry": 2}),
    ("Alternatively: ALTERNATIVELY. We redo it; then we try another way. Let me verify.",
     {"wait": 0, "hmm": 0, "let me check": 1, "double-check": 0, "alternatively": 2, "retry": 2}),
    ("The answer is \\boxed{4}.", {}),
]


@pytest.mark.parametrize("text,expected", MARKER_FIXTURES)
def test_marker_counts_match_hand_counts(text, expected):
    assert count_markers(text) == {m: expected.get(m, 0) for m in MARKERS}


def test_behaviour_rates_are_per_1000_tokens_and_no_answers_are_counted():
    samples = [{"response": MARKER_FIXTURES[0][0], "tokens": 100, "truncated": False, "extracted": None},
               {"response": MARKER_FIXTURES[1][0], "tokens": 300, "truncated": False, "extracted": "4"},
               {"response": "<think>never closed", "tokens": 600, "truncated": True, "extracted": None}]
    b = summarize(samples)
    assert b.mean_tokens == pytest.approx(1000 / 3)
    assert b.per_1k("wait") == 2.0  # 2 waits in 1,000 tokens
    assert b.per_1k("reflection") == (2 + 3 + 2 + 2) * 1.0  # wait + hmm + let me check + double-check
    assert b.per_1k("backtracking") == (1 + 1 + 2) * 1.0
    assert (b.no_answer_share, b.truncated_share) == (1 / 3, 1 / 3)  # a truncated response is not "no answer"


def test_behaviour_table_reads_the_saved_samples(tmp_path):
    run = tmp_path / "verbose"
    run.mkdir()
    (run / "recipe.yaml").write_text("model:\n  name_or_path: Qwen/Qwen3-4B-Base\ndata:\n  path: jasonrqh/Math-CoT-20k")
    plant(run, 0, "math500", 0.5, n=10, responses=("\\boxed{1}",))
    plant(run, 10, "math500", 0.5, n=10, responses=("<think>wait wait hmm alternatively</think>",))
    write_report([run], tmp_path / "rep")
    rows = {(x["task"], x["step"]): x for x in read_csv(tmp_path / "rep/behaviour.csv")}
    assert rows[("all", "10")]["mean tokens"] == "4.0"  # 4 words = 4 tokens under the test's tokenizer
    assert float(rows[("all", "10")]["reflection /1k tok"]) == 750.0  # 3 markers in 4 tokens
    assert float(rows[("all", "10")]["backtracking /1k tok"]) == 250.0
    assert float(rows[("all", "10")]["no final answer %"]) == 100.0 and rows[("all", "0")]["no final answer %"] == "0.0"


# ------------------------------------------------------------------------------------------------ significance


def test_bootstrap_covers_zero_for_identical_runs_and_excludes_it_for_a_planted_difference():
    import random

    rng = random.Random(0)
    a = {i: float(rng.random() < 0.5) for i in range(30)}
    diff, lo, hi = paired_bootstrap(a, dict(a))
    assert diff == 0 and lo <= 0 <= hi
    b = {i: 1.0 if i < 25 else a[i] for i in a}  # 30 questions, most now right
    diff, lo, hi = paired_bootstrap(a, b)
    assert diff > 0.3 and lo > 0
    noisy = {i: float(rng.random() < 0.5) for i in range(30)}  # another draw of the same model: noise
    assert paired_bootstrap(a, noisy)[1] < 0 < paired_bootstrap(a, noisy)[2]
    with pytest.raises(UserError, match="same items"):
        paired_bootstrap(a, {i: 0.0 for i in range(31)})


def test_report_bootstraps_within_a_run_and_across_identical_runs(cot4b, tmp_path):
    twin = tmp_path / "twin"
    shutil.copytree(cot4b, twin)
    write_report([cot4b, twin], tmp_path / "rep")
    rows = {(x["comparison"], x["task"]): x for x in read_csv(tmp_path / "rep/significance.csv")}
    same = rows[("twin − cot4b at step 640", "math500")]
    assert float(same["diff_points"]) == 0 and same["reading"].startswith("covers 0")
    gain = rows[("cot4b: step 640 − base", "math500")]
    assert float(gain["diff_points"]) == pytest.approx(15.4) and float(gain["low_points"]) > 0
    assert rows[("cot4b: step 20 − base", "math500")]["reading"].startswith("excludes 0")  # the dip is real


# ------------------------------------------------------------------------------------------------ the paper


def test_paper_values_are_the_published_ones():
    points = paper_points("Qwen/Qwen3-4B-Base", "jasonrqh/Math-CoT-20k")
    expected = {("math500", 0): 70.8, ("math500", 20): 62.9, ("math500", 640): 86.2,
                ("ifeval", 0): 49.2, ("ifeval", 20): 33.0, ("ifeval", 640): 49.4}
    assert {k: points[k][0] for k in expected} == expected
    assert points[("math500", 0)][1].startswith("Table 5") and points[("math500", 20)][1].startswith("Table 9")
    # a local copy of the data and a local model folder of the same name match too; a base model alone does not
    assert paper_points("/models/qwen3-4b-base", "data/Math-CoT-20k.parquet") == points
    assert paper_points("Qwen/Qwen3-4B-Base", "embedded:countdown") == {}


def test_paper_file_has_one_value_per_setting_task_and_step_with_its_source():
    seen = set()
    for block in paper_data()["blocks"]:
        assert block["table"] and block["source"].startswith("[")
        for task in set(block) - {"table", "source", "model", "data", "steps"}:
            assert task in paper_data()["paper_names"] and len(block[task]) == len(block["steps"])
            for step in block["steps"]:
                key = (block["model"], block["data"], task, step)
                assert key not in seen
                seen.add(key)


def test_paper_values_appear_in_paper_md_in_order():
    paper_md = ROOT / "tests" / "paper_numbers.md"  # PAPER.md's source labels and section 4, copied verbatim
    lines = [[float(x) for x in re.findall(r"\d+(?:\.\d+)?", line)] for line in paper_md.read_text().splitlines()]

    def on_one_line(values):
        def ordered_in(numbers):
            it = iter(numbers)
            return all(any(v == x for x in it) for v in values)
        return any(ordered_in(numbers) for numbers in lines)

    for block in paper_data()["blocks"]:
        tasks = [t for t in block if t not in {"table", "source", "model", "data", "steps"}]
        rows = [block[t] for t in tasks] if len(block["steps"]) > 1 else [[block[t][0] for t in tasks]]
        for row in rows:
            assert on_one_line(row), (block["table"], block["model"], row)


def test_a_run_of_a_paper_setting_is_shown_beside_the_paper(cot4b, tmp_path):
    write_report([cot4b], tmp_path / "rep")
    rows = {(x["task"], int(x["step"])): x for x in read_csv(tmp_path / "rep/paper.csv")}
    assert float(rows[("math500", 20)]["paper"]) == 62.9 and float(rows[("math500", 20)]["run_minus_paper"]) == 0
    assert float(rows[("ifeval", 640)]["run"]) == 49.4
    assert rows[("gpqa_diamond", 640)]["paper"] == "37.9"
    assert float(rows[("gpqa_diamond", 640)]["run_minus_paper"]) == pytest.approx(40.0 - 37.9)
    md = (tmp_path / "rep/report.md").read_text()
    assert "not the paper's protocol" in md and "Table 9 (App. D) [N1]" in md


# ------------------------------------------------------------------------------------------------ files


def test_plots_and_html_are_written_and_decode(cot4b, tmp_path):
    from PIL import Image

    html_path, _ = write_report([cot4b], tmp_path / "rep")
    pngs = sorted((tmp_path / "rep").glob("*.png"))
    assert [p.name for p in pngs] == ["averages_tiny.png", "behaviour_tiny.png", "change_tiny.png",
                                      "length_tiny.png", "scores_tiny.png"]  # no metrics.jsonl: no loss.png
    with Image.open(pngs[-1]) as img:
        img.load()
        assert img.size[0] > 400 and img.size[1] > 200
        lo, hi = img.convert("L").getextrema()
        assert lo < 100 and hi > 200  # drawn on, not blank
    html = html_path.read_text()
    assert html.count("data:image/png;base64,") == len(pngs) and "src='scores" not in html  # self-contained
    for section in ("Scores", "The dip", "Length and behaviour", "The paper side by side", "Paired bootstrap"):
        assert section in html


def test_cli_writes_the_report_and_reports_problems_in_one_line(real_run, tmp_path, capsys):
    assert report.main([str(real_run), "--out", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "rep/report.html").stat().st_size > 10_000
    # step 2 has a checkpoint but no result: the gap is named, with the command that fills it
    assert "no result for countdown, basic_arithmetic at steps 2" in out and "--preset tiny --steps 2" in out
    assert load_series([real_run])[0][0].steps == [0, 4]


# ------------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("damage, said", [
    (lambda t: t.replace('"value": 0.629', '"value": Infinity'), "value inf is not a finite number"),
    (lambda t: t.replace('"value": 0.629', '"value": 2.5'), "value 2.5 is not a fraction (250%, outside 0-100%)"),
    (lambda t: t.replace('"value": 0.629', '"value": "0.629"'), "value '0.629' is not a finite number"),
    (lambda t: t.replace('"step": 20', '"step": "20"'), "step '20' is not a whole number of steps"),
    (lambda t: t[:len(t) // 2], "is not valid JSON"),
    (lambda t: "[1, 2]", "is not an evaluate.py result (a JSON list, not an object)"),
    (lambda t: t[:-1] + ', "judging": {"verdicts": 3}}', "its judging part holds verdicts, unknown to schema 2"),
])
def test_a_damaged_or_odd_result_file_is_one_line_naming_it_and_the_fix(cot4b, tmp_path, damage, said):
    path = cot4b / "eval/tiny/step00020/math500.json"
    path.write_text(damage(json.dumps(json.loads(path.read_text()))))
    with pytest.raises(UserError) as e:
        write_report([cot4b], tmp_path / "rep")
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and said in msg, msg
    assert msg.endswith("delete it and rerun evaluate.py on that step to rewrite it")


def test_a_run_without_results_names_the_command_that_writes_them(tmp_path):
    run = tmp_path / "fresh"
    run.mkdir()
    (run / "recipe.yaml").write_text("model:\n  name_or_path: Qwen/Qwen3-4B-Base\ndata:\n  path: jasonrqh/Math-CoT-20k")
    with pytest.raises(UserError, match=f"no evaluation results .*python evaluate.py {run}"):
        write_report([run], tmp_path / "rep")
    with pytest.raises(UserError, match="not a run folder"):
        write_report([tmp_path], tmp_path / "rep")


def test_presets_and_grader_versions_are_never_mixed_on_one_figure(cot4b, tmp_path):
    for step in (0, 20, 640):
        plant(cot4b, step, "math500", 0.7, preset="consumer")
    plant(cot4b, 640, "ifeval", 0.4, grader_version=2)
    series, _ = load_series([cot4b])
    assert sorted((s.label, s.group) for s in series) == [
        ("cot4b [consumer]", "consumer"), ("cot4b [tiny, grader v1]", "tiny, grader v1"),
        ("cot4b [tiny, grader v2]", "tiny, grader v2")]
    _, warnings = write_report([cot4b], tmp_path / "rep")
    assert any("3 different presets or grader versions" in w for w in warnings)
    assert {p.name for p in (tmp_path / "rep").glob("scores_*.png")} == {
        "scores_consumer.png", "scores_tiny-grader-v1.png", "scores_tiny-grader-v2.png"}


def test_results_scored_by_the_previous_grader_still_load_and_say_which_version_scored_them(tmp_path):
    from rsft.grading import GRADER_VERSION

    run = tmp_path / "run"
    run.mkdir()
    (run / "recipe.yaml").write_text("model:\n  name_or_path: Qwen/Qwen3-4B-Base\ndata:\n  path: d\n")
    plant(run, 0, "math500", 0.5, grader_version=GRADER_VERSION - 1)  # written before the last scoring change
    plant(run, 20, "math500", 0.6, grader_version=GRADER_VERSION)
    series, _ = load_series([run])
    assert sorted((s.label, s.steps) for s in series) == [(f"run [tiny, grader v{GRADER_VERSION - 1}]", [0]),
                                                          (f"run [tiny, grader v{GRADER_VERSION}]", [20])]
    write_report([run], tmp_path / "rep")
    assert {(r["step"], r["grader_version"]) for r in read_csv(tmp_path / "rep/scores.csv")} == {
        ("0", str(GRADER_VERSION - 1)), ("20", str(GRADER_VERSION))}


def test_results_of_two_task_versions_in_one_series_are_refused(cot4b):
    path = cot4b / "eval/tiny/step00640/math500.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "task_version": 2}))
    with pytest.raises(UserError, match=r"math500 results mix task versions \(v1 at steps \[0, 20\]; v2 at"):
        load_series([cot4b])


def test_judge_scored_results_are_shown_apart_and_unjudged_ones_are_said(cot4b, tmp_path):
    for step, reward, complete in ((0, 0.53, True), (640, 1.42, False)):  # AlpacaEval's reward: not a percentage
        gen = plant(cot4b, step, "alpacaeval", 0.0, n=20, responses=("Sure. Here you go.",), judge="reward")
        phase2 = {**json.loads(gen.read_text()), "metric": "mean_reward", "higher_is_better": True,
                  "value": reward, "stderr": 0.1, "judging": {"complete": complete, "unjudged": 0 if complete else 3}}
        gen.with_name("alpacaeval.json").write_text(json.dumps(phase2))
    gen = plant(cot4b, 20, "alpacaeval", 0.0, n=20, judge="reward")  # generated, not judged yet: no TASK.json
    plant(cot4b, 20, "hexphi", 0.0, n=20, judge="harm")
    gen.with_name("hexphi.json").write_text(json.dumps({**json.loads(gen.read_text()), "value": None}))
    _, warnings = write_report([cot4b], tmp_path / "rep")
    rows = {(x["task"], int(x["step"])): x for x in read_csv(tmp_path / "rep/scores.csv")}
    assert (rows[("alpacaeval", 640)]["value"], rows[("alpacaeval", 640)]["unit"]) == ("1.42", "mean_reward")
    assert ("alpacaeval", 20) not in rows and ("hexphi", 20) not in rows
    assert float(rows[("out-of-domain avg", 640)]["value"]) == pytest.approx(40.0)  # the reward is in no average
    assert any("hexphi.json: no value yet" in w for w in warnings)
    assert any("alpacaeval at step 640 is only partly judged (3 samples unjudged)" in w for w in warnings)
    sig = {(x["comparison"], x["task"]) for x in read_csv(tmp_path / "rep/significance.csv")}
    assert ("cot4b: step 640 − base", "alpacaeval") not in sig  # no per-question accuracy to pair
    assert "no per-question accuracy" in (tmp_path / "rep/report.md").read_text()
    behaviour = {(x["task"], x["step"]): x for x in read_csv(tmp_path / "rep/behaviour.csv")}
    assert behaviour[("alpacaeval", "640")]["no final answer %"] == "—"  # no boxed answer was asked for
    assert behaviour[("all", "640")]["no final answer %"] == "0.0"


def test_a_judge_whose_verdicts_cannot_be_read_is_warned_about(cot4b, tmp_path):
    gen = plant(cot4b, 640, "hexphi", 0.0, n=20, judge="harm")
    gen.with_name("hexphi.json").write_text(json.dumps({
        **json.loads(gen.read_text()), "metric": "attack_success_rate", "higher_is_better": False, "value": 0.1,
        "judging": {"complete": True, "unjudged": 4, "unjudged_by_status": {"unparseable": 4},
                    "worst_case_value": 0.3}}))
    _, warnings = write_report([cot4b], tmp_path / "rep")
    assert any("hexphi at step 640: the judge's verdict could not be read for 4 samples" in w for w in warnings)


OLD_JUDGED = {  # a judged TASK.json as the judging phase wrote it before schema 2: the judges' keys at the top level
    "task": "hexphi", "step": 640, "model": "Qwen/Qwen3-4B-Base", "adapter": "runs/cot4b/checkpoints/step00640",
    "metric": "attack_success_rate", "value": 0.1, "stderr": 0.03, "strict": 0.1, "strict_stderr": 0.03,
    "truncated_rate": 0.0, "no_answer_rate": None, "mean_response_tokens": 12.0, "n": 20, "k": 1,
    "preset_name": "tiny", "preset": {"max_gen_toks": 64}, "task_version": 1, "grader_version": 1,
    "lm_eval_version": "0.4.13", "backend": "hf", "group": "safety", "in_domain": False,
    "generation_kwargs": {"max_gen_toks": 64}, "judge": "harm", "higher_is_better": False,
    "worst_case_value": 0.3, "mean_score": 1.4, "score_counts": {"1": 14, "2": 0, "3": 0, "4": 0, "5": 2},
    "strict_worst_case_value": 0.3, "judges": {"rubric": {"id": "api:gpt-4.1@https://api.openai.com/v1",
                                                          "prompt_version": "abc"}},
    "judging_complete": False, "unjudged": 4, "unjudged_by_status": {"unparseable": 4},
    "unjudged_samples": [], "strict_unjudged_by_status": {"unparseable": 4}}


def test_a_result_file_written_before_schema_2_reads_as_the_same_record(cot4b, tmp_path):
    from rsft.task_result import SCHEMA_VERSION, TaskResult

    old = cot4b / "eval/tiny/step00640/hexphi.json"
    preset = json.loads(old.with_name("math500.json").read_text())["preset"]  # the run's, so it joins its series
    old.write_text(json.dumps({**OLD_JUDGED, "preset": preset}))
    r = load_series([cot4b])[0][0].result("hexphi", 640)
    assert (r.value, r.higher_is_better, r.judge, r.n) == (0.1, False, "harm", 20)
    assert (r.judging.complete, r.judging.unjudged, r.judging.worst_case_value) == (False, 4, 0.3)
    assert r.judging.unjudged_by_status == {"unparseable": 4} and r.judging.details["score_counts"]["5"] == 2
    again = tmp_path / "hexphi.json"  # written back, it is schema 2 and reads as the same record
    TaskResult.from_dict(OLD_JUDGED).write(again)
    assert json.loads(again.read_text())["schema_version"] == SCHEMA_VERSION
    assert "judging_complete" not in json.loads(again.read_text())
    assert TaskResult.read(again) == TaskResult.from_dict(OLD_JUDGED)
    _, warnings = write_report([cot4b], tmp_path / "rep")
    assert any("hexphi at step 640 is only partly judged (4 samples unjudged)" in w for w in warnings)
    assert any("hexphi at step 640: the judge's verdict could not be read for 4 samples" in w for w in warnings)


def test_the_report_splits_a_strict_dip_into_cut_off_answers_and_the_rest(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "recipe.yaml").write_text("model:\n  name_or_path: Qwen/Qwen3-4B-Base\ndata:\n  path: jasonrqh/Math-CoT-20k\n")
    for step, value, strict in ((0, 0.5, 0.5), (20, 0.45, 0.30), (640, 0.6, 0.58)):
        plant(run, step, "math500", value, strict=strict, strict_stderr=0.01)
    write_report([run], tmp_path / "rep")
    md = (tmp_path / "rep/report.md").read_text()
    assert ("math500: of the 20.0-point dip in the strict score at step 20, 15.0 points are answers the tiny "
            "preset's reading still credits") in md and "its own dip there is 5.0 points" in md
    rows = read_csv(tmp_path / "rep/scorings.csv")
    assert [(int(r["step"]), float(r["value_minus_strict"])) for r in rows] == [(0, 0.0), (20, 15.0), (640, 2.0)]


# ------------------------------------------------------------------------------------------------ reading the run


def quick_run(root: Path, ood: dict[int, float], metrics: list[dict] | None = None, name: str = "quick") -> Path:
    """A quickstart-shaped run: math500 in domain (n=100) rising 0 -> 16%, word_problems out of domain (n=50) at
    the given fractions, humaneval (n=50) at 0 at every step; metrics.jsonl written when given."""
    run = root / name
    run.mkdir(parents=True)
    (run / "recipe.yaml").write_text("model:\n  name_or_path: embedded:smollm2-135m-instruct\ndata:\n  path: "
                                     "embedded:countdown\n")
    for step, in_domain in ((0, 0.0), (15, 0.08), (30, 0.13), (45, 0.16)):
        plant(run, step, "math500", in_domain, n=100)
        plant(run, step, "word_problems", ood[step], n=50)
        plant(run, step, "humaneval", 0.0, n=50)
    if metrics is not None:
        (run / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
    return run


NOT_RECOVERED = {0: 0.48, 15: 0.16, 30: 0.20, 45: 0.24}  # word_problems: 24/50 -> 8/50, back only to 12/50
RECOVERED = {0: 0.48, 15: 0.16, 30: 0.40, 45: 0.56}


def headline_of(md: str) -> str:
    return md.split("## What happened\n\n", 1)[1].split("\n", 1)[0]


def test_scores_table_shows_n_and_a_wilson_interval_per_cell(tmp_path):
    write_report([quick_run(tmp_path, NOT_RECOVERED)], tmp_path / "rep")
    md = (tmp_path / "rep/report.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| step | math500"))
    assert header == ("| step | math500 (n=100, Wilson) | humaneval (n=50, Wilson) | word_problems (n=50, Wilson) | "
                      "in-domain avg (= math500) | out-of-domain avg (Wilson, effective n) |")
    row = next(line for line in md.split("## Scores")[1].splitlines() if line.startswith("| 15 |"))
    # hand-computed Wilson intervals: 8/100 -> [4.1, 15.0]; 0/50 -> [0, 7.1]; 8/50 -> [8.3, 28.5]
    assert row.startswith("| 15 | 8.0 [4.1, 15.0] | 0.0 [0.0, 7.1] | 16.0 [8.3, 28.5] | 8.0 [4.1, 15.0] |")
    # the out-of-domain average of 0/50 and 8/50: 8% of an effective 100 questions, Wilson [4.1, 15.0]
    assert row.endswith("| 8.0 [4.1, 15.0] |")
    csv_rows = {(x["task"], int(x["step"])): x for x in read_csv(tmp_path / "rep/scores.csv")}
    assert (csv_rows[("word_problems", 15)]["ci95_low"], csv_rows[("word_problems", 15)]["ci95_high"]) == ("8.34",
                                                                                                          "28.51")
    assert csv_rows[("out-of-domain avg", 15)]["ci95_kind"] == "Wilson, effective n"


def test_an_all_zero_task_gets_the_floor_warning_not_no_dip(tmp_path):
    _, warnings = write_report([quick_run(tmp_path, NOT_RECOVERED)], tmp_path / "rep")
    assert any("humaneval is at 0% at every step (a floor effect)" in w for w in warnings)
    dips = {x["benchmark"]: x["verdict"] for x in read_csv(tmp_path / "rep/dips.csv")}
    assert dips["humaneval"] == "none can be seen: at 0% at every step (a floor)"
    assert dips["math500"] == "no dip (never worse than base)"  # it starts at 0 but rises: no floor


def test_a_one_panel_figure_keeps_its_whole_legend(tmp_path):
    import matplotlib.image

    from rsft.plots import Line, Panel, figure

    lines = [Line(f"bench-quickstart-long-variant: {what} average", {0: (0.0, None), 10: (5.0, None)}, "C0", ls)
             for what, ls in (("in-domain", "-"), ("out-of-domain", "--"))]
    png = matplotlib.image.imread(figure(tmp_path / "change.png", "Change", [Panel("avg", "points", lines,
                                                                                   x="symlog", y="change")]))
    white = (png[..., :3] > 0.99).all(axis=-1)
    assert white[:, 0].all() and white[:, -1].all()  # nothing drawn up to the left or right edge: no cut label


def test_percent_axes_start_at_0_and_span_at_least_the_minimum():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rsft.plots import MIN_SPAN, Line, Panel, _draw, _format_axis, y_limits

    zeros = Panel("humaneval", "%", [Line("quick", {0: (0.0, 0.0), 15: (0.0, 0.0), 45: (0.0, 0.0)}, "C0")])
    fig, ax = plt.subplots()
    for line in zeros.lines:
        _draw(ax, line, base_as_line=True)
    _format_axis(ax, zeros)
    assert ax.get_ylim() == (0.0, MIN_SPAN) == (0.0, 10.0)  # not -0.04 .. +0.04
    plt.close(fig)
    high = Panel("countdown", "% of responses", [Line("q", {0: (20.0, 2.0), 45: (60.0, 5.0)}, "C0")])
    assert y_limits(high) == (0.0, pytest.approx(65.0 + 6.5))  # to the top error bar + 10%
    assert y_limits(Panel("full", "%", [Line("q", {0: (100.0, 0.0)}, "C0")])) == (0.0, 105.0)
    lo, hi = y_limits(Panel("change", "points", [Line("q", {0: (0.0, None), 15: (-2.0, None)}, "C0")], y="change"))
    assert lo < -2.0 and hi > 0.0 and hi - lo == pytest.approx(MIN_SPAN)
    assert y_limits(Panel("tokens", "tokens", [Line("q", {0: (300.0, None)}, "C0")])) is None


def test_headline_reads_a_drop_at_step_15_not_recovered_with_paired_intervals(tmp_path):
    write_report([quick_run(tmp_path, NOT_RECOVERED)], tmp_path / "rep")
    line = headline_of((tmp_path / "rep/report.md").read_text())
    # in domain: math500 0 -> 16; out of domain: (word_problems + humaneval) / 2: 24 -> 8 -> 10 -> 12
    assert re.fullmatch(r"quick: in-domain \+16 points \[\+\d+, \+\d+\] by step 45; out-of-domain average −16 "
                        r"points \[−\d+, −\d+\] at step 15, not recovered by step 45 \(−12\)\.", line), line
    lo, hi = (int(x.replace("−", "-")) for x in re.findall(r"\[([−+]\d+), ([−+]\d+)\] at step 15", line)[0])
    assert lo < -16 < hi < 0  # the interval excludes 0: a real drop
    assert (tmp_path / "rep/change_tiny.png").stat().st_size > 5_000
    md = (tmp_path / "rep/report.md").read_text()
    assert md.index("What happened") < md.index("change_tiny.png") < md.index("## Warnings")


def test_headline_says_when_the_drop_is_recovered(tmp_path):
    write_report([quick_run(tmp_path, RECOVERED)], tmp_path / "rep")
    line = headline_of((tmp_path / "rep/report.md").read_text())
    assert "out-of-domain average −16 points [−" in line and "at step 15, back to the base by step 45." in line


def test_headline_says_why_it_has_no_interval_when_questions_cannot_be_paired(tmp_path):
    run = quick_run(tmp_path, NOT_RECOVERED)
    (run / "eval/tiny/step00015/word_problems.samples.jsonl").unlink()  # no per-question scores at step 15
    write_report([run], tmp_path / "rep")
    line = headline_of((tmp_path / "rep/report.md").read_text())
    assert "−16 points at step 15" in line and "No interval for the out-of-domain change" in line
    assert "in-domain +16 points [+" in line


def test_the_domain_interval_resamples_each_tasks_questions_and_weighs_tasks_equally():
    from rsft.stats import stratified_bootstrap

    a = {i: float(i < 10) for i in range(40)}
    b = {i: float(i < 25) for i in range(40)}
    assert stratified_bootstrap([(a, b)]) == pytest.approx(paired_bootstrap(a, b))  # one task: the paired one
    flat = {i: 0.0 for i in range(200)}
    change, lo, hi = stratified_bootstrap([(a, b), (flat, dict(flat))])
    assert change == pytest.approx((15 / 40 + 0) / 2)  # tasks weigh equally, whatever their size
    assert lo == pytest.approx(paired_bootstrap(a, b)[1] / 2, abs=0.02) and lo > 0
    with pytest.raises(ValueError, match="same questions"):
        stratified_bootstrap([(a, {**b, 99: 1.0})])


METRICS = [{"step": i, "epoch": i / 45, "loss": 2.0 - i / 30, "grad_norm": 1.0, "learning_rate": 1e-3, "tokens": 900,
            "tokens_seen": 900 * i, "tokens_per_s": 250.0, "elapsed_s": 6.4 * i, "skipped_steps": 0}
           for i in range(1, 46)]


def test_the_runs_section_shows_the_training_loss_tokens_and_time_from_metrics_jsonl(tmp_path):
    run = quick_run(tmp_path, NOT_RECOVERED, metrics=METRICS)
    write_report([run], tmp_path / "rep")
    md = (tmp_path / "rep/report.md").read_text()
    row = next(line for line in md.split("## Runs")[1].splitlines() if line.startswith("| quick"))
    assert row.endswith("| 40,500 | 0:04:48 |")  # 900 x 45 tokens; 6.4 s x 45 = 288 s
    assert "](loss.png)" in md and (tmp_path / "rep/loss.png").stat().st_size > 5_000
    from rsft.report_runs import training_log

    log = training_log(run)
    assert len(log.losses) == 45 and log.losses[45] == pytest.approx(0.5) and log.unreadable == 0


def test_a_torn_metrics_line_and_skipped_steps_are_counted_not_plotted(tmp_path):
    from rsft.report_runs import training_log

    run = quick_run(tmp_path, NOT_RECOVERED, metrics=METRICS[:3] + [{**METRICS[3], "loss": None, "skipped": True}])
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"step": 5, "loss": 1.8, "tok')  # a kill mid-line
    log = training_log(run)
    assert sorted(log.losses) == [1, 2, 3] and (log.tokens, log.unreadable) == (3600, 1)
    write_report([run], tmp_path / "rep")
    assert "metrics.jsonl: 1 unreadable lines skipped" in (tmp_path / "rep/report.md").read_text()


def test_a_run_without_metrics_jsonl_has_no_loss_figure_and_no_totals(tmp_path):
    write_report([quick_run(tmp_path, NOT_RECOVERED)], tmp_path / "rep")
    md = (tmp_path / "rep/report.md").read_text()
    row = next(line for line in md.split("## Runs")[1].splitlines() if line.startswith("| quick"))
    assert row.endswith("| — | — |")
    assert not (tmp_path / "rep/loss.png").exists() and "](loss.png)" not in md and "training loss at every" not in md


def test_text_columns_are_left_aligned_and_number_columns_right(tmp_path):
    from rsft.report_page import Page

    page = Page("t")
    page.table(["benchmark", "base", "interval", "reading"], [["math500", "16.0 [8.3, 28.5]", "[+0.5, +2.0]", "real"],
                                                              ["gpqa", "—", "[−1.0, +2.0]", "noise"]])
    assert "|:---|---:|---:|:---|" in page.markdown()
    html = page.html()
    assert "<td>math500</td><td class='num'>16.0 [8.3, 28.5]</td><td class='num'>[+0.5, +2.0]</td><td>real</td>" in html
    assert "<th>benchmark</th><th class='num'>base</th>" in html


def test_a_nan_result_and_ungradeable_samples_are_flagged(cot4b, tmp_path):
    path = plant(cot4b, 20, "math500", 0.6)
    path.write_text(json.dumps({**json.loads(path.read_text()), "value": float("nan")}))  # json writes NaN
    plant(cot4b, 640, "ifeval", 0.5, extra_metrics={"ungradeable": 0.25})
    _, warnings = write_report([cot4b], tmp_path / "rep")
    assert any("math500 at step 20 has value nan, not a score" in w and "rerun evaluate.py" in w for w in warnings)
    assert any("ifeval at step 640: 25.0% of its samples could not be graded" in w for w in warnings)


def test_a_report_on_a_handful_of_questions_warns_that_it_is_a_smoke_test(tmp_path):
    run = tmp_path / "smoke"
    run.mkdir()
    (run / "recipe.yaml").write_text("model:\n  name_or_path: embedded:smollm2-135m-instruct\ndata:\n  path: "
                                     "embedded:countdown\n")
    for step, value in ((0, 0.0), (10, 0.5)):  # 0/2 -> 1/2: "+50 points" from two questions
        plant(run, step, "math500", value, n=2)
        plant(run, step, "word_problems", 0.5, n=50)
    _, warnings = write_report([run], tmp_path / "rep")
    assert any("too few questions" in w and "math500 n = 2" in w and "word_problems" not in w for w in warnings)
    assert "Only n = 2 questions in a task: a smoke test" in headline_of((tmp_path / "rep/report.md").read_text())
    _, warnings = write_report([quick_run(tmp_path, RECOVERED)], tmp_path / "rep2")  # n 50 and 100: no warning
    assert not any("too few questions" in w for w in warnings)
