"""A key/value cache for transformers' generate on CPU, written in place instead of grown by concatenation.

transformers' DynamicCache appends each new token's keys and values with `torch.cat`, which copies the whole cache
at every layer of every step: for the embedded model and a batch of 64, 23 KB per row and position, ~0.5 GB per
new token at 350 positions (51% of a decoding step under the profiler). `preallocated_cache` reserves the whole
length once (the prompt plus the new-token cap, which the caller knows) and gives attention a view of each layer's
filled part: the same tensors, so the same logits and tokens (tests/test_kv_cache.py), 1.14-1.28x the generation
speed of the embedded model at batch 64 over 192 new tokens on 2 cores (bench/RESULTS.md). A model with
sliding-window (or other non-global) layers keeps transformers' cache.
"""
from __future__ import annotations

from transformers.cache_utils import Cache, DynamicLayer


class PreallocatedLayer(DynamicLayer):
    """A DynamicLayer over a buffer of `capacity` positions, `keys`/`values` being views of its filled part. Past
    the capacity (it doubles), or when transformers has replaced `keys` (batch selection, cropping), it moves what
    the layer holds into a new buffer."""

    def __init__(self, capacity: int, dtype=None):
        super().__init__()
        self.capacity, self.store = capacity, dtype  # DynamicLayer sets its own `dtype`
        self._k = self._v = None
        self._filled = 0

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        new = key_states.shape[-2]
        if not self._holds_keys() or self._filled + new > self._k.shape[-2]:
            self._reseat(key_states, new)
        end = self._filled + new
        self._k[..., self._filled:end, :] = key_states
        self._v[..., self._filled:end, :] = value_states
        self._filled = end
        self.keys, self.values = self._k[..., :end, :], self._v[..., :end, :]
        return self.keys, self.values

    def batch_select_indices(self, indices) -> None:
        """Keep the rows `indices` (rsft.cpu_decode drops the rows that have ended): one copy into a buffer of the
        same capacity."""
        if self._holds_keys():
            self._k, self._v = self._k.index_select(0, indices), self._v.index_select(0, indices)
            self.keys, self.values = self._k[..., :self._filled, :], self._v[..., :self._filled, :]
        else:
            super().batch_select_indices(indices)

    def _holds_keys(self) -> bool:
        """Whether `keys` is still this layer's view of its buffer (transformers may have replaced it)."""
        return self._k is not None and self.keys.data_ptr() == self._k.data_ptr() \
            and self.keys.shape[:-2] == self._k.shape[:-2] and self.keys.shape[-2] == self._filled

    def _reseat(self, like, new: int) -> None:
        """A fresh buffer for what `keys`/`values` hold now plus `new` positions, the held part copied in."""
        held = self.keys.shape[-2] if self.keys.numel() else 0
        size = self.capacity if held + new <= self.capacity else 2 * (held + new)
        shape = (*like.shape[:-2], size, like.shape[-1])
        dtype = self.store or like.dtype
        k, v = like.new_empty(shape, dtype=dtype), like.new_empty(shape, dtype=dtype)
        if held:
            k[..., :held, :], v[..., :held, :] = self.keys, self.values
        self._k, self._v, self._filled = k, v, held


def preallocated_cache(config, capacity: int, dtype=None) -> Cache | None:
    """A Cache of PreallocatedLayer (`capacity` positions each) for generate's `past_key_values=`; None, meaning
    transformers' own cache, for a model whose layers are not all global attention. `dtype`: the keys' and
    values' (default: the model's)."""
    text = config.get_text_config(decoder=True)
    if set(getattr(text, "layer_types", None) or ["full_attention"]) != {"full_attention"}:
        return None
    if getattr(text, "sliding_window", None) and getattr(text, "use_sliding_window", True):
        return None  # a sliding window without layer_types (Mistral): every layer slides
    return Cache(layers=[PreallocatedLayer(capacity, dtype) for _ in range(text.num_hidden_layers)])
