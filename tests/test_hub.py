"""Hub access from the submit host only: the token stays out of the jobs' environment."""

from __future__ import annotations

import subprocess

import pytest

from rasa import hub


def test_the_token_leaves_the_environment_jobs_inherit_and_jobs_go_offline():
    environ = {"HF_TOKEN": "hf_secret", "PATH": "/bin"}
    token = hub.isolate_hub_access(environ, "/shared/hf", offline=True)
    assert token == "hf_secret" and "HF_TOKEN" not in environ
    assert environ["HF_HOME"] == "/shared/hf"
    assert environ["HF_HUB_OFFLINE"] == environ["HF_DATASETS_OFFLINE"] == "1"


def test_the_submit_host_stays_online_with_the_default_cache():
    environ = {"PATH": "/bin"}
    assert hub.isolate_hub_access(environ, None, offline=False) is None
    assert environ == {"PATH": "/bin"}


def test_a_download_without_its_token_fails_before_downloading_and_says_so_in_its_log(tmp_path):
    log = tmp_path / "download.log"
    with pytest.raises(subprocess.CalledProcessError):
        hub.fetch_with_token(["model", "--repo", "meta-llama/Llama-3.1-8B", "--revision", "main",
                              "--gated", "--out", tmp_path / "never"], str(log), token=None)
    assert "set HF_TOKEN" in log.read_text()
    assert not (tmp_path / "never").exists()


def test_forgetting_revisions_name_every_task():
    assert hub._revision_pairs(["hellaswag=abc", "winogrande=main"]) == {
        "hellaswag": "abc", "winogrande": "main"}
    with pytest.raises(SystemExit, match="TASK=REVISION"):
        hub._revision_pairs(["mmlu=main"])
    with pytest.raises(SystemExit, match="arc_challenge"):
        hub.fetch_forgetting({"hellaswag": "main", "winogrande": "main"}, "/nonexistent")
