"""rsft: the shared library behind train.py and evaluate.py (reasoning SFT reproduction kit)."""
