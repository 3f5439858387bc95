"""XSTest's safe prompts from the Hub (natolambert/xstest-v2-copy; walledai/XSTest is gated); contrast prompts
(the unsafe twins) are left out: this task measures over-refusal."""
from rsft.tasks.datafile import save

QUESTIONS = 450  # XSTest v2: 250 safe, 200 unsafe prompts: evaluate.py --estimate counts it before the data is downloaded


def download(data_dir):
    import datasets

    xs = datasets.load_dataset("natolambert/xstest-v2-copy", split="prompts")
    save(data_dir, "xstest", [{"prompt": r["prompt"], "type": r["type"]} for r in xs
                              if not r["type"].startswith("contrast")])
