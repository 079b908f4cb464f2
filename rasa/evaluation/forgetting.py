"""Forgetting: HellaSwag, WinoGrande and ARC-Challenge through lm-eval's Python API.

The model (base, base + adapter, or a full fine-tune) is loaded once with
:func:`rasa.modeling.load_model` and handed to lm-eval's ``HFLM`` as an object, so RaSA and MoRA
adapters work unmerged, exactly as in training. ``--trained`` omitted = the base model = epoch 0.

Task sources (one code path, a name switch):

``--source local`` (the default when ``--data-dir`` is given; the workflow at every scale)
    the task YAMLs in ``rasa/evaluation/tasks/`` (mirrors of lm-eval's built-in tasks over
    ``dataset_path: json``); their ``data_files`` point at ``--data-dir``/{hellaswag,winogrande,
    arc_challenge}.jsonl: the fixtures in the tiny default, the hub datasets at pinned revisions
    (``python -m rasa.hub forgetting``, on the submit host) on a cluster, whose nodes stay offline.
``--source hub`` (the default without ``--data-dir``; a machine online)
    lm-eval's built-in ``hellaswag``, ``winogrande`` (winogrande_xl), ``arc_challenge``.

Choice (the paper states neither shots nor metric; see the README): 0-shot (lm-eval's default
for these tasks) and ``acc_norm`` where lm-eval reports it (HellaSwag, ARC-Challenge: length-
normalised log-likelihood, the metric the Open LLM Leaderboard and most papers quote), ``acc``
for WinoGrande (the only metric lm-eval has for it). Both are flags (``--num-fewshot``,
``--metric TASK=METRIC``).

Rows (scorer ``lm-eval``, values in percent): one per task (benchmark = task, metric = the
chosen metric), plus ``benchmark=forgetting_avg, metric=accuracy``: the mean of the three.

CLI::

    python -m rasa.evaluation.forgetting --model DIR [--trained DIR] --data-dir DIR --run-id ID \\
        --epoch E --num-fewshot 0 --batch-size 8 [--dtype bfloat16] [--device-map auto] \\
        [--limit N] --out metrics.csv --details docs.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

TASK_DIR = Path(__file__).with_name("tasks")
SCORER = "lm-eval"
AVERAGE = "forgetting_avg"

# name -> (local task, hub task, local file, split key in the local YAML)
TASKS = {
    "hellaswag": ("rasa_hellaswag", "hellaswag", "hellaswag.jsonl", "validation"),
    "winogrande": ("rasa_winogrande", "winogrande", "winogrande.jsonl", "validation"),
    "arc_challenge": ("rasa_arc_challenge", "arc_challenge", "arc_challenge.jsonl", "test"),
}
DEFAULT_METRICS = {"hellaswag": "acc_norm", "winogrande": "acc", "arc_challenge": "acc_norm"}


def task_specs(source: str, data_dir: str | Path | None, names=tuple(TASKS)) -> list:
    """lm-eval task specs: names (hub), or the local YAMLs as inline configs with their data
    files pointed at ``data_dir`` (lm-eval treats a dict spec as a complete inline config)."""
    from lm_eval.tasks._yaml_loader import load_yaml

    specs = []
    for name in names:
        local, hub, filename, split = TASKS[name]
        if source == "hub":
            specs.append(hub)
            continue
        if data_dir is None:
            raise ValueError("--data-dir is required with --source local")
        path = (Path(data_dir) / filename).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"{path} (needed by task {local})")
        cfg = load_yaml(TASK_DIR / f"{local}.yaml", resolve_func=True)
        cfg["dataset_kwargs"] = {"data_files": {split: str(path)}}
        specs.append(cfg)
    return specs


def check_fewshot(source: str, num_fewshot: int) -> None:
    """The local task files hold only the split they score: shots would come from the scored
    documents (lm-eval falls back to them), so few-shot needs the hub tasks' train splits."""
    if source == "local" and num_fewshot > 0:
        raise ValueError(
            f"benchmarks.forgetting.num_fewshot={num_fewshot}: the local forgetting tasks have no "
            "training split, so few-shot examples would be drawn from the documents being scored. "
            "Use num_fewshot: 0 with a data_dir, or data_dir: null (lm-eval's hub tasks, whose shots "
            "come from their train splits).")


def evaluate(model, tokenizer, source: str = "local", data_dir=None, num_fewshot: int = 0,
             batch_size: int = 8, limit: int | None = None, metrics: dict | None = None,
             names=tuple(TASKS)) -> tuple[dict[str, float], list[dict]]:
    """``({task: percent}, per-document rows)`` for an already-loaded model and tokenizer."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    check_fewshot(source, num_fewshot)
    metrics = {**DEFAULT_METRICS, **(metrics or {})}
    tokenizer.padding_side = "left"
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    # Indexing lm-eval's thousands of built-in tasks takes seconds; the local tasks need none of them.
    manager = (TaskManager(include_path=str(TASK_DIR), include_defaults=False) if source == "local"
               else TaskManager())
    out = simple_evaluate(model=lm, tasks=task_specs(source, data_dir, names),
                          num_fewshot=num_fewshot, limit=limit, task_manager=manager,
                          log_samples=True, bootstrap_iters=0, random_seed=0,
                          numpy_random_seed=1234, torch_random_seed=1234, fewshot_random_seed=1234)
    scores, docs = {}, []
    for name in names:
        task = TASKS[name][0] if source == "local" else TASKS[name][1]
        result = out["results"][task]
        key = f"{metrics[name]},none"
        if key not in result:
            raise KeyError(f"lm-eval reported no {metrics[name]!r} for {task}: {sorted(result)}")
        scores[name] = 100.0 * float(result[key])
        for sample in out.get("samples", {}).get(task, []):
            docs.append({"task": name, "doc_id": sample["doc_id"],
                         "target": sample.get("target"),
                         **{m: sample[m] for m in ("acc", "acc_norm") if m in sample}})
    return scores, docs


def _parse_metrics(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, _, metric = pair.partition("=")
        if name not in TASKS or metric not in ("acc", "acc_norm"):
            raise argparse.ArgumentTypeError(f"--metric expects TASK=acc|acc_norm, got {pair!r}")
        out[name] = metric
    return out


def main(argv: list[str] | None = None) -> int:
    from rasa.evaluation.generation import _device
    from rasa.evaluation.io import metric_row, write_csv_atomic
    from rasa.modeling import load_model, load_tokenizer

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--trained", default=None, help="adapter or full fine-tune; omit for epoch 0")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--device", default="auto")
    p.add_argument("--device-map", default=None,
                   help="spread the model over the visible GPUs (`auto`); overrides --device")
    p.add_argument("--source", default="auto", choices=["auto", "local", "hub"],
                   help="auto: local when --data-dir is given, else hub")
    p.add_argument("--data-dir", default=None, help="folder with the local JSONL files")
    p.add_argument("--run-id", required=True)
    p.add_argument("--epoch", required=True, type=int)
    p.add_argument("--num-fewshot", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--limit", type=int, default=None, help="first N documents per task")
    p.add_argument("--metric", action="append", default=[], metavar="TASK=METRIC",
                   help="override the metric of a task, e.g. hellaswag=acc")
    p.add_argument("--out", required=True)
    p.add_argument("--details", required=True)
    args = p.parse_args(argv)

    metrics = {**DEFAULT_METRICS, **_parse_metrics(args.metric)}
    if args.source == "auto":
        args.source = "local" if args.data_dir else "hub"
    check_fewshot(args.source, args.num_fewshot)
    model = load_model(args.model, args.trained, dtype=args.dtype, device_map=args.device_map)
    if not args.device_map:
        model = model.to(_device(args.device))
    scores, docs = evaluate(model, load_tokenizer(args.model), args.source, args.data_dir,
                            args.num_fewshot, args.batch_size, args.limit, metrics)
    rows = [metric_row(args.run_id, args.epoch, name, metrics[name], SCORER, value)
            for name, value in scores.items()]
    rows.append(metric_row(args.run_id, args.epoch, AVERAGE, "accuracy", SCORER,
                           sum(scores.values()) / len(scores)))
    for doc in docs:
        doc.update(run_id=args.run_id, epoch=args.epoch, num_fewshot=args.num_fewshot,
                   source=args.source)
    write_csv_atomic(args.details, docs, first=["run_id", "epoch", "task", "doc_id"])
    write_csv_atomic(args.out, rows)
    print("forgetting: " + ", ".join(f"{r['benchmark']} {r['metric']} {r['value']:.1f}" for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
