"""The planner in `train.py --check`: fitted to measured GPU figures, says when a recipe will not fit and why."""
import json

import pytest

import train
from helpers import ROOT, make_recipe
from rsft import planner
from rsft.errors import UserError


def test_the_data_file_holds_exactly_the_benchmark_measurements():
    raw = json.loads((ROOT / "bench/results/h200_2026-11-28.json").read_text())
    got = {(m["shape"], m["backend"], m["finetune"], m["tokens"]): (m["tokens_per_s"], m["peak_memory_gb"])
           for m in planner.data()["measured"]}
    want = {(r["shape"], r["backend"], r["method"], r["length"]): (r["tokens_per_s"], r["peak_memory_gb"])
            for r in raw["results"]}
    assert got == want


@pytest.mark.parametrize("m", planner.data()["measured"], ids=lambda m: f"{m['shape']}-{m['backend']}-"
                         f"{m['finetune']}-{m['tokens']}")
def test_the_model_reproduces_the_measurements_and_extrapolates_to_8b(m):
    shape = planner.known_shape(m["shape"])
    mem = planner.peak_memory_gb(shape, m["backend"], m["finetune"], m["tokens"], 64, shape.modules())
    mem -= planner.CUDA_CONTEXT_GB
    tps = planner.tokens_per_s(shape, m["backend"], m["finetune"], m["tokens"], 989)
    if m["shape"] == "qwen3-1.7b":  # fitted points
        assert mem == pytest.approx(m["peak_memory_gb"], rel=1e-3)
        assert tps == pytest.approx(m["tokens_per_s"], rel=1e-3)
    else:  # not fitted: the 8B shape's measured memory within 10%, speed within 35% (FLOP scaling)
        assert mem == pytest.approx(m["peak_memory_gb"], rel=0.10)
        assert tps == pytest.approx(m["tokens_per_s"], rel=0.35)


def test_memory_grows_with_length_and_shrinks_with_qlora_and_unsloth():
    s = planner.known_shape("Qwen/Qwen3-8B-Base")  # a Hub id resolves offline
    t = s.modules()
    m = {(b, f): planner.peak_memory_gb(s, b, f, 16384, 64, t) for b in ("hf", "unsloth") for f in ("lora", "qlora")}
    assert m["unsloth", "qlora"] < m["unsloth", "lora"] < m["hf", "lora"]
    assert planner.peak_memory_gb(s, "hf", "lora", 4096, 64, t) < m["hf", "lora"]
    assert planner.peak_memory_gb(s, "hf", "full", 4096, 64, t) > planner.peak_memory_gb(s, "hf", "lora", 4096, 64, t)


@pytest.mark.parametrize("backend", ["hf", "unsloth"])
@pytest.mark.parametrize("finetune", ["lora", "qlora", "full"])
def test_estimates_rise_with_length_from_the_weights_up(backend, finetune):
    s = planner.known_shape("qwen3-4b")
    lengths = [0, 256, 1024, 4096, 8192, 16384, 32768]
    mem = [planner.peak_memory_gb(s, backend, finetune, n, 64, s.modules()) for n in lengths]
    assert mem == sorted(mem) and len(set(mem)) == len(mem)
    assert mem[0] > 2.0  # at least the 4-bit weights of 4B parameters, never a negative fit


@pytest.mark.parametrize("device,card", [("NVIDIA L4", "l4"), ("NVIDIA L40S", "l40s"), ("NVIDIA H100 PCIe",
                                         "h100-pcie"), ("NVIDIA H100 80GB HBM3", "h100"), ("Tesla T4", "t4")])
def test_the_card_present_is_recognised_by_whole_words(monkeypatch, device, card):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: device)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i=0: type("P", (), {"total_memory": 2**34}))
    got = planner.detect_gpu()
    assert got["tflops"] == planner.gpu(card)["tflops"] and got["memory_gb"] == 16.0
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Some Future GPU")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)  # a T4 says so too: it emulates bf16
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: (7, 5))
    unlisted = planner.detect_gpu()
    assert unlisted["speed_guessed"] and not unlisted["bf16"]
    assert unlisted["bandwidth_gbs"] == min(g["bandwidth_gbs"] for g in planner.data()["gpus"].values())


def test_auto_is_planned_as_training_would_resolve_it():
    import importlib.util

    want = "unsloth" if importlib.util.find_spec("unsloth") else "hf"
    assert planner.auto_backend("auto")[0] == want
    assert planner.auto_backend("hf") == ("hf", "asked for by the recipe")


def test_a_recipe_that_cannot_fit_is_told_so_with_the_knob_that_fits():
    shape = planner.known_shape("qwen3-8b")
    w = planner.Workload(backend="hf", finetune="lora", micro_tokens=16384, mean_seq=9000.0, total_tokens=10**9,
                         r=64, targets=tuple(shape.modules()))
    t4 = planner.gpu("t4")
    mem, hours = planner.estimate(shape, w, t4)
    assert mem > t4["memory_gb"] and hours > 1
    fixes = planner.knobs(shape, w, t4, max_length=16384, batch=1)
    assert any(f.startswith("model.finetune=qlora") or f.startswith("model.backend=unsloth") for f in fixes)
    for f in fixes:  # each suggested fix is itself estimated to fit
        assert float(f.split("~")[1].split(" GiB")[0]) <= t4["memory_gb"]


def test_check_prints_the_estimate_for_a_named_card(tmp_path, tiny_model_dir, capsys):
    p = make_recipe(tmp_path, tiny_model_dir)
    assert train.main([str(p), "--check", "--gpu", "l4"]) == 0
    out = capsys.readouterr().out
    assert "estimate" in out and "l4" in out and "fits" in out
    assert not (tmp_path / "run").exists()
    with pytest.raises(UserError, match="unknown GPU 'k80'.*t4"):
        train.main([str(p), "--check", "--gpu", "K80"])
    assert train.main([str(p), "--check", "--gpu", "L4"]) == 0  # names are not case-sensitive
    with pytest.raises(UserError, match="--gpu goes with --check"):
        train.main([str(p), "--gpu", "l4"])


def test_check_without_a_gpu_prints_a_table_of_common_cards(tmp_path, tiny_model_dir, capsys):
    p = make_recipe(tmp_path, tiny_model_dir)
    assert train.main([str(p), "--check"]) == 0
    out = capsys.readouterr().out
    for name in planner.data()["table_gpus"]:
        assert f"  {name} " in out
    assert "no bf16: trains in float16" in out  # the T4 row


@pytest.mark.parametrize("recipe,card", [("qwen3-1.7b-base_math-cot-2.5k_qlora_16gb", "t4"),
                                         ("qwen3-4b-base_math-cot-2.5k_qlora_24gb", "l4")])
def test_the_consumer_recipes_fit_the_cards_they_are_named_for(recipe, card):
    from rsft.config import load_recipe

    r = load_recipe(ROOT / f"recipes/{recipe}.yaml")
    shape = planner.recipe_shape(r)
    worst = r.train.per_device_train_batch_size * r.data.max_length  # every row at the length cap
    w = planner.Workload(backend=r.model.backend, finetune=r.model.finetune, micro_tokens=worst,
                         mean_seq=r.data.max_length / 2, total_tokens=1, r=r.lora.r, targets=r.lora.target_modules)
    mem, _ = planner.estimate(shape, w, planner.gpu(card))
    assert mem <= planner.gpu(card)["memory_gb"]


# ------------------------------------------------------------------------------------------------ evaluation


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
    assert planner.task_load("aime24", paper, ROOT).repeats == 10  # its own k
    assert planner.task_load("ifeval", paper, ROOT).cap == 32768  # its own generation_kwargs
    assert planner.task_load("hexphi", paper, ROOT).cap == 16384  # through two includes
    assert (planner.task_load("hexphi", consumer, ROOT).cap, planner.task_load("aime24", consumer, ROOT).repeats) \
        == (8192, 1)  # the preset caps the tokens and sets k


def _data_dir(tmp_path, rows: int):
    (tmp_path / "math500").mkdir()
    (tmp_path / "math500/test.jsonl").write_text("".join(json.dumps({"q": i}) + "\n" for i in range(rows)) + "\n")
    return tmp_path


def test_the_evaluation_plan_counts_questions_samples_and_the_cap(tmp_path):
    data = _data_dir(tmp_path, 300)
    lines = planner.eval_plan_lines(("math500", "aime24", "countdown"), "consumer", 3, card="t4",
                                    model="Qwen/Qwen3-1.7B-Base", backend="vllm", data_dir=data)
    text = "\n".join(lines)
    assert "math500          200 questions x 1 sample(s) x <= 8,192 tokens = 1,638,400 per model" in text
    # downloadable, not downloaded: counted at its published size (30 problems, under the preset's 200)
    assert ("aime24           30 questions x 1 sample(s) x <= 8,192 tokens = 245,760 per model (not downloaded yet"
            in text)
    assert "countdown        200 questions" in text  # built locally by evaluate.py, cut to the preset's limit
    assert f"<= {3 * (2 * 1_638_400 + 245_760):,} in all" in text
    paper = "\n".join(planner.eval_plan_lines(("math500",), "paper", 1, card="t4", model="Qwen/Qwen3-1.7B-Base",
                                              backend="vllm", data_dir=data))
    assert f"300 questions x 3 sample(s) x <= 32,768 tokens = {300 * 3 * 32768:,}" in paper


def test_without_a_gpu_measurement_a_gpu_plan_gives_the_decoding_ceiling_and_what_bounds_it(tmp_path):
    lines = planner.eval_plan_lines(("math500",), "consumer", 4, card="t4", model="Qwen/Qwen3-1.7B-Base",
                                    backend="vllm", data_dir=_data_dir(tmp_path, 500))
    ceiling, bound = planner.decode_ceiling(planner.gpu("t4"), planner.known_shape("qwen3-1.7b"), 8192)
    assert lines[-1].startswith(f"  time            at least ~{planner._took(4 * 200 * 8192 / ceiling)} at "
                                f"~{ceiling:,.0f} tokens/s")
    assert "the ceiling, not a measurement" in lines[-1] and "bound by memory bandwidth (320 GB/s" in lines[-1]


def test_decoding_is_planned_by_bandwidth_and_key_value_room_not_flops():
    """A T4 has 6.6% of an H100's FLOP/s but 9.6% of its bandwidth; an L4 12% of its FLOP/s, 9% of its bandwidth
    and a quarter of its memory: long replies rank the cards by bytes and room, not by FLOP/s."""
    small, big = planner.known_shape("qwen3-1.7b"), planner.known_shape("qwen3-8b")
    t4, l4, h100 = planner.gpu("t4"), planner.gpu("l4"), planner.gpu("h100")
    ceiling = lambda card, shape=small, cap=8192: planner.decode_ceiling(card, shape, cap)[0]
    # one step per 8k reply, weights small next to the key/value reads: the bandwidth ratio, less the T4's room
    assert 0.066 < ceiling(t4) / ceiling(h100) < 0.096
    assert ceiling(l4) < ceiling(t4) * 1.1  # twice the T4's FLOP/s buys an L4 no faster decoding
    # Qwen3-1.7B's 32k replies: 114,688 bytes of keys and values per token, 1.9 GB a reply at its mean length
    assert small.kv_bytes_per_token == 2 * 28 * 8 * 128 * 2
    _, why = planner.decode_ceiling(t4, small, 32768)
    assert "key/value room for 5 replies at once" in why  # ~9.5 GiB left beside 3.2 GiB of weights
    # 8B in bf16 (15.3 GiB of weights) does not fit a T4 at all, and an L4 has room for no 32k reply beside it
    assert planner.decode_ceiling(t4, big, 8192) == (0.0, planner.decode_ceiling(t4, big, 8192)[1])
    assert planner.decode_ceiling(t4, big, 8192)[1].startswith("does not fit")
    assert ceiling(l4, big, 8192) > 0 and ceiling(l4, big, 32768) == 0
    # a card with more bandwidth but the same room is faster by about the bandwidth ratio
    wide = {**t4, "bandwidth_gbs": 2 * t4["bandwidth_gbs"]}
    assert ceiling(wide) == pytest.approx(2 * ceiling(t4))


def test_a_model_that_does_not_fit_is_said_in_the_plan(tmp_path):
    lines = planner.eval_plan_lines(("math500",), "paper", 1, card="t4", model="Qwen/Qwen3-8B-Base",
                                    backend="vllm", data_dir=_data_dir(tmp_path, 10))
    assert "not estimated: does not fit: bf16 weights 15.3 GiB" in lines[-1]


def test_a_measured_gpu_figure_is_scaled_to_the_card_and_the_model(tmp_path, monkeypatch):
    measured = {"card": "h200", "model": "qwen3-1.7b", "backend": "vllm", "tokens_per_s": 20000.0,
                "max_new_tokens": 8192, "what": "32 prompts x 8,192 tokens"}
    real = planner.data()
    monkeypatch.setattr(planner, "data", lambda: {**real, "generation": [measured]})
    small = planner.known_shape("qwen3-1.7b")
    same, _, source = planner.generation_speed(planner.gpu("h200"), "vllm", "q", small, 8192)
    assert same == pytest.approx(20000.0) and "a lead, not a measurement" in source
    t4, _, _ = planner.generation_speed(planner.gpu("t4"), "vllm", "q", small, 8192)
    ratio = planner.decode_ceiling(planner.gpu("t4"), small, 8192)[0] / planner.decode_ceiling(
        planner.gpu("h200"), small, 8192)[0]
    assert t4 == pytest.approx(20000.0 * ratio)
    big, _, _ = planner.generation_speed(planner.gpu("h200"), "vllm", "q", planner.known_shape("qwen3-8b"), 8192)
    assert big < same  # more bytes of weights and of keys and values per token
    hf = planner.generation_speed(planner.gpu("t4"), "hf", "q", small, 8192)
    assert hf[0] is not None and "the ceiling, not a measurement" in hf[2]  # a vLLM figure says nothing about hf
    lines = planner.eval_plan_lines(("math500",), "consumer", 2, card="t4", model="Qwen/Qwen3-1.7B-Base",
                                    backend="vllm", data_dir=_data_dir(tmp_path, 200))
    assert f"at most ~{planner._took(2 * 200 * 8192 / t4)} at ~{t4:,.0f} tokens/s (model loading not included)" in lines[-1]


def test_the_embedded_default_on_this_cpu_is_planned_from_its_measurement(tmp_path):
    lines = planner.eval_plan_lines(("countdown",), "quickstart", 4, card="cpu",
                                    model="embedded:smollm2-135m-instruct", data_dir=tmp_path)
    minutes = (4 * 100 * 192 / 321 + 4 * 16) / 60  # countdown is in-domain: the preset's 100 questions
    assert lines[0].endswith("hf on this CPU") and "countdown        100 questions" in lines[1]
    assert f"at most ~{minutes:.0f} min at ~321 tokens/s + 16 s to start each model" in lines[-1]
    other = planner.eval_plan_lines(("countdown",), "quickstart", 1, card="cpu", model="some/model",
                                    data_dir=tmp_path)
    assert other[-1].endswith("not estimated: no measured CPU generation speed for some/model with hf")


def test_check_offline_prints_the_plan_from_the_models_known_shape(tmp_path, capsys, monkeypatch):
    """A Hub recipe on a machine without its model, tokenizer and data (tests run with HF_HUB_OFFLINE=1 and an
    empty cache): --check still says whether it fits and how long it takes, with what it assumed, then the line."""
    import train
    from helpers import ROOT
    from rsft.errors import NotLocal

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    recipe = ROOT / "recipes/qwen3-1.7b-base_math-cot-20k_lora.yaml"
    with pytest.raises(NotLocal, match="not in the local Hugging Face cache"):
        train.main([str(recipe), f"train.output_dir={tmp_path / 'run'}", "--check", "--gpu", "t4"])
    out = capsys.readouterr().out
    assert "offline         the model, its tokenizer or the data is not on this machine" in out
    assert "every row at data.max_length (20,000 tokens, the worst case), 20,480 rows" in out and "640 steps" in out
    line = next(x for x in out.splitlines() if x.startswith("  t4"))
    assert "GiB of 14.7" in line and "at most ~" in line
    assert not (tmp_path / "run").exists()


def test_the_paper_suite_is_planned_before_any_benchmark_is_downloaded(tmp_path):
    """`evaluate.py RUN --suite paper --estimate` on a fresh machine: each downloadable benchmark at its published
    size (its data.py's QUESTIONS) x the paper's k x its cap; one whose size is not known is said to be skipped."""
    from rsft.catalogue import SUITES

    lines = planner.eval_plan_lines(SUITES["paper"], "paper", 1, card="h100", model="Qwen/Qwen3-8B-Base",
                                    backend="vllm", data_dir=tmp_path)
    text = "\n".join(lines)
    assert "math500          500 questions x 3 sample(s) x <= 32,768 tokens" in text
    assert "gpqa_diamond     198 questions" in text and "mmlu_pro         1000 questions" in text
    assert "livecodebench    skipped: no data" in text  # its size depends on the release window it is cut to
    total = int(next(x for x in lines if "in all" in x).split("<=")[1].split()[0].replace(",", ""))
    assert total > 500 * 3 * 32768
