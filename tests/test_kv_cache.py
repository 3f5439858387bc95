"""The preallocated key/value cache the CPU evaluation generates with: the same logits and tokens as transformers'
DynamicCache, past its capacity and after a batch selection too; models it does not fit keep transformers' cache."""
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache
from transformers.cache_utils import DynamicLayer

from rsft.catalogue import preset
from rsft.kv_cache import PreallocatedLayer, preallocated_cache
from rsft.models import cpu_attention
from rsft.specs import ModelSpec, WorkerSpec


@pytest.fixture(scope="module")
def model_and_batch(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32,
                                                 attn_implementation=cpu_attention()).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.padding_side = "left"
    batch = tok(["Using the numbers [3, 4, 5], make 27.", "Capital of France?", "2 + 2 ="], return_tensors="pt",
                padding=True)
    assert (batch["attention_mask"] == 0).any()  # left padding in play
    return model, tok, batch


@pytest.mark.parametrize("capacity", [0, 5, 64])  # 0 and 5: the buffer is outgrown during the prompt or decoding
def test_generate_with_the_preallocated_cache_gives_the_same_scores_and_tokens(model_and_batch, capacity):
    model, tok, batch = model_and_batch
    kw = dict(max_new_tokens=16, min_new_tokens=16, do_sample=False, pad_token_id=tok.pad_token_id,
              output_scores=True, return_dict_in_generate=True)
    with torch.no_grad():
        ref = model.generate(**batch, past_key_values=DynamicCache(), **kw)
        cache = preallocated_cache(model.config, capacity)
        out = model.generate(**batch, past_key_values=cache, **kw)
    assert isinstance(cache.layers[0], PreallocatedLayer)
    assert torch.equal(out.sequences, ref.sequences)
    for a, b in zip(out.scores, ref.scores):
        assert torch.equal(a, b)


def test_a_layer_keeps_the_right_keys_after_a_batch_selection_and_past_its_capacity():
    torch.manual_seed(0)
    ours, ref = PreallocatedLayer(capacity=6), DynamicLayer()
    chunks = [torch.randn(4, 2, n, 8) for n in (3, 1, 1)]
    for c in chunks:
        assert torch.equal(ours.update(c, -c)[0], ref.update(c, -c)[0])
    buffer = ours.keys.data_ptr()
    for layer in (ours, ref):
        layer.batch_select_indices(torch.tensor([0, 2]))  # transformers replaces `keys` with a copy
    for n in (1, 1, 4):  # the 4 goes past the capacity of 6
        c = torch.randn(2, 2, n, 8)
        k, v = ours.update(c, -c)
        k_ref, v_ref = ref.update(c, -c)
        assert torch.equal(k, k_ref) and torch.equal(v, v_ref)
    assert ours.get_seq_length() == ref.get_seq_length() == 11 and ours.keys.data_ptr() != buffer


def test_models_with_sliding_window_layers_keep_transformers_cache():
    from transformers import LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config

    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2)
    assert preallocated_cache(LlamaConfig(**small), 8) is not None
    assert preallocated_cache(Qwen2Config(**small, sliding_window=16, use_sliding_window=False), 8) is not None
    assert preallocated_cache(MistralConfig(**small, sliding_window=16), 8) is None
    mixed = Qwen3Config(**small, sliding_window=16, use_sliding_window=True, max_window_layers=1)
    assert "sliding_attention" in mixed.layer_types and preallocated_cache(mixed, 8) is None


def test_the_cpu_worker_generates_into_a_cache_sized_for_prompt_and_cap(tiny_model_dir, tmp_path, monkeypatch):
    from rsft import cpu_decode
    from rsft.eval_worker import hf_model

    seen, decode = {}, cpu_decode.decode

    def spy(*args, **kw):
        seen.update(kw)
        return decode(*args, **kw)

    monkeypatch.setattr(cpu_decode, "decode", spy)  # the worker's decoding loop (rsft.cpu_decode)
    spec = WorkerSpec(model=ModelSpec(base=tiny_model_dir), step=0, tasks=("countdown",), preset_name="quickstart",
                      preset=preset("quickstart"), data_dir=str(tmp_path), out_dir=str(tmp_path / "out"),
                      backend="hf", device="cpu", batch_size=64)
    lm = hf_model(spec)
    context = torch.tensor([[1, 2, 3, 4]])
    out = lm._model_generate(context, max_length=10, stop=["<|im_end|>"], attention_mask=torch.ones_like(context),
                             do_sample=True, temperature=0.6, top_p=0.95)
    layers = seen["cache"].layers
    assert all(isinstance(layer, PreallocatedLayer) and layer.capacity == 10 for layer in layers)
    assert out.shape[0] == 1 and out.shape[1] <= 10
