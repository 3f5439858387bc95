"""LiveCodeBench (livecodebench/code_generation_lite) from the Hub: problems in test.jsonl, each problem's public +
private tests in tests/ID.json (private tests decoded without unpickling)."""
from __future__ import annotations

import json
from pathlib import Path

from rsft.tasks.datafile import save

LCB_RELEASES = {"release_v1": ("test.jsonl",), "release_v2": ("test.jsonl", "test2.jsonl")}  # cumulative files


def download(data_dir: Path, release: str = "release_v2") -> None:
    """LiveCodeBench problems in test.jsonl, each problem's public + private tests in tests/ID.json."""
    import re

    from huggingface_hub import hf_hub_download

    rows = []
    for name in LCB_RELEASES[release]:
        with open(hf_hub_download("livecodebench/code_generation_lite", name, repo_type="dataset")) as f:
            for line in f:
                r = json.loads(line)
                public = json.loads(r["public_test_cases"])
                qid = re.sub(r"[^\w.-]", "_", r["question_id"])
                spec = {"fn_name": json.loads(r["metadata"] or "{}").get("func_name"),
                        "tests": public + decode_private_tests(r["private_test_cases"])}
                path = data_dir / "livecodebench" / "tests" / f"{qid}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(spec))
                rows.append({k: r[k] for k in ("question_id", "question_title", "question_content", "starter_code",
                                               "platform", "difficulty", "contest_date")}
                            | {"testtype": "stdin" if any(t["testtype"] == "stdin" for t in public) else "functional",
                               "tests_file": f"tests/{qid}.json", "n_tests": len(spec["tests"])})
    save(data_dir, "livecodebench", rows)


def decode_private_tests(encoded: str, max_bytes: int = 1 << 30) -> list[dict]:
    """LiveCodeBench's private tests (base64 of zlib of a pickled JSON string), read without unpickling.

    Unpickling runs whatever the pickle says, so the pickle is only parsed (pickletools) and accepted when it is
    exactly one string; anything else is refused. Decompression stops at max_bytes (no zlib bomb).
    """
    import base64
    import pickletools
    import zlib

    if encoded.lstrip().startswith("["):
        return json.loads(encoded)  # already plain JSON
    inflate = zlib.decompressobj()
    data = inflate.decompress(base64.b64decode(encoded), max_bytes)
    if inflate.unconsumed_tail:
        raise ValueError(f"private tests decompress to more than {max_bytes} bytes")
    strings = []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
            strings.append(arg)
        elif op.name not in ("PROTO", "FRAME", "MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT", "STOP"):
            raise ValueError(f"private tests: pickle opcode {op.name} refused (only a plain string is accepted)")
    if len(strings) != 1:
        raise ValueError(f"private tests: expected one pickled string, found {len(strings)}")
    return json.loads(strings[0])
