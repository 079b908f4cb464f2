"""The tiny study through a real Slurm (sbatch), as `snakemake --profile slurm all` on a cluster.

Needs a running Slurm controller (CI starts one with .ci/start-slurm.sh); skipped without one.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from snake import snakemake


def slurm_is_up() -> bool:
    if not shutil.which("sinfo"):
        return False
    return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=30).returncode == 0


def default_partition() -> str:
    names = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True,
                           timeout=30).stdout.split()
    return next((n for n in names if n.endswith("*")), names[0]).rstrip("*")


@pytest.mark.slow
@pytest.mark.skipif(not slurm_is_up(), reason="no Slurm controller (CI starts one: .ci/start-slurm.sh)")
def test_tiny_study_through_slurm_with_a_two_process_training_job(repo_copy):
    # No resource overrides: every job's request follows from the config (rasa.resources).
    overlay = repo_copy / "tests" / "workflow" / "two_processes.yaml"
    proc = snakemake("--profile", "slurm", "all", "--configfile", "configs/config.yaml", str(overlay),
                     "--default-resources", f"slurm_partition={default_partition()}",
                     cwd=repo_copy, timeout=3600)
    log = proc.stdout + proc.stderr
    assert "submitted with SLURM jobid" in log
    assert "localrule sample_data" in log and "localrule report_table1" in log  # on the submit host
    assert (repo_copy / "results" / "tables" / "table1.md").is_file()
    manifests = list((repo_copy / "work" / "runs").glob("tiny-llama__*/manifest.json"))
    assert manifests
    for path in manifests:
        manifest = json.loads(path.read_text())
        assert manifest["hardware"]["world_size"] == 2, path  # two processes, one per "GPU"
        assert manifest["settings"]["micro_batch"] * 2 * 1 <= manifest["settings"]["global_batch"]
