"""HaluEval's three subsets from the Hub (pminervini/HaluEval), interleaved into one task."""
from rsft.tasks.datafile import save

FIELDS = {"qa": ("knowledge", "question", "answer"), "dialogue": ("knowledge", "dialogue_history", "response"),
          "summarization": ("document", "summary")}

QUESTIONS = 30_000  # three subsets of 10,000: evaluate.py --estimate counts it before the data is downloaded


def download(data_dir):
    import datasets

    subsets = {s: list(datasets.load_dataset("pminervini/HaluEval", f"{s}_samples", split="data")) for s in FIELDS}
    every = sorted({f for fields in FIELDS.values() for f in fields})  # each row has every column
    rows = [{"subset": s, **{f: subsets[s][i][f] if f in FIELDS[s] else None for f in every},
             "hallucination": subsets[s][i]["hallucination"]}
            for i in range(max(map(len, subsets.values()))) for s in subsets if i < len(subsets[s])]  # interleaved
    save(data_dir, "halueval", rows)
