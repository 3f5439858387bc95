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
