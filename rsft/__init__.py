"""rsft: the shared library behind train.py and evaluate.py (reasoning SFT reproduction kit)."""
import logging

# bitsandbytes 0.50.2 on a CPU logs at import that an optional kernel it would fetch from the Hub ("kernels-community")
# is missing, and falls back to its own; peft imports bitsandbytes whenever it is installed, so without this every
# command of the kit would start with that warning (on stderr, where the kit's one-line errors go)
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
