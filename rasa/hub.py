"""Fetch a model from the Hugging Face hub at a pinned revision (the cluster's data rule).

The token comes from the environment (``HF_TOKEN``). A gated model without a token fails at
once with a message saying what to set, before any download starts.

CLI: ``python -m rasa.hub --repo meta-llama/Llama-3.1-8B --revision <sha> [--gated] --out DIR``
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def require_token(repo: str) -> str:
    token = os.environ.get("HF_TOKEN")
    if not token:
        raise SystemExit(
            f"{repo} is gated: set HF_TOKEN in the environment of the Snakemake process (a token "
            f"of an account that accepted the model's licence), e.g. `export HF_TOKEN=hf_...`."
        )
    return token


def download(repo: str, revision: str, out: str, gated: bool) -> Path:
    from huggingface_hub import snapshot_download

    token = require_token(repo) if gated else os.environ.get("HF_TOKEN")
    path = snapshot_download(repo_id=repo, revision=revision, local_dir=out, token=token,
                             allow_patterns=["*.json", "*.safetensors", "tokenizer*", "*.model"])
    (Path(out) / "source.json").write_text(json.dumps({"repo": repo, "revision": revision}) + "\n")
    return Path(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", required=True)
    parser.add_argument("--revision", required=True)
    parser.add_argument("--gated", action="store_true")
    parser.add_argument("--out", required=True)
    a = parser.parse_args(argv)
    download(a.repo, a.revision, a.out, a.gated)


if __name__ == "__main__":
    main()
