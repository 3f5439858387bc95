"""The paper preset's token budget on a model whose context is 32,768 (every Qwen3-*-Base): each request may
generate what the paper's vLLM path left it, 32,768 minus its own prompt, with the prompt kept whole, on both
backends (rsft/lm_backends.py). Checked on what reaches the model's generate call, without generating 32k tokens.
The vLLM backend's budget: tests/test_vllm.py."""
import json
import pytest
import torch

import evaluate
from helpers import WINDOW, toy_qwen3_32k
from rsft.eval_worker import run_worker
from rsft.lm_backends import budget_stop, request_budgets



def test_a_request_gets_the_window_minus_its_prompt_capped_by_max_gen_toks():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]])  # prompts of 3, 5 and 1 tokens
    assert request_budgets(mask, 32768, 8).tolist() == [5, 3, 7]
    assert request_budgets(mask, 4, 8).tolist() == [4, 3, 4]  # a cap below what the window leaves
    assert request_budgets(mask, 32768, 5).tolist() == [2, 1, 4]  # a prompt that fills the window: one token


def test_each_row_stops_at_its_own_budget():
    stop = budget_stop(prompt_width=5, budgets=torch.tensor([2, 4]))
    assert stop(torch.zeros(2, 6, dtype=torch.long), None).tolist() == [False, False]
    assert stop(torch.zeros(2, 7, dtype=torch.long), None).tolist() == [True, False]
    assert stop(torch.zeros(2, 9, dtype=torch.long), None).tolist() == [True, True]


@pytest.fixture(scope="module")
def qwen3_32k(tmp_path_factory):
    return toy_qwen3_32k(tmp_path_factory.mktemp("qwen3-32k"))


def test_the_paper_preset_runs_on_the_hf_backend_with_the_window_left_by_each_prompt(qwen3_32k, tmp_path,
                                                                                      monkeypatch):
    from transformers import AutoTokenizer

    from rsft import cpu_decode, sampling

    tok = AutoTokenizer.from_pretrained(qwen3_32k)
    seen, samplers = [], []

    class Sampler(sampling.NucleusSample):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            samplers.append(self.__dict__)

    def fake_decode(model, context, attention_mask, budgets, pick, *, eos_ids, pad_id, cache, stops=None, ends=None):
        prompts = [[t for t, m in zip(row, mask) if m] for row, mask in zip(context.tolist(), attention_mask.tolist())]
        assert budgets.tolist() == [WINDOW - len(p) for p in prompts]  # each row: the window its prompt leaves
        assert {layer.capacity for layer in cache.layers} == {context.shape[1] + int(budgets.max())}
        seen.append({"max_new": int(budgets.max()), "budgets": budgets.tolist(), "prompts": prompts,
                     "sampler": samplers[-1]})
        return torch.cat([context, torch.full((len(prompts), 1), tok.eos_token_id)], dim=1)

    monkeypatch.setattr(cpu_decode, "decode", fake_decode)
    monkeypatch.setattr(sampling, "NucleusSample", Sampler)
    monkeypatch.setattr(evaluate, "run_one", lambda spec, module=None: run_worker(spec) or True)
    out = tmp_path / "e"
    assert evaluate.main(["--model", qwen3_32k, "--preset", "paper", "--suite", "countdown,word_problems",
                          "--limit", "2", "--backend", "hf", "--out", str(out)]) == 0
    assert seen and all(call["max_new"] == max(call["budgets"]) for call in seen)
    lengths = {len(p) for call in seen for p in call["prompts"]}
    assert len(lengths) > 1  # prompts of different lengths, so each got its own budget
    for task in ("countdown", "word_problems"):
        samples = [json.loads(line) for line in (out / f"{task}.samples.jsonl").read_text().splitlines()]
        whole = {tok.decode(p) for call in seen for p in call["prompts"]}
        assert {s["prompt"] for s in samples} <= whole  # every prompt reached the model whole
        result = json.loads((out / f"{task}.json").read_text())
        assert result["generation_kwargs"]["max_gen_toks"] == WINDOW and result["backend"] == "hf"
    # the paper's sampling, drawn on CPU by rsft.sampling: T 0.6, top-p 0.95, no top-k
    assert all({k: c["sampler"][k] for k in ("temperature", "top_p", "top_k")} == {"temperature": 0.6, "top_p": 0.95,
                                                                                  "top_k": 0} for c in seen)


def test_the_gpu_path_samples_without_top_k_and_keeps_a_prompt_longer_than_window_minus_cap(qwen3_32k,
                                                                                         monkeypatch):
    """KitHFLM, the class the worker uses on a GPU (here on the CPU): transformers' generate would add its default
    top_k of 50 to the paper's T/top-p sampling; a cap equal to the window no longer cuts or refuses the prompt."""
    from lm_eval.api.instance import Instance
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.generation.utils import GenerationMixin

    from rsft.lm_backends import kit_hflm

    tok = AutoTokenizer.from_pretrained(qwen3_32k)
    seen = []

    def fake_generate(self, input_ids, max_length, stopping_criteria, pad_token_id, **kw):
        seen.append((input_ids.shape[1], max_length, kw))
        return torch.cat([input_ids, torch.full((input_ids.shape[0], 1), tok.eos_token_id)], dim=1)

    monkeypatch.setattr(GenerationMixin, "generate", fake_generate)
    lm = kit_hflm()(pretrained=AutoModelForCausalLM.from_pretrained(qwen3_32k), tokenizer=tok, batch_size=2)
    gen = {"until": [], "max_gen_toks": WINDOW, "do_sample": True, "temperature": 0.6, "top_p": 0.95}
    greedy = {"until": [], "max_gen_toks": 100, "do_sample": False, "temperature": 0.0}
    text = "Using 3 5 7, make 22."
    assert lm.generate_until([Instance("generate_until", {}, (text, gen), 0),
                              Instance("generate_until", {}, (text, greedy), 1)]) == ["", ""]
    (w1, m1, sampled), (w2, m2, plain) = sorted(seen, key=lambda s: s[1], reverse=True)
    assert w1 == len(tok(text)["input_ids"]) and m1 == WINDOW  # the whole prompt, prompt + reply <= the window
    assert sampled["do_sample"] and sampled["top_k"] == 0 and sampled["temperature"] == 0.6
    assert m2 - w2 == 100 and not plain["do_sample"] and "top_k" not in plain and "temperature" not in plain
