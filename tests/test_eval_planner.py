"""The evaluation's plan in `evaluate.py --estimate`: tokens per task from its data, the preset and its cap, and the
time from a measured generation speed or the card's decoding ceiling (bandwidth and key/value room)."""
import json

import pytest

from helpers import ROOT
from rsft import eval_planner, planner


def test_the_cpu_generation_figure_is_the_measured_one():
    results = (ROOT / "bench/RESULTS.md").read_text()
    # 200 prompts at 192 tokens, generation per checkpoint; the evaluation phase's wall and its 4 models
    assert "checkpoints 1 min 59 s, 2 min 04 s, 1 min 56 s (steps 10, 35, 70) | 513 s" in results
    assert "generation base 1 min 31 s;" in results
    cpu = next(m for m in planner.data()["generation"] if m["card"] == "cpu")
    assert cpu["tokens_per_s"] == round(200 * 192 / ((119 + 124 + 116) / 3))
    assert cpu["per_model_s"] == round((513 - (91 + 119 + 124 + 116)) / 4)


def test_a_task_is_planned_from_its_yaml_includes_and_the_preset():
    from rsft.catalogue import preset

    paper, consumer = preset("paper"), preset("consumer")
    assert eval_planner.task_load("aime24", paper, ROOT).repeats == 10  # its own k
    assert eval_planner.task_load("ifeval", paper, ROOT).cap == 32768  # its own generation_kwargs
    assert eval_planner.task_load("hexphi", paper, ROOT).cap == 16384  # through two includes
    assert (eval_planner.task_load("hexphi", consumer, ROOT).cap,
            eval_planner.task_load("aime24", consumer, ROOT).repeats) == (8192, 1)  # the preset caps tokens, sets k


def _data_dir(tmp_path, rows: int):
    (tmp_path / "math500").mkdir()
    (tmp_path / "math500/test.jsonl").write_text("".join(json.dumps({"q": i}) + "\n" for i in range(rows)) + "\n")
    return tmp_path


def test_the_evaluation_plan_counts_questions_samples_and_the_cap(tmp_path):
    data = _data_dir(tmp_path, 300)
    lines = eval_planner.eval_plan_lines(("math500", "aime24", "countdown"), "consumer", 3, card="t4",
                                         model="Qwen/Qwen3-1.7B-Base", backend="vllm", data_dir=data)
    text = "\n".join(lines)
    assert "math500          200 questions x 1 sample(s) x <= 8,192 tokens = 1,638,400 per model" in text
    # downloadable, not downloaded: counted at its published size (30 problems, under the preset's 200)
    assert ("aime24           30 questions x 1 sample(s) x <= 8,192 tokens = 245,760 per model (not downloaded yet"
            in text)
    assert "countdown        200 questions" in text  # built locally by evaluate.py, cut to the preset's limit
    assert f"<= {3 * (2 * 1_638_400 + 245_760):,} in all" in text
    paper = "\n".join(eval_planner.eval_plan_lines(("math500",), "paper", 1, card="t4", model="Qwen/Qwen3-1.7B-Base",
                                                   backend="vllm", data_dir=data))
    assert f"300 questions x 3 sample(s) x <= 32,768 tokens = {300 * 3 * 32768:,}" in paper


def test_without_a_gpu_measurement_a_gpu_plan_gives_the_decoding_ceiling_and_what_bounds_it(tmp_path):
    lines = eval_planner.eval_plan_lines(("math500",), "consumer", 4, card="t4", model="Qwen/Qwen3-1.7B-Base",
                                         backend="vllm", data_dir=_data_dir(tmp_path, 500))
    ceiling, bound = eval_planner.decode_ceiling(planner.gpu("t4"), planner.known_shape("qwen3-1.7b"), 8192)
    assert lines[-1].startswith(f"  time            at least ~{eval_planner._took(4 * 200 * 8192 / ceiling)} at "
                                f"~{ceiling:,.0f} tokens/s")
    assert "the ceiling, not a measurement" in lines[-1] and "bound by memory bandwidth (320 GB/s" in lines[-1]


def test_decoding_is_planned_by_bandwidth_and_key_value_room_not_flops():
    """A T4 has 6.6% of an H100's FLOP/s but 9.6% of its bandwidth; an L4 12% of its FLOP/s, 9% of its bandwidth
    and a quarter of its memory: long replies rank the cards by bytes and room, not by FLOP/s."""
    small, big = planner.known_shape("qwen3-1.7b"), planner.known_shape("qwen3-8b")
    t4, l4, h100 = planner.gpu("t4"), planner.gpu("l4"), planner.gpu("h100")
    ceiling = lambda card, shape=small, cap=8192: eval_planner.decode_ceiling(card, shape, cap)[0]
    # one step per 8k reply, weights small next to the key/value reads: the bandwidth ratio, less the T4's room
    assert 0.066 < ceiling(t4) / ceiling(h100) < 0.096
    assert ceiling(l4) < ceiling(t4) * 1.1  # twice the T4's FLOP/s buys an L4 no faster decoding
    # Qwen3-1.7B's 32k replies: 114,688 bytes of keys and values per token, 1.9 GB a reply at its mean length
    assert small.kv_bytes_per_token == 2 * 28 * 8 * 128 * 2
    _, why = eval_planner.decode_ceiling(t4, small, 32768)
    assert "key/value room for 5 replies at once" in why  # ~9.5 GiB left beside 3.2 GiB of weights
    # 8B in bf16 (15.3 GiB of weights) does not fit a T4 at all, and an L4 has room for no 32k reply beside it
    assert eval_planner.decode_ceiling(t4, big, 8192) == (0.0, eval_planner.decode_ceiling(t4, big, 8192)[1])
    assert eval_planner.decode_ceiling(t4, big, 8192)[1].startswith("does not fit")
    assert ceiling(l4, big, 8192) > 0 and ceiling(l4, big, 32768) == 0
    # a card with more bandwidth but the same room is faster by about the bandwidth ratio
    wide = {**t4, "bandwidth_gbs": 2 * t4["bandwidth_gbs"]}
    assert ceiling(wide) == pytest.approx(2 * ceiling(t4))


def test_a_model_that_does_not_fit_is_said_in_the_plan(tmp_path):
    lines = eval_planner.eval_plan_lines(("math500",), "paper", 1, card="t4", model="Qwen/Qwen3-8B-Base",
                                         backend="vllm", data_dir=_data_dir(tmp_path, 10))
    assert "not estimated: does not fit: bf16 weights 15.3 GiB" in lines[-1]


def test_a_measured_gpu_figure_is_scaled_to_the_card_and_the_model(tmp_path, monkeypatch):
    measured = {"card": "h200", "model": "qwen3-1.7b", "backend": "vllm", "tokens_per_s": 20000.0,
                "max_new_tokens": 8192, "what": "32 prompts x 8,192 tokens"}
    real = planner.data()
    monkeypatch.setattr(eval_planner, "data", lambda: {**real, "generation": [measured]})
    small = planner.known_shape("qwen3-1.7b")
    same, _, source = eval_planner.generation_speed(planner.gpu("h200"), "vllm", "q", small, 8192)
    assert same == pytest.approx(20000.0) and "a lead, not a measurement" in source
    t4, _, _ = eval_planner.generation_speed(planner.gpu("t4"), "vllm", "q", small, 8192)
    ratio = eval_planner.decode_ceiling(planner.gpu("t4"), small, 8192)[0] / eval_planner.decode_ceiling(
        planner.gpu("h200"), small, 8192)[0]
    assert t4 == pytest.approx(20000.0 * ratio)
    big, _, _ = eval_planner.generation_speed(planner.gpu("h200"), "vllm", "q", planner.known_shape("qwen3-8b"), 8192)
    assert big < same  # more bytes of weights and of keys and values per token
    hf = eval_planner.generation_speed(planner.gpu("t4"), "hf", "q", small, 8192)
    assert hf[0] is not None and "the ceiling, not a measurement" in hf[2]  # a vLLM figure says nothing about hf
    lines = eval_planner.eval_plan_lines(("math500",), "consumer", 2, card="t4", model="Qwen/Qwen3-1.7B-Base",
                                         backend="vllm", data_dir=_data_dir(tmp_path, 200))
    assert (f"at most ~{eval_planner._took(2 * 200 * 8192 / t4)} at ~{t4:,.0f} tokens/s (model loading not included)"
            in lines[-1])


def test_the_embedded_default_on_this_cpu_is_planned_from_its_measurement(tmp_path):
    lines = eval_planner.eval_plan_lines(("countdown",), "quickstart", 4, card="cpu",
                                         model="embedded:smollm2-135m-instruct", data_dir=tmp_path)
    minutes = (4 * 100 * 192 / 321 + 4 * 16) / 60  # countdown is in-domain: the preset's 100 questions
    assert lines[0].endswith("hf on this CPU") and "countdown        100 questions" in lines[1]
    assert f"at most ~{minutes:.0f} min at ~321 tokens/s + 16 s to start each model" in lines[-1]
    other = eval_planner.eval_plan_lines(("countdown",), "quickstart", 1, card="cpu", model="some/model",
                                         data_dir=tmp_path)
    assert other[-1].endswith("not estimated: no measured CPU generation speed for some/model with hf")


def test_the_paper_suite_is_planned_before_any_benchmark_is_downloaded(tmp_path):
    """`evaluate.py RUN --suite paper --estimate` on a fresh machine: each downloadable benchmark at its published
    size (its data.py's QUESTIONS) x the paper's k x its cap; one whose size is not known is said to be skipped."""
    from rsft.catalogue import SUITES

    lines = eval_planner.eval_plan_lines(SUITES["paper"], "paper", 1, card="h100", model="Qwen/Qwen3-8B-Base",
                                         backend="vllm", data_dir=tmp_path)
    text = "\n".join(lines)
    assert "math500          500 questions x 3 sample(s) x <= 32,768 tokens" in text
    assert "gpqa_diamond     198 questions" in text and "mmlu_pro         1000 questions" in text
    assert "livecodebench    skipped: no data" in text  # its size depends on the release window it is cut to
    total = int(next(x for x in lines if "in all" in x).split("<=")[1].split()[0].replace(",", ""))
    assert total > 500 * 3 * 32768
