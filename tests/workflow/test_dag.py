"""The DAG's shape: lint, dry runs of the tiny default and of the paper grid, config rejection."""

from __future__ import annotations

import pytest
import yaml

from rasa import study
from rasa.runs import run_id

from snake import ROOT, job_counts, snakemake


def test_lint_is_clean():
    proc = snakemake("--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_tiny_default_dry_run_lists_every_stage(repo_copy):
    counts = job_counts(snakemake("-n", "all", cwd=repo_copy).stdout)
    tiny = yaml.safe_load((ROOT / "configs/config.yaml").read_text())
    assert counts["train"] == len(study.all_runs(tiny)) == 14
    for rule in ("build_tiny_model", "sample_data", "humanevalplus_generate", "humanevalplus",
                 "math_generate", "math", "forgetting", "recon", "mechanism",
                 "report_table1", "report_table2", "report_figure2", "report_figure7",
                 "report_mechanism", "metrics_csv"):
        assert counts.get(rule, 0) > 0, (rule, counts)


def test_paper_grid_has_every_training_run_exactly_once():
    paper = yaml.safe_load((ROOT / "configs/paper.yaml").read_text())
    runs = [run_id(s) for s in study.all_runs(paper)]
    assert len(runs) == len(set(runs)) == 72  # the paper's 72 runs (Tables 1-2, Figures 6-7)
    needed = {run_id(s) for t in ("table1", "table2", "figure6", "figure7")
              for s in study.target_runs(paper, t)}
    assert needed == set(runs)
    counts = job_counts(snakemake("-n", "all", "--configfile", "configs/paper.yaml").stdout)
    assert counts["train"] == 72
    assert counts["download_model"] == 4


def test_one_table_needs_only_its_jobs():
    out = snakemake("-n", "results/tables/table1.md", "--configfile", "configs/paper.yaml").stdout
    counts = job_counts(out)
    assert counts["train"] == 20  # 2 models × (VeRA + 3 ranks × LoRA, MoRA, RaSA)
    assert "math" not in counts and "math_generate" not in counts and "forgetting" not in counts
    assert "__math__" not in out


def _bad_config(tmp_path, edit):
    config = yaml.safe_load((ROOT / "configs/config.yaml").read_text())
    edit(config)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    return snakemake("-n", "all", "--configfile", str(path), check=False)


def test_unknown_method_is_rejected_naming_the_field(tmp_path):
    proc = _bad_config(tmp_path, lambda c: c["study"]["table1"]["methods"].append("dora"))
    assert proc.returncode != 0
    assert "dora" in proc.stderr + proc.stdout
    assert "methods" in proc.stderr + proc.stdout


def test_k_above_r_is_rejected_naming_the_field(tmp_path):
    proc = _bad_config(tmp_path, lambda c: c["study"]["table1"].update(k=16))
    assert proc.returncode != 0
    assert "study.table1.k" in proc.stderr + proc.stdout


def test_zero_fraction_is_rejected_naming_the_field(tmp_path):
    proc = _bad_config(tmp_path, lambda c: c["study"]["figure7"].update(fractions=[0, 0.5, 1.0]))
    assert proc.returncode != 0
    assert "fractions" in proc.stderr + proc.stdout


def _profile_jobs(configfile: str) -> list[str]:
    out = snakemake("-n", "-p", "--profile", "slurm", "all", "--configfile", configfile).stdout
    return out.split("\nrule ")[1:]


@pytest.fixture(scope="module")
def paper_jobs() -> list[str]:
    """The paper's jobs as the Slurm profile would submit them (one dry run for several tests)."""
    return _profile_jobs("configs/paper.yaml")


def _resources(job: str) -> dict[str, str]:
    line = next(line for line in job.splitlines() if "resources:" in line)
    return dict(item.split("=", 1) for item in line.split("resources:")[1].strip().split(", "))


def test_slurm_profile_asks_8_nodes_for_70b_and_mixtral_and_one_node_of_8_gpus_otherwise(paper_jobs):
    trains = [j for j in paper_jobs if j.startswith("train:")]
    assert len(trains) == 72
    for job in trains:
        res = _resources(job)
        if "llama-3.1-70b__" in job or "mixtral-8x7b__" in job:
            assert res["nodes"] == "8" and res["gres"] == "gpu:8", res
            assert res["runtime"] == "2880", res  # no Time in the paper: the partition's limit
        else:
            assert res["nodes"] == "1" and res["gpu"] == "8", res
        assert res["mpi"] == "srun" and res["tasks_per_node"] == "8", res  # one task per GPU
        assert "--signal=TERM@600" in res["slurm_extra"] and "B:" not in res["slurm_extra"]  # reaches training
        if "llama-3.1-8b__code__lora-r8__f100__e8" in job:
            assert res["runtime"] == str(round(9.6 * 60 * 1.5)), res  # Table 1's 9.6 h × margin


def test_paper_evaluations_run_in_bfloat16_on_enough_gpus_with_one_cpu_per_scoring_worker(paper_jobs):
    gpus = {"llama-3.1-8b": "1", "mistral-7b-v0.3": "1", "mixtral-8x7b": "4", "llama-3.1-70b": "8"}
    seen = set()
    for job in paper_jobs:
        rule = job.split(":", 1)[0]
        if rule not in ("humanevalplus_generate", "math_generate", "forgetting",
                        "humanevalplus", "math"):
            continue
        res, command = _resources(job), job.split("python -m ", 1)[1]
        model = next(m for m in gpus if f"{m}__" in job)
        seen.add((rule, model))
        if rule in ("humanevalplus", "math"):  # scoring: CPUs only, one worker per CPU
            assert res.get("gpu", "0") == "0", (rule, model, res)
            assert f"--workers {res['cpus_per_task']} " in command
            continue
        assert res["gpu"] == gpus[model], (rule, model, res)
        assert "--dtype bfloat16" in command
        assert ("--device-map auto" in command) == (gpus[model] != "1"), command
    for rule in ("math_generate", "math"):
        assert (rule, "llama-3.1-70b") in seen and (rule, "mixtral-8x7b") in seen


@pytest.mark.slow
def test_tiny_study_asks_a_few_gb_and_no_gpu_of_slurm():
    for job in _profile_jobs("configs/config.yaml"):
        res = _resources(job)
        if res.get("mem_mb", "<TBD>") != "<TBD>":
            assert int(res["mem_mb"]) <= 4 * 1024, (job.split(":")[0], res)
        assert res.get("gpu", "0") == "0" and res.get("nodes", "1") == "1", res
