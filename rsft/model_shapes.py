"""The real architectures of the paper's base models, by short name: what the planner estimates memory and time
from when no config can be read, and what rsft/toy.py builds random-weight copies of."""

# The Hub configs of the Qwen3 base models (config.json of Qwen/Qwen3-{1.7B,4B,8B,14B}-Base), minus rope/bos details
# that do not change the cost. "tiny" is the same family at toy size for correctness tests.
QWEN3_SHAPES = {
    "qwen3-tiny": dict(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, head_dim=64, tie_word_embeddings=True),
    "qwen3-1.7b": dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28, num_attention_heads=16,
                       num_key_value_heads=8, head_dim=128, tie_word_embeddings=True),
    "qwen3-4b": dict(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32,
                     num_key_value_heads=8, head_dim=128, tie_word_embeddings=True),
    "qwen3-8b": dict(hidden_size=4096, intermediate_size=12288, num_hidden_layers=36, num_attention_heads=32,
                     num_key_value_heads=8, head_dim=128, tie_word_embeddings=False),
    "qwen3-14b": dict(hidden_size=5120, intermediate_size=17408, num_hidden_layers=40, num_attention_heads=40,
                      num_key_value_heads=8, head_dim=128, tie_word_embeddings=False),
}
HUB_IDS = {  # the released models these shapes are; the planner reads a shape from here when offline
    "qwen3-1.7b": ("Qwen/Qwen3-1.7B-Base", "Qwen/Qwen3-1.7B"),
    "qwen3-4b": ("Qwen/Qwen3-4B-Base", "Qwen/Qwen3-4B"),
    "qwen3-8b": ("Qwen/Qwen3-8B-Base", "Qwen/Qwen3-8B"),
    "qwen3-14b": ("Qwen/Qwen3-14B-Base", "Qwen/Qwen3-14B"),
}
QWEN3_VOCAB = 151936  # the real embedding size; the local tokenizer uses only its first few thousand rows
