"""The DAG's shape: lint, dry runs of the tiny default and of the paper grid, config rejection."""

from __future__ import annotations

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
    for rule in ("build_tiny_model", "sample_data", "humanevalplus", "math", "forgetting",
                 "forgetting_base", "recon", "mechanism", "report_table1", "report_table2",
                 "report_figure2", "report_figure7", "report_mechanism", "metrics_csv"):
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
    assert "math" not in counts and "forgetting" not in counts
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


def test_slurm_profile_asks_8_nodes_for_70b_and_mixtral_and_one_node_of_8_gpus_otherwise():
    out = snakemake("-n", "--profile", "slurm", "all", "--configfile", "configs/paper.yaml").stdout
    jobs = out.split("\nrule ")
    trains = [j for j in jobs if j.startswith("train:")]
    assert len(trains) == 72
    for job in trains:
        resources = next(line for line in job.splitlines() if "resources:" in line)
        if "llama-3.1-70b__" in job or "mixtral-8x7b__" in job:
            assert "nodes=8" in resources and "gres=gpu:8" in resources, resources
        else:
            assert "nodes=1" in resources and "gpu=8" in resources, resources
        assert "mpi=srun" in resources and "tasks_per_node=8" in resources, resources  # 1 task per GPU
        assert "--signal=TERM@600" in resources and "B:" not in resources  # reaches the training
