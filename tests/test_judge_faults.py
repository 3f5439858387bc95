"""Faults at the judging entry point, python -m rsft.judges SPEC: a bad spec file is one line; bad output files are
named and counted while the rest is judged; no traceback, no finished judgment lost."""
import json
import os
import re
import subprocess
import sys

import pytest

from helpers import ROOT, SECRET, FakeOpenAI, generated_dir, result, spec
from rsft.judges import rubrics


def judge(job, **env):
    return subprocess.run([sys.executable, "-m", "rsft.judges", str(job)], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, **env})


GOOD = json.loads(spec(ROOT, ["hexphi"]).to_json())
SPEC_FAULTS = {  # what the file holds -> what the one line says
    None: "No such file or directory",
    b"": "not a JudgeSpec (JSONDecodeError",
    b"\xff\xfe\x00binary": "not a JudgeSpec (UnicodeDecodeError",
    b"[1, 2]": "not a JudgeSpec (TypeError",
    json.dumps({k: v for k, v in GOOD.items() if k != "tasks"}).encode(): "not a JudgeSpec (KeyError: 'tasks')",
    json.dumps({**GOOD, "colour": "red"}).encode(): "unexpected keyword argument 'colour'",
    json.dumps({**GOOD, "batch_size": "8"}).encode(): "not a JudgeSpec (TypeError",
    json.dumps({**GOOD, "device": "tpu"}).encode(): "device must be one of ('cpu', 'cuda'), got 'tpu'",
    json.dumps({**GOOD, "judges": {"rubric": "x"}}).encode(): "judges must map each of the roles rubric, reward",
    json.dumps({**GOOD, "endpoint": 5}).encode(): "endpoint, out_dirs and tasks must be strings",
}


@pytest.mark.parametrize("content", list(SPEC_FAULTS), ids=range(len(SPEC_FAULTS)))
def test_a_bad_spec_file_is_one_line_naming_it(tmp_path, content):
    job = tmp_path / "spec.json"
    if content is not None:
        job.write_bytes(content)
    proc = judge(job)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("error: ") and SPEC_FAULTS[content] in line, line
    if content not in (None, *[c for c, why in SPEC_FAULTS.items() if "must" in why]):
        assert str(job) in line


def test_bad_output_files_are_named_and_skipped_while_the_rest_is_judged_and_nothing_finished_is_lost(tmp_path):
    api = FakeOpenAI(lambda prompt: "#thescore: 1")
    dirs = {name: generated_dir(tmp_path / name, "hexphi", "harm", ["Sure.", "Here."])
            for name in ("good", "gen_cut", "gen_kind", "samples_cut", "samples_gone", "row_bad", "lines_bad")}
    (dirs["gen_cut"] / "hexphi.gen.json").write_text('{"task": "hexphi", "n"')
    (dirs["gen_kind"] / "hexphi.gen.json").write_text(json.dumps({"task": "hexphi", "judge": "vibes"}))
    samples = dirs["samples_cut"] / "hexphi.samples.jsonl"
    samples.write_bytes(samples.read_bytes()[:-20])
    (dirs["samples_gone"] / "hexphi.samples.jsonl").unlink()
    rows = dirs["row_bad"] / "hexphi.samples.jsonl"
    rows.write_text(rows.read_text().replace('"response": "Here."', '"response": 5'))
    finished = json.dumps({"doc_id": 0, "sample": 0, "role": "rubric", "id": f"api:gpt-4.1@{api.url}",
                           "prompt_version": rubrics.prompt_version("harm"), "raw": "#thescore: 5", "score": 5,
                           "problem": None}).encode()
    judgments = dirs["lines_bad"] / "hexphi.judgments.jsonl"
    lines = b"\n".join([finished, b"\xff\xfe not utf-8", b"[1]", b"{}", b'{"doc_id": 1, "score": "high"}',
                        b'{"doc_id": 1, "sam'])
    judgments.write_bytes(lines)
    before = {p: p.read_bytes() for d in dirs.values() for p in d.iterdir()}
    job = tmp_path / "spec.json"
    job.write_text(json.dumps({**json.loads(spec(tmp_path, ["hexphi"], endpoint=api.url).to_json()),
                               "out_dirs": [str(d) for d in dirs.values()]}))
    proc = judge(job, OPENAI_API_KEY=SECRET)
    api.close()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    bad = ("gen_cut", "gen_kind", "samples_cut", "samples_gone", "row_bad")
    assert proc.stderr.splitlines()[-1] == ("error: judging incomplete: " + "; ".join(
        f"{name}/hexphi: unreadable files" for name in bad) + "; finished judgments are kept, rerun to continue")
    assert "hexphi.samples.jsonl line 2: missing or mistyped response; delete hexphi.gen.json and evaluate.py " \
           "generates hexphi again" in proc.stderr
    assert f"{dirs['gen_cut'] / 'hexphi.gen.json'} is missing or unreadable (cut short?)" in proc.stderr
    assert f"{dirs['gen_kind'] / 'hexphi.gen.json'} names no judge kind (harm, refusal" in proc.stderr
    assert f"warning: 5 unreadable line(s) in {judgments} skipped" in proc.stderr
    assert re.search(r"rubric judge: 100%.* 3/3 \[\d\d:\d\d<\d\d:\d\d", proc.stderr)  # progress, elapsed<ETA
    for name in bad:  # left as they were, no TASK.json
        assert not (dirs[name] / "hexphi.json").exists()
        assert {p: b for p, b in before.items() if p.parent == dirs[name]} == {
            p: p.read_bytes() for p in dirs[name].iterdir()}
    assert result(dirs["good"], "hexphi").judging.complete
    r = result(dirs["lines_bad"], "hexphi")  # the finished 5 kept and not asked again; only sample 1 asked
    counts = r.judging.details["score_counts"]
    assert r.judging.complete and counts["5"] == 1 and counts["1"] == 1
    assert judgments.read_bytes().startswith(lines + b"\n")  # appended to, nothing in it lost
    assert len(api.requests) == 2 + 1
