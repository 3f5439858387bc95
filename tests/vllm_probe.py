"""Runs the kit's evaluation worker with vLLM's generate call recorded: `python vllm_probe.py SPEC RECORD N`.

For each request, RECORD gets a line {"prompt": token ids, "max_tokens", "max_model_len", "seed",
"skip_special_tokens", "lora" (the adapter folder of the request's LoRARequest, or null), "max_lora_rank" (the
engine's, or null)} as the worker handed them to vLLM; the request then generates at most N tokens (so a 32k budget is checked without generating it).
A script of its own, with a __main__ guard, because vLLM starts its engine in processes that import the main module.
"""
import json
import sys


def main(spec_path: str, record: str, most: int) -> None:
    import vllm

    from rsft.eval_worker import run_worker
    from rsft.specs import WorkerSpec, read_spec

    real = vllm.LLM.generate

    def generate(self, prompts, sampling_params=None, *args, **kwargs):
        params = sampling_params if isinstance(sampling_params, list) else [sampling_params] * len(prompts)
        lora, lora_config = kwargs.get("lora_request"), self.llm_engine.vllm_config.lora_config
        with open(record, "a") as f:
            for prompt, sp in zip(prompts, params):
                f.write(json.dumps({"prompt": prompt["prompt_token_ids"], "max_tokens": sp.max_tokens,
                                    "max_model_len": self.llm_engine.model_config.max_model_len, "seed": sp.seed,
                                    "skip_special_tokens": sp.skip_special_tokens,
                                    "lora": lora.lora_path if lora else None,
                                    "max_lora_rank": lora_config.max_lora_rank if lora_config else None}) + "\n")
        for sp in params:
            sp.max_tokens = min(sp.max_tokens, most)
        return real(self, prompts, params, *args, **kwargs)

    vllm.LLM.generate = generate
    run_worker(read_spec(WorkerSpec, spec_path))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
