"""MMLU-Pro's test split from the Hub (TIGER-Lab/MMLU-Pro), cut to the paper's 1k subset (subset.py: the procedure
of the framework the paper used). The commit it was built from is recorded beside it in source.json: the subset
depends on the rows and their order, so two subsets compare only when their commits do."""
from pathlib import Path

from rsft.rundir import write_json_atomic
from rsft.tasks.datafile import save
from rsft.tasks.mmlu_pro.subset import RANDOM_STATE, SAMPLE_SIZE, build_mmlu_pro_1k

REPO = "TIGER-Lab/MMLU-Pro"
REVISION = None  # None: the Hub's main at download time, whose commit source.json records; set a commit to pin

QUESTIONS = 1_000  # the paper's 1k subset (subset.py): evaluate.py --estimate counts it before the data is downloaded


def download(data_dir):
    import datasets
    from huggingface_hub import HfApi

    commit = REVISION or HfApi().dataset_info(REPO).sha
    pro = datasets.load_dataset(REPO, split="test", revision=commit)
    subset = build_mmlu_pro_1k([dict(r) for r in pro])
    save(data_dir, "mmlu_pro", [{"question": r["question"], "options": r["options"], "answer": r["answer"],
                                 "category": r["category"], "question_id": r["question_id"]} for r in subset])
    write_json_atomic(Path(data_dir) / "mmlu_pro" / "source.json", {
        "repo": REPO, "revision": commit, "split": "test", "procedure": "rsft/tasks/mmlu_pro/subset.py",
        "sample_size": SAMPLE_SIZE, "random_state": RANDOM_STATE})
