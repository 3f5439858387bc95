"""HEx-PHI from the Hub (LLM-Tuning-Safety/HEx-PHI, gated): 11 CSV files, one instruction per line, no header."""
import csv

from rsft.tasks.datafile import save

GATED = "accept its licence on the Hub and set HF_TOKEN; strongreject is the public set in the same shape"


def download(data_dir):
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    rows = []
    for i in range(1, 12):
        try:
            path = hf_hub_download("LLM-Tuning-Safety/HEx-PHI", f"category_{i}.csv", repo_type="dataset")
        except EntryNotFoundError:
            print(f"hexphi: category_{i}.csv is not in the release")
            continue
        with open(path, newline="", encoding="utf-8") as f:
            rows += [{"prompt": r[0].strip(), "category": i} for r in csv.reader(f) if r and r[0].strip()]
    save(data_dir, "hexphi", rows)
