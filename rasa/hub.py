"""Fetch what the cluster study needs from the hub, at pinned revisions (the data rules).

- ``model``: a model snapshot (weights, config, tokenizer) into a folder.
- ``dataset``: a training set (e.g. ``meta-math/MetaMathQA``) saved with ``save_to_disk``.
- ``benchmark``: a test set written as JSON Lines in the schema the evaluation reads:
  ``humanevalplus`` (evalplus's HumanEval+ release, pinned version) or ``math`` (the 5,000
  MATH test problems, the seven subject configs of ``EleutherAI/hendrycks_math``).
- ``forgetting``: the datasets of lm-eval's ``hellaswag``, ``winogrande`` (``winogrande_xl``) and
  ``arc_challenge`` tasks, the splits those tasks score, as ``<task>.jsonl`` in one folder: the
  files ``rasa.evaluation.forgetting --data-dir`` reads (the same task definitions as lm-eval's),
  so that compute nodes never reach the hub.

These run on the submit host (the workflow's download rules are local); compute jobs run offline.

The token comes from the environment (``HF_TOKEN``). A gated model without a token fails at
once with a message saying what to set, before any download starts. Every output records its
source (repo and revision) beside it.

CLI::

    python -m rasa.hub model --repo meta-llama/Llama-3.1-8B --revision <sha> [--gated] --out DIR
    python -m rasa.hub dataset --repo meta-math/MetaMathQA --revision <sha> --out DIR
    python -m rasa.hub benchmark --name math --revision <sha> --out FILE.jsonl
    python -m rasa.hub forgetting --revisions hellaswag=<sha> winogrande=<sha> arc_challenge=<sha> --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from rasa.io import write_jsonl_atomic, write_text_atomic

MATH_SUBJECTS = ("algebra", "counting_and_probability", "geometry", "intermediate_algebra",
                 "number_theory", "prealgebra", "precalculus")


#: What a compute job sees instead of the hub: offline switches for every library we use.
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def isolate_hub_access(environ, hf_home: str | None, offline: bool) -> str | None:
    """Prepare a workflow process's environment (which Slurm jobs inherit: ``--export=ALL``):
    take the token out (returned, for :func:`fetch_with_token` on the submit host), point
    ``HF_HOME`` at the shared cache when one is configured, and in a compute job switch the hub
    off (``offline``)."""
    token = environ.pop("HF_TOKEN", None)
    if hf_home:
        environ["HF_HOME"] = hf_home
    if offline:
        environ.update(OFFLINE)
    return token


def fetch_with_token(args: list, log: str, token: str | None) -> None:
    """``python -m rasa.hub ARGS`` with the token in its environment alone, output to ``log``."""
    env = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"}
    if token:
        env["HF_TOKEN"] = token
    with open(log, "w") as fh:
        subprocess.run([sys.executable, "-m", "rasa.hub", *map(str, args)], env=env, stdout=fh,
                       stderr=subprocess.STDOUT, check=True)


def require_token(repo: str) -> str:
    token = os.environ.get("HF_TOKEN")
    if not token:
        raise SystemExit(
            f"{repo} is gated: set HF_TOKEN in the environment of the Snakemake process (a token "
            f"of an account that accepted the model's licence), e.g. `export HF_TOKEN=hf_...`."
        )
    return token


def record_source(path: Path, **source) -> None:
    target = path / "source.json" if path.is_dir() else path.with_name(path.name + ".source.json")
    write_text_atomic(target, json.dumps(source, sort_keys=True) + "\n")


def fetch_model(repo: str, revision: str, out: str, gated: bool) -> None:
    from huggingface_hub import snapshot_download

    token = require_token(repo) if gated else os.environ.get("HF_TOKEN")
    snapshot_download(repo_id=repo, revision=revision, local_dir=out, token=token,
                      allow_patterns=["*.json", "*.safetensors", "tokenizer*", "*.model"])
    record_source(Path(out), repo=repo, revision=revision)


def fetch_dataset(repo: str, revision: str, out: str) -> None:
    import datasets

    datasets.load_dataset(repo, split="train", revision=revision).save_to_disk(out)
    record_source(Path(out), repo=repo, revision=revision)


def fetch_benchmark(name: str, revision: str, out: str) -> None:
    if name == "humanevalplus":
        from evalplus.data import get_human_eval_plus

        problems = get_human_eval_plus(version=revision)
        write_jsonl_atomic(out, problems.values())
        record_source(Path(out), repo="evalplus/HumanEvalPlus", revision=revision)
    elif name == "math":
        import datasets

        rows = []
        for subject in MATH_SUBJECTS:
            split = datasets.load_dataset("EleutherAI/hendrycks_math", subject, split="test",
                                          revision=revision)
            rows += [{k: r[k] for k in ("problem", "solution", "type", "level")} for r in split]
        if len(rows) != 5000:
            raise SystemExit(f"MATH test: expected 5,000 problems, got {len(rows)}")
        write_jsonl_atomic(out, rows)
        record_source(Path(out), repo="EleutherAI/hendrycks_math", revision=revision)
    else:
        raise SystemExit(f"unknown benchmark {name!r}: humanevalplus or math")


#: task -> (hub dataset, config, split): what lm-eval 0.4.13's task of that name loads and scores.
FORGETTING_DATASETS = {
    "hellaswag": ("Rowan/hellaswag", None, "validation"),
    "winogrande": ("allenai/winogrande", "winogrande_xl", "validation"),
    "arc_challenge": ("allenai/ai2_arc", "ARC-Challenge", "test"),
}


def fetch_forgetting(revisions: dict[str, str], out: str) -> None:
    import datasets
    from huggingface_hub import HfApi

    missing = sorted(set(FORGETTING_DATASETS) - set(revisions))
    if missing:
        raise SystemExit(f"--revisions: no revision for {missing} (give TASK=REVISION for each)")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for task, (repo, name, split) in FORGETTING_DATASETS.items():
        rows = datasets.load_dataset(repo, name, split=split, revision=revisions[task])
        write_jsonl_atomic(folder / f"{task}.jsonl", rows)
    api = HfApi()  # the commit each revision resolved to, so that `main` is pinned after the fact
    record_source(folder, **{task: {"repo": repo, "config": name, "split": split,
                                    "revision": revisions[task],
                                    "commit": api.dataset_info(repo, revision=revisions[task]).sha}
                             for task, (repo, name, split) in FORGETTING_DATASETS.items()})


def _revision_pairs(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        task, sep, revision = pair.partition("=")
        if not sep or task not in FORGETTING_DATASETS or not revision:
            raise SystemExit(f"--revisions: expected TASK=REVISION with TASK in "
                             f"{sorted(FORGETTING_DATASETS)}, got {pair!r}")
        out[task] = revision
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    model = sub.add_parser("model")
    model.add_argument("--repo", required=True)
    model.add_argument("--gated", action="store_true")
    dataset = sub.add_parser("dataset")
    dataset.add_argument("--repo", required=True)
    bench = sub.add_parser("benchmark")
    bench.add_argument("--name", required=True)
    for p in (model, dataset, bench):
        p.add_argument("--revision", required=True)
    forgetting = sub.add_parser("forgetting")
    forgetting.add_argument("--revisions", nargs="+", required=True, metavar="TASK=REVISION")
    for p in (model, dataset, bench, forgetting):
        p.add_argument("--out", required=True)
    a = parser.parse_args(argv)
    if a.kind == "model":
        fetch_model(a.repo, a.revision, a.out, a.gated)
    elif a.kind == "dataset":
        fetch_dataset(a.repo, a.revision, a.out)
    elif a.kind == "forgetting":
        fetch_forgetting(_revision_pairs(a.revisions), a.out)
    else:
        fetch_benchmark(a.name, a.revision, a.out)


if __name__ == "__main__":
    main()
