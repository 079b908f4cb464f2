"""A 2-node training job of the tiny study through a real Slurm of several nodes, as on a cluster.

Needs a Slurm with at least 2 nodes (CI starts one: .ci/start-slurm.sh); skipped without. That
script's nodes live in network namespaces with no route out (it checks so): nothing can download
there, so the job's success shows that training needs no network beyond its own nodes.

Dropout is 0 in this run: each process draws its own dropout masks, so only a dropout-free run
can equal a run of another world size.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from snake import snakemake

RUN = "tiny-llama__math__rasa-r8-k1__f100__e2"
OVERLAY = """\
models:
  tiny-llama:
    nodes: 2
training:
  dropout: 0.0
"""


def slurm_nodes() -> int:
    try:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.SubprocessError):
        return 0
    return len(set(out.stdout.split())) if out.returncode == 0 else 0


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(slurm_nodes() < 2, reason="no Slurm with 2 nodes (CI starts one: .ci/start-slurm.sh)"),
]


def _snakemake_args(repo):
    (repo / "two_nodes.yaml").write_text(OVERLAY)
    return ["--profile", "slurm", f"work/runs/{RUN}/manifest.json",
            "--configfile", "configs/config.yaml", "two_nodes.yaml",
            "--default-resources", "mem_mb=1500", "--set-resources", "train:mem_mb=3000"]


def _adapters(weights_dir, epoch):
    return load_file(weights_dir / f"epoch-{epoch}" / "adapter_model.safetensors")


def _train_job_id(repo) -> str | None:
    """The running Slurm job of this repository copy's training rule."""
    out = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i|%Z|%k"], capture_output=True,
                         text=True, check=True).stdout
    for line in out.splitlines():
        job, workdir, comment = line.split("|", 2)
        if workdir == str(repo) and "train" in comment:
            return job
    return None


def test_two_node_training_equals_one_process_and_survives_sigterm(repo_copy):
    # 1. Uninterrupted: both nodes run a rank.
    snakemake(*_snakemake_args(repo_copy), cwd=repo_copy, timeout=1200)
    run_dir = repo_copy / "work" / "runs" / RUN
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["hardware"]["world_size"] == 2
    assert sorted(manifest["hosts"]) == sorted(set(manifest["hosts"])) and len(manifest["hosts"]) == 2
    assert manifest["settings"]["nodes"] == 2 and manifest["resumes"] == []
    uninterrupted = {e: _adapters(run_dir / "weights", e) for e in (1, 2)}

    # 2. The same run in one process, here: equal to 1e-5.
    settings = dict(manifest["settings"], nodes=1)
    single = repo_copy / "single"
    subprocess.run([sys.executable, "-m", "rasa.train", "--settings", json.dumps(settings),
                    "--data", manifest["data"]["path"], "--checkpoints", str(single / "ckpt"),
                    "--out", str(single)], cwd=repo_copy, check=True, capture_output=True, timeout=600)
    for epoch in (1, 2):
        one = _adapters(single / "weights", epoch)
        assert one.keys() == uninterrupted[epoch].keys()
        for key in one:
            torch.testing.assert_close(uninterrupted[epoch][key], one[key], rtol=0, atol=1e-5)

    # 3. Again on 2 nodes, with a Slurm-delivered SIGTERM once training has begun: the job saves and
    #    fails, the executor's retry resumes, and the result is bitwise the uninterrupted one.
    shutil.rmtree(run_dir)
    log = repo_copy / "work" / "logs" / "train" / f"{RUN}.log"
    log.unlink()
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", *_snakemake_args(repo_copy)],
                            cwd=repo_copy, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline, job = time.monotonic() + 600, None
    while time.monotonic() < deadline and proc.poll() is None:
        if log.is_file() and "{'loss'" in log.read_text():
            job = _train_job_id(repo_copy)
            break
        time.sleep(0.2)
    assert job, "the training job never logged a step"
    subprocess.run(["scancel", "--signal=TERM", job], check=True)
    output, _ = proc.communicate(timeout=1200)
    assert proc.returncode == 0, output[-4000:]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    [resume] = manifest["resumes"]
    assert resume["saved_by_world_size"] == 2 and resume["world_size"] == 2
    assert resume["slurm_job_id"] != job and 0 < resume["step"] < manifest["optimizer_steps"]
    assert sorted(resume["hosts"]) == sorted(manifest["hosts"]) and len(set(resume["hosts"])) == 2
    for epoch in (1, 2):
        resumed = _adapters(run_dir / "weights", epoch)
        for key in resumed:
            assert torch.equal(resumed[key], uninterrupted[epoch][key]), key
