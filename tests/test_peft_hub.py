"""Checkpoints as a PEFT user meets them: AutoPeft loads them offline, a card says what they are, and a push
uploads exactly the adapter, tokenizer and card (never the optimizer state), checked against a local fake Hub."""
import base64
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import train
from helpers import ROOT, make_recipe
from rsft import hub, offline
from rsft.errors import UserError


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir):
    """One tiny run (8 steps, checkpoints 2 3 4 8), shared by the tests that only read it."""
    tmp = tmp_path_factory.mktemp("peft")
    assert train.main([str(make_recipe(tmp, tiny_model_dir))]) == 0
    return tmp / "run"


def test_auto_peft_loads_a_checkpoint_offline_as_it_is(trained, tiny_model_dir):
    import peft
    import torch
    from transformers import AutoModelForCausalLM

    ckpt = trained / "checkpoints/step00008"
    model = peft.AutoPeftModelForCausalLM.from_pretrained(ckpt)  # HF_HUB_OFFLINE=1 (conftest): no Hub call
    x = torch.tensor([[1, 2, 3, 4]])
    by_hand = peft.PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), ckpt)
    assert torch.equal(model(x).logits, by_hand(x).logits)


def test_the_embedded_base_is_named_by_its_converted_folder(tmp_path, smollm2_dir):
    import peft

    from rsft.config import load_recipe
    from rsft.models import load_for_training

    recipe = load_recipe(ROOT / "recipes/quickstart.yaml")
    loaded = load_for_training(recipe)
    loaded.model.save_pretrained(tmp_path / "adapter", save_embedding_layers=False)
    config = json.loads((tmp_path / "adapter/adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == smollm2_dir and config["revision"] is None
    model = peft.AutoPeftModelForCausalLM.from_pretrained(tmp_path / "adapter")
    assert type(model.get_base_model()).__name__ == "LlamaForCausalLM"


def plant_result(run, step, task, value, stderr=0.02):
    out = run / "eval/quickstart" / f"step{step:05d}"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{task}.json").write_text(json.dumps({
        "task": task, "step": step, "value": value, "stderr": stderr, "n": 5, "k": 1, "preset_name": "quickstart",
        "preset": {}, "grader_version": 1, "metric": "acc", "group": "in_domain",
        "generation_kwargs": {"temperature": 0.6, "top_p": 0.95, "max_gen_toks": 192}}))


def test_the_model_card_tells_base_data_steps_and_scores(tmp_path, trained, tiny_model_dir):
    ckpt = trained / "checkpoints/step00004"
    card = hub.model_card(ckpt)
    assert "library_name: peft" in card and f"the local model `{tiny_model_dir}`" in card
    assert "| step | 4 (epoch 1.0) |" in card and "data.jsonl" in card and "Not evaluated yet" in card
    assert "LoRA adapter (r 4, alpha 8, on q_proj, v_proj)" in card
    assert "The paper reports no run of this base model on this data" in card
    assert f'AutoPeftModelForCausalLM.from_pretrained("{ckpt}")' in card
    plant_result(trained, 0, "countdown", 0.2)
    plant_result(trained, 4, "countdown", 0.6)
    (trained / "eval/quickstart/step00004/broken.json").write_text("{")
    res = subprocess.run([sys.executable, "-m", "rsft.hub", "card", str(ckpt)], capture_output=True, text=True,
                         cwd=ROOT)
    assert res.returncode == 0, res.stderr
    card = (ckpt / "README.md").read_text()
    assert "| countdown | in-domain | quickstart | 5 x 1 | 60.0 ± 2.0% | 20.0 ± 2.0% | - |" in card
    from huggingface_hub import ModelCard

    data = ModelCard(card).data  # the front matter the Hub renders: built with huggingface_hub's ModelCardData
    [result] = data.eval_results
    assert (result.dataset_name, result.metric_value, result.metric_args["n"]) == ("countdown", 60.0, 5)
    assert result.metric_args["domain"] == "in-domain" and result.metric_args["base_step_0"] == 20.0
    from rsft.countdown import chance

    samples = ckpt.parent.parent / "eval/quickstart/step00004/countdown.samples.jsonl"  # two puzzles, one twice
    docs = [{"numbers": [3, 5, 7], "target": 15}, {"numbers": [2, 4, 9], "target": 17}]
    samples.write_text("".join(json.dumps({"doc": d}) + "\n" for d in docs + docs[:1]))
    guess = 100 * (chance([3, 5, 7], 15) + chance([2, 4, 9], 17)) / 2
    card = hub.model_card(ckpt)
    assert f"| 60.0 ± 2.0% | 20.0 ± 2.0% | {guess:.1f}% |" in card
    assert ModelCard(card).data.eval_results[0].metric_args["random_guess"] == pytest.approx(guess)
    assert "Left out, unreadable: eval/quickstart/step00004/broken.json." in card


def test_a_paper_setting_is_named_in_the_card(tmp_path, trained):
    import yaml

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    recipe = yaml.safe_load((trained / "recipe.yaml").read_text())
    recipe["model"]["name_or_path"], recipe["data"]["path"] = "Qwen/Qwen3-4B-Base", "jasonrqh/Math-CoT-20k"
    recipe["model"]["revision"] = "0123abc"
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    ckpt = run / "checkpoints/step00008"
    ckpt.mkdir()
    meta = json.loads((trained / "checkpoints/step00008/meta.json").read_text())
    meta.update(base_model="Qwen/Qwen3-4B-Base", revision="0123abc")
    (ckpt / "meta.json").write_text(json.dumps(meta))
    (ckpt / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "Qwen/Qwen3-4B-Base",
                                                          "revision": "0123abc"}))
    card = hub.model_card(ckpt, "me/qwen3-4b-cot")
    assert "base_model: Qwen/Qwen3-4B-Base" in card and "datasets:\n- jasonrqh/Math-CoT-20k" in card
    assert "[Qwen/Qwen3-4B-Base](https://huggingface.co/Qwen/Qwen3-4B-Base) at revision `0123abc`" in card
    assert "the paper's Table 9 (App. D)" in card and 'from_pretrained("me/qwen3-4b-cot")' in card


def dry_run_listing(out: str) -> tuple[list[str], list[str]]:
    files = [line.split()[0] for line in out.splitlines()[1:] if line.startswith("  ") and "left out" not in line]
    left_out = [line.split()[2] for line in out.splitlines() if line.startswith("  left out: ")]
    return files, left_out


def test_a_local_base_is_named_by_its_hub_id_or_refused(trained):
    with pytest.raises(UserError, match="its base is the local folder .*--base"):  # no one else could load it
        hub.push(trained, "me/tiny", dry_run=True)
    shared = dict(hub.upload_plan(trained / "checkpoints/step00008", "me/tiny", base="me/tiny-base")[0])
    assert json.loads(shared["adapter_config.json"])["base_model_name_or_path"] == "me/tiny-base"
    assert b"base_model: me/tiny-base" in shared["README.md"]


def embedded_checkpoint(trained, tmp_path):
    """The trained checkpoint as if its base were the embedded model (what the quickstart run writes)."""
    import shutil

    from rsft.cache import EMBEDDED_SMOLLM2

    run = tmp_path / "run"
    shutil.copytree(trained, run, ignore=shutil.ignore_patterns("eval"))
    ckpt = run / "checkpoints/step00008"
    meta = json.loads((ckpt / "meta.json").read_text())
    (ckpt / "meta.json").write_text(json.dumps({**meta, "base_model": EMBEDDED_SMOLLM2}))
    return run, ckpt


def test_push_dry_run_lists_the_files_and_leaves_the_optimizer_state_out(trained, tmp_path):
    run, ckpt = embedded_checkpoint(trained, tmp_path)
    res = subprocess.run([sys.executable, "-m", "rsft.hub", "push", str(run), "me/tiny", "--dry-run"],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"would upload {ckpt} to https://huggingface.co/me/tiny:")
    files, left_out = dry_run_listing(res.stdout)
    on_disk = sorted(p.name for p in ckpt.iterdir())
    state = ["trainer_state.pt", "trainer_state_rank0.pt"]  # rank files hold FSDP optimizer shards: never shared
    assert set(state) <= set(on_disk) and left_out == state
    assert files == sorted(set(on_disk) - set(state) | {"README.md"})
    shared = dict(hub.upload_plan(ckpt, "me/tiny")[0])
    config = json.loads(shared["adapter_config.json"])
    assert config["base_model_name_or_path"] == hub.EMBEDDED_HUB_BASE and config["revision"] is None
    assert b"base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in shared["README.md"]
    assert b"\nlicense: apache-2.0\n" in shared["README.md"]  # the base's license, known without a Hub call
    assert b"Q4_1 GGUF" in shared["README.md"]


class FakeHub(BaseHTTPRequestHandler):
    """The four calls HfApi makes to create a repository and commit small files to it."""

    commits: list = []

    def _reply(self, obj, code=200):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_HEAD(self):  # rsft.offline's reachability probe
        self.send_response(200)
        self.end_headers()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = f"http://127.0.0.1:{self.server.server_port}"
        if self.headers.get("Authorization") != "Bearer hf_test_token":
            return self._reply({"error": "Invalid credentials"}, 401)
        if self.path == "/api/repos/create":
            return self._reply({"url": f"{url}/me/tiny"})
        if self.path == "/api/validate-yaml":
            return self._reply({"errors": [], "warnings": []})
        if self.path == "/api/models/me/tiny/preupload/main":
            files = json.loads(body)["files"]
            return self._reply({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                          for f in files]})
        if self.path == "/api/models/me/tiny/commit/main":
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
            FakeHub.commits.append({x["value"]["path"]: base64.b64decode(x["value"]["content"])
                                    for x in lines if x["key"] == "file"})
            return self._reply({"commitUrl": f"{url}/me/tiny/commit/{'a' * 40}", "commitOid": "a" * 40})
        self._reply({"error": f"not faked: {self.path}"}, 404)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_hub(monkeypatch):
    from huggingface_hub import constants

    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(offline, "_switched_offline", None)
    FakeHub.commits = []
    yield url
    server.shutdown()


def test_push_uploads_the_planned_files_to_a_hub(trained, tmp_path, fake_hub, capsys):
    run, ckpt = embedded_checkpoint(trained, tmp_path)
    hub.push(run, "me/tiny")
    assert f"pushed: {fake_hub}/me/tiny/commit/" in capsys.readouterr().out
    (uploaded,) = FakeHub.commits
    planned = dict(hub.upload_plan(ckpt, "me/tiny")[0])
    assert sorted(uploaded) == sorted(planned) and not [f for f in uploaded if f.startswith("trainer_state")]
    assert uploaded["adapter_model.safetensors"] == (ckpt / "adapter_model.safetensors").read_bytes()
    assert uploaded["README.md"] == planned["README.md"]


def test_push_with_a_bad_token_is_one_line(trained, tmp_path, fake_hub, monkeypatch):
    run, _ = embedded_checkpoint(trained, tmp_path)
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(UserError, match="push to me/tiny failed: .*401") as e:
        hub.push(run, "me/tiny")
    assert "\n" not in str(e.value) and FakeHub.commits == []


def test_push_refuses_a_bad_repo_id_and_a_folder_without_checkpoints(tmp_path):
    with pytest.raises(UserError, match="not a Hub repository id"):
        hub.push(tmp_path, "not a repo")
    with pytest.raises(UserError, match="neither a checkpoint .* nor a run folder with checkpoints"):
        hub.push(tmp_path, "me/tiny", dry_run=True)


def test_a_cached_hub_base_trains_offline_and_its_adapter_records_the_commit(tmp_path, tiny_model_dir, monkeypatch,
                                                                            unreachable_hub):
    """A Hub id in the local cache, the Hub unreachable: training starts at once from the cache, and the adapter
    names the id at the exact commit loaded, so AutoPeft finds the same base again."""
    import shutil

    import peft
    from huggingface_hub import constants


    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub/models--rsft-test--tiny-smollm2"
    shutil.copytree(tiny_model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs/main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert train.main([str(make_recipe(tmp_path, "rsft-test/tiny-smollm2"))]) == 0
    ckpt = tmp_path / "run/checkpoints/step00008"
    config = json.loads((ckpt / "adapter_config.json").read_text())
    assert (config["base_model_name_or_path"], config["revision"]) == ("rsft-test/tiny-smollm2", commit)
    model = peft.AutoPeftModelForCausalLM.from_pretrained(ckpt)
    assert model.get_base_model().config._commit_hash == commit


def test_every_scheduled_checkpoint_carries_the_kits_model_card(trained):
    ckpts = sorted((trained / "checkpoints").iterdir())
    assert ckpts, "the run saved no checkpoint: nothing to check"
    for ckpt in ckpts:
        card = (ckpt / "README.md").read_text()
        assert f"| step | {int(ckpt.name[4:])} " in card and "## The paper setting" in card
