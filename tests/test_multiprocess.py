"""Two processes, the same run: the quickstart recipe (on the tiny model, 4 steps) under `torchrun --nproc_per_node 2`
on CPU (gloo) gives one process's per-step losses, writes one set of checkpoints and resumes exactly after kill -9."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import train
from helpers import ROOT, metrics


def overrides(model_dir, out, accumulation):
    # 16 embedded Countdown rows / (4 per device x accumulation x processes = 8) = 2 steps/epoch x 2 epochs = 4 steps
    return [f"model.name_or_path={model_dir}", "data.num_examples=16", "data.max_length=256",
            f"train.gradient_accumulation_steps={accumulation}", "train.num_train_epochs=2",
            "checkpoints.doubling_from=1", "checkpoints.steps=[]",  # the recipe's step 10 lies beyond these 4
            f"train.output_dir={out}"]


def kill_tree(pid):
    """SIGKILL a process and its descendants (torchrun starts each worker in a session of its own), leaves first."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    for child in children.read_text().split() if children.exists() else []:
        kill_tree(int(child))
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_two_processes_train_the_same_run_as_one_and_resume_exactly(tmp_path, tiny_model_dir):
    recipe = str(ROOT / "recipes/quickstart.yaml")
    assert train.main([recipe, *overrides(tiny_model_dir, tmp_path / "one", 2)]) == 0
    two, ckpts = tmp_path / "two", tmp_path / "two/checkpoints"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "train.py", recipe,
           *overrides(tiny_model_dir, two, 1)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with (tmp_path / "killed.log").open("w") as log:  # kill -9 of every process once step 2 is saved
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        while proc.poll() is None and not (ckpts / "step00002").exists():
            time.sleep(0.01)
        kill_tree(proc.pid)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, (tmp_path / "killed.log").read_text()[-3000:]
    assert not (ckpts / "step00004").exists()
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "Traceback" not in res.stderr and f"resuming from {ckpts / 'step00002'} (step 2 of 4)" in res.stdout
    one, both = metrics(tmp_path / "one"), metrics(two)
    assert [r["step"] for r in both] == [1, 2, 3, 4]
    assert [r["tokens"] for r in both] == [r["tokens"] for r in one]  # every row once, across the two processes
    assert [r["loss"] for r in both] == pytest.approx([r["loss"] for r in one], rel=1e-5)
    assert [r["grad_norm"] for r in both] == pytest.approx([r["grad_norm"] for r in one], rel=1e-4)
    assert sorted(p.name for p in ckpts.iterdir()) == ["step00001", "step00002", "step00004"]  # one set
    assert sorted(p.name for p in ckpts.glob("*/trainer_state*.pt")) == [
        "trainer_state.pt", "trainer_state_rank0.pt", "trainer_state_rank1.pt"]  # the newest only, RNG per rank
    assert json.loads((ckpts / "step00004/meta.json").read_text())["world_size"] == 2



def start_without_agent(cmd, variables):
    """Two processes of one run as srun or mpirun start them: no torchrun agent, each told its place by
    `variables(rank)`; (returncode, output) of each, or a failure when one waits past 240 s (the process group's
    own timeout is 30 minutes)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE")}
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**env, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                                   **variables(rank)})
             for rank in (0, 1)]
    try:
        return [(p, p.communicate(timeout=240)[0]) for p in procs]
    finally:
        for p in procs:
            p.kill()


def torchrun_variables(rank):
    return {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"}


def test_a_refused_run_stops_every_process_without_a_launcher_agent(tmp_path, tiny_model_dir):
    """The main process is refused the run folder's lock: both processes leave at once with the message, none
    waits for the process group's timeout, and nothing in the folder is touched."""
    import fcntl

    from rsft.rundir import TRAIN_LOCK

    out = tmp_path / "run"
    out.mkdir()
    cmd = [sys.executable, "train.py", str(ROOT / "recipes/quickstart.yaml"), *overrides(tiny_model_dir, out, 1)]
    with open(out / TRAIN_LOCK, "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another train.py, still training into the folder
        ended = start_without_agent(cmd, torchrun_variables)
    for p, log in ended:
        assert p.returncode != 0 and f"another train.py is writing {out} now" in log, log[-3000:]
        assert "Traceback" not in log, log[-3000:]
    assert sorted(x.name for x in out.iterdir()) == [TRAIN_LOCK]


def test_mpirun_processes_on_cpu_share_one_lock_and_train_one_run(tmp_path, tiny_model_dir):
    """Started as mpirun starts them (Open MPI's OMPI_COMM_WORLD_* variables, no RANK): accelerate tells each its
    rank, so only the main process takes the lock (before, each read RANK as 0, the second was refused and the
    first waited for it) and the two train one run: 4 steps, one set of checkpoints."""
    out = tmp_path / "run"
    cmd = [sys.executable, "train.py", str(ROOT / "recipes/quickstart.yaml"), *overrides(tiny_model_dir, out, 1)]
    ended = start_without_agent(cmd, lambda rank: {
        "OMPI_COMM_WORLD_RANK": str(rank), "OMPI_COMM_WORLD_LOCAL_RANK": str(rank), "OMPI_COMM_WORLD_SIZE": "2",
        "OMPI_COMM_WORLD_LOCAL_SIZE": "2"})
    for p, log in ended:
        assert p.returncode == 0, log[-3000:]
    assert [r["step"] for r in metrics(out)] == [1, 2, 3, 4]
    assert sorted(x.name for x in (out / "checkpoints").iterdir()) == ["step00001", "step00002", "step00004"]


@pytest.mark.gpu
def test_fsdp_full_finetuning_trains_as_one_process_saves_full_weights_and_resumes(tmp_path, tiny_model_dir):
    """configs/accelerate/fsdp.yaml on every GPU present (1 or 2): the losses of one plain process, a checkpoint that
    loads with transformers alone, and an exact resume after kill -9 (optimizer shards and RNG state per rank)."""
    import torch
    from transformers import AutoModelForCausalLM

    n = min(torch.cuda.device_count(), 2)
    recipe = str(ROOT / "recipes/quickstart.yaml")
    full = ["model.finetune=full", "model.dtype=float32", "train.learning_rate=1e-4"]
    assert train.main([recipe, *overrides(tiny_model_dir, tmp_path / "one", 2), *full]) == 0
    fsdp, ckpts = tmp_path / "fsdp", tmp_path / "fsdp/checkpoints"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", "configs/accelerate/fsdp.yaml",
           "--num_processes", str(n), "train.py", recipe, *overrides(tiny_model_dir, fsdp, 2 // n), *full]
    with (tmp_path / "killed.log").open("w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        while proc.poll() is None and not (ckpts / "step00002").exists():
            time.sleep(0.01)
        kill_tree(proc.pid)
        proc.wait()
    assert not (ckpts / "step00004").exists(), (tmp_path / "killed.log").read_text()[-3000:]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0 and "resuming from" in res.stdout, res.stdout[-3000:] + res.stderr[-3000:]
    one, sharded = metrics(tmp_path / "one"), metrics(fsdp)
    assert [r["step"] for r in sharded] == [1, 2, 3, 4]
    assert [r["loss"] for r in sharded] == pytest.approx([r["loss"] for r in one], rel=1e-4)
    saved = AutoModelForCausalLM.from_pretrained(ckpts / "step00004")
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert saved.state_dict().keys() == base.state_dict().keys()
    assert not torch.equal(saved.model.layers[0].mlp.up_proj.weight, base.model.layers[0].mlp.up_proj.weight)
    assert sorted(p.name for p in (ckpts / "step00004").glob("trainer_state_rank*.pt")) == [
        f"trainer_state_rank{r}.pt" for r in range(n)]
