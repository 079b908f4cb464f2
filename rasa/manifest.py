"""The run manifest: everything needed to say what a training run was and what it cost."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

import torch
import torch.distributed as dist

from rasa.io import write_text_atomic

PACKAGES = ("torch", "transformers", "peft", "accelerate", "datasets", "deepspeed", "lion-pytorch",
            "rasa-peft")


def git_commit(cwd: str | Path = ".") -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def package_versions() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def hardware() -> dict:
    info = {"platform": platform.platform(), "cpus": os.cpu_count(),
            "world_size": int(os.environ.get("WORLD_SIZE", 1)),
            "nodes": int(os.environ.get("SLURM_NNODES", 1))}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpus_per_node"] = torch.cuda.device_count()
    return info


def rank_hosts() -> list[str]:
    """The host of every rank, in rank order (one entry outside torch.distributed)."""
    host = socket.gethostname()
    if not (dist.is_available() and dist.is_initialized()):
        return [host]
    hosts = [None] * dist.get_world_size()
    dist.all_gather_object(hosts, host)
    return hosts


def peak_memory_gb() -> float:
    """Peak accelerator memory if on GPU, else the process's peak resident set size."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def model_source(model_path: str | Path) -> dict | None:
    """The base model's ``source.json`` (hub repo and revision, or GGUF file and sha256), if any."""
    record = Path(model_path) / "source.json"
    return json.loads(record.read_text()) if record.is_file() else None


def write_manifest(path: str | Path, content: dict) -> None:
    write_text_atomic(path, json.dumps(content, indent=1, sort_keys=True, default=str) + "\n")
