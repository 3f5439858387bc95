"""AlpacaEval's 805 instructions from the Hub (tatsu-lab/alpaca_eval, alpaca_eval.json)."""
import json

from rsft.tasks.datafile import save

QUESTIONS = 805  # AlpacaEval 2.0's instructions: evaluate.py --estimate counts it before the data is downloaded


def download(data_dir):
    from huggingface_hub import hf_hub_download

    with open(hf_hub_download("tatsu-lab/alpaca_eval", "alpaca_eval.json", repo_type="dataset")) as f:
        save(data_dir, "alpacaeval", [{"prompt": r["instruction"], "dataset": r["dataset"]} for r in json.load(f)])
