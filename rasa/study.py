"""The study grid: which runs and evaluations each table and figure needs, from the config.

One function answers each question (which runs, which evaluations, which epochs), so the
Snakemake rules, the collection of tidy results and the report agree by construction. Runs named
by several targets (e.g. LoRA r=8 on math, in Table 2 and Figures 4, 5 and 7) are one run.
"""

from __future__ import annotations

from rasa import method_registry
from rasa.runs import RunSpec, run_id

TABLES = ("table1", "table2")
GRID_TARGETS = ("table1", "table2", "figure6", "figure7")
DERIVED_TARGETS = ("figure4", "figure5")  # read the runs of other targets
FORGETTING = "forgetting"


def _rank(config: dict, method: str, r: int) -> int:
    if not method_registry.get(method).has_rank:
        return 0
    return config["methods"].get(method, {}).get("r", r)


def grid_runs(config: dict, target: str) -> list[RunSpec]:
    """Runs of a table or grid figure, in the paper's row order (method order of the config)."""
    entry = config["study"][target]
    specs = []
    for model in entry["models"]:
        for fraction in entry.get("fractions", [1.0]):
            for method in entry["methods"]:
                ranks = entry["ranks"] if method_registry.get(method).has_rank else [0]
                for r in dict.fromkeys(_rank(config, method, r) for r in ranks):
                    k = method_registry.get(method).k_for(r, entry.get("k"))
                    specs.append(RunSpec(model, entry["task"], method, r, k, fraction,
                                         entry["epochs"]))
    return list(dict.fromkeys(specs))


def target_runs(config: dict, target: str) -> list[RunSpec]:
    if target in GRID_TARGETS:
        return grid_runs(config, target)
    if target in DERIVED_TARGETS:
        entry = config["study"][target]
        return [s for t in entry["from"] for s in grid_runs(config, t) if s.method in entry["methods"]]
    if target == "recon":
        return [recon_run(config)]
    return []


def recon_run(config: dict) -> RunSpec:
    """The full fine-tuning run whose weight updates Figures 2–3 decompose (Table 2's FFT run)."""
    entry = config["study"]["recon"]
    table = config["study"]["table2"]
    return RunSpec(entry["model"], table["task"], "fft", 0, 0, 1.0, table["epochs"])


def all_runs(config: dict) -> list[RunSpec]:
    targets = [t for t in (*GRID_TARGETS, "recon") if t in config["study"]]
    return sorted({s for t in targets for s in target_runs(config, t)})


def target_evaluations(config: dict, target: str) -> list[tuple[str, int, str]]:
    """(run id, epoch, benchmark) triples a target needs; epoch 0 is the base model.

    Tables need every epoch (BEST and LAST), and with ``study.<table>.base: true`` each model's
    base model on the table's benchmark (its "Base model" row); Figure 5 every epoch and the base
    model; Figures 6 and 7 only the last epoch (their points are LAST accuracies).
    """
    out = []
    if target in TABLES and config["study"][target].get("base", False):
        bench = config["tasks"][config["study"][target]["task"]]["benchmark"]
        out += [(base_id(model), 0, bench) for model in config["study"][target]["models"]]
    for spec in target_runs(config, target):
        bench = config["tasks"][spec.task]["benchmark"]
        if target in TABLES:
            out += [(run_id(spec), e, bench) for e in range(1, spec.epochs + 1)]
        elif target == "figure5":
            out += [(run_id(spec), e, FORGETTING) for e in range(1, spec.epochs + 1)]
            out.append((base_id(spec.model), 0, FORGETTING))
        elif target in ("figure6", "figure7"):
            out.append((run_id(spec), spec.epochs, bench))
    return list(dict.fromkeys(out))


def all_evaluations(config: dict) -> list[tuple[str, int, str]]:
    targets = [t for t in (*GRID_TARGETS, *DERIVED_TARGETS) if t in config["study"]]
    return sorted({e for t in targets for e in target_evaluations(config, t)})


def base_id(model: str) -> str:
    """Run id of a base model's own evaluation (epoch 0: Figure 5, the tables' base rows)."""
    return f"{model}__base"


def _check_method_names(config: dict) -> None:
    """Every method the config names is registered (:mod:`rasa.method_registry`; the schema has no list)."""
    known = ", ".join(method_registry.names())
    fields = [("methods", name) for name in config["methods"]]
    fields += [(f"study.{target}.methods", name) for target, entry in config["study"].items()
               for name in entry.get("methods", [])]
    fields += [(f"models.{model}.micro_batch.{task}", name) for model, spec in config["models"].items()
               for task, per in (spec.get("micro_batch") or {}).items() if isinstance(per, dict)
               for name in per if name != "default"]
    for field, name in fields:
        if name not in method_registry.names():
            raise ValueError(f"{field}: unknown method {name!r}; known methods: {known} "
                             "(a new method is registered in rasa.method_registry)")


def base_model(run: str) -> str | None:
    """The model of a base model's run id (inverse of :func:`base_id`); None for any other id."""
    return run[: -len("__base")] if run.endswith("__base") else None


def check_config(config: dict) -> None:
    """What the JSON schema cannot express; each error names the field and the fix."""
    _check_method_names(config)
    models, tasks, methods = config["models"], config["tasks"], config["methods"]
    for target, entry in config["study"].items():
        where = f"study.{target}"
        for model in entry.get("models", [entry.get("model")] if "model" in entry else []):
            if model not in models:
                raise ValueError(f"{where}.models: unknown model {model!r}; define it under models: "
                                 f"(known: {sorted(models)})")
        if "task" in entry and entry["task"] not in tasks:
            raise ValueError(f"{where}.task: unknown task {entry['task']!r}; known: {sorted(tasks)}")
        for method in entry.get("methods", []):
            if method not in methods:
                raise ValueError(f"{where}.methods: {method!r} has no entry under methods: "
                                 f"(learning rate etc.); known: {sorted(methods)}")
        for r in entry.get("ranks", []):
            k = entry.get("k", method_registry.default_k(r))
            if k > r:
                raise ValueError(f"{where}.k: k={k} exceeds rank r={r}; RaSA needs 0 <= k <= r")
        if entry.get("base") and target not in TABLES:
            raise ValueError(f"{where}.base: only Tables 1-2 have a base-model row; remove it")
        for source in entry.get("from", []):
            if source not in config["study"]:
                raise ValueError(f"{where}.from: {source!r} is not a study entry")
    for name, task in tasks.items():
        if task["dataset"] not in config["datasets"]:
            raise ValueError(f"tasks.{name}.dataset: unknown dataset {task['dataset']!r}")
        if task["benchmark"] not in config["benchmarks"]:
            raise ValueError(f"tasks.{name}.benchmark: unknown benchmark {task['benchmark']!r}")
    t = config["training"]
    if t["global_batch"] % t["micro_batch"]:
        raise ValueError(f"training.global_batch={t['global_batch']} is not a multiple of "
                         f"training.micro_batch={t['micro_batch']}")
