"""The data each figure plots, as tidy frames: the rows of our results and of the paper's numbers
that a figure shows, selected and matched here; :mod:`rasa.report.figures` only draws them.

Every function takes ``(config, results, missing)`` and records in ``missing`` each input the
figure needs and lacks (see :class:`~rasa.report.results.Missing`). Frames hold one row per
plotted value, in drawing order; ``source`` is ``ours`` or ``paper``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rasa.method_registry import LABELS as METHOD_NAMES
from rasa.report import reference
from rasa.report.entries import base_run_id, entry_runs, paper_name
from rasa.report.results import Missing, Results

#: Figure 2's panel order in the paper (W_o is not in the paper's figure; ours adds it last).
MODULE_ORDER = ("up", "down", "gate", "q", "k", "v", "o")
#: Figure 2's RaSA starts, in drawing order (others follow, by name).
INITS = ("theorem", "paper")


def paper_module(module: str) -> str:
    """``model.layers.0.mlp.up_proj`` / ``up_proj`` / ``W_up`` -> ``up``."""
    m = module.split(".")[-1]
    m = m[2:] if m.startswith("W_") else m
    return m[: -len("_proj")] if m.endswith("_proj") else m


def _module_sort(module: str):
    m = paper_module(module)
    return (MODULE_ORDER.index(m) if m in MODULE_ORDER else len(MODULE_ORDER), module)


def panels(runs) -> list[tuple[str, str]]:
    """(model, task) panels in the paper's order: tasks (code, math) outer, models inner."""
    tasks = list(dict.fromkeys(r.spec.task for r in runs))
    tasks.sort(key=lambda t: ("code", "math").index(t) if t in ("code", "math") else 9)
    models = list(dict.fromkeys(r.spec.model for r in runs))
    return [(m, t) for t in tasks for m in models if any(r.spec.model == m and r.spec.task == t for r in runs)]


def panel_runs(runs, model: str, task: str) -> list:
    return [r for r in runs if r.spec.model == model and r.spec.task == task]


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


# ---- Figure 2 --------------------------------------------------------------------------------
FIGURE2_COLUMNS = ["module", "source", "method", "init", "iteration", "error", "paper_key"]


def figure2_data(config: dict, results: Results, missing: Missing) -> pd.DataFrame:
    """Per module (a categorical column: its categories are the panels, in the paper's order):
    our RaSA error per iteration for each start (``r, k = fig2_r, fig2_k``), our LoRA minimum
    (first row), and the paper's digitised points (``paper_key`` names each; RaSA's last point
    sits at our last iteration)."""
    rc = config["study"]["recon"]
    model, r, k = rc["model"], int(rc["fig2_r"]), int(rc["fig2_k"])
    df = results.table("recon.csv", missing)
    d = df[(df["analysis"] == "figure2") & (df["model"] == model)]
    where = results.path("recon.csv")
    if where.exists() and d.empty:
        missing.add(f"{where}: no figure2 rows for model {model}")
    rasa = d[(d["method"] == "rasa") & (d["r"] == r) & (d["k"] == k)]
    lora = d[(d["method"] == "lora") & (d["r"] == r)]
    modules = sorted(set(d["module"]), key=_module_sort)
    last_it = int(rasa["iteration"].max()) if not rasa.empty else int(rc["fig2_iters"])
    ref = reference.paper_rows("figure2_digitized")
    rows = []
    for module in modules:
        mod = rasa[rasa["module"] == module]
        init = mod["init"].fillna("").astype(str)
        for i in sorted(set(init), key=lambda x: (x not in INITS, x)):
            s = mod[init == i].sort_values("iteration")
            rows += [{"module": module, "source": "ours", "method": "rasa", "init": i,
                      "iteration": it, "error": e} for it, e in zip(s["iteration"], s["error"])]
        lo = lora[lora["module"] == module]
        if not lo.empty:
            rows.append({"module": module, "source": "ours", "method": "lora", "init": "",
                         "iteration": 0, "error": float(lo["error"].iloc[0])})
        else:
            missing.add(f"{where}: no figure2 LoRA row for {model} {module} r={r}")
        if mod.empty:
            missing.add(f"{where}: no figure2 RaSA rows for {model} {module} r={r} k={k}")
        for _, x in ref[ref["task"] == f"recon_W_{paper_module(module)}"].iterrows():
            rows.append({"module": module, "source": "paper",
                         "method": "lora" if x["method"].startswith("LoRA") else "rasa", "init": "",
                         "iteration": 1 if x["method"].endswith("iter1") else last_it,
                         "error": x["number"], "paper_key": x["method"]})
    out = _frame(rows, FIGURE2_COLUMNS)
    out["module"] = pd.Categorical(out["module"], categories=modules)
    return out


# ---- Figure 3 --------------------------------------------------------------------------------
FIGURE3_COLUMNS = ["r", "method", "init", "k", "error"]


def figure3_data(config: dict, results: Results, missing: Missing) -> pd.DataFrame:
    """Per rank ``r`` of ``study.recon.ranks``: RaSA's converged error per ``k`` (in ``ks`` order)
    for each start, and LoRA's (``k = 0``); each the mean over modules."""
    rc = config["study"]["recon"]
    model = rc["model"]
    df = results.table("recon.csv", missing)
    d = df[(df["analysis"] == "figure3") & (df["model"] == model)]
    ks = [int(x) for x in rc["ks"]]
    where = results.path("recon.csv")
    rows = []
    for r in (int(x) for x in rc["ranks"]):
        lo = d[(d["method"] == "lora") & (d["r"] == r)]
        ra = d[(d["method"] == "rasa") & (d["r"] == r)]
        if lo.empty and ra.empty and where.exists():
            missing.add(f"{where}: no figure3 rows for {model} r={r}")
        for init in sorted(set(ra["init"])):
            s = ra[ra["init"] == init].groupby("k")["error"].mean()
            rows += [{"r": r, "method": "rasa", "init": init, "k": k, "error": s[k]}
                     for k in ks if k in s.index]
            absent = [k for k in ks if k <= r and k not in s.index]
            if absent:
                missing.add(f"{where}: no figure3 RaSA rows for {model} r={r} k={absent}")
        if not lo.empty:
            rows.append({"r": r, "method": "lora", "init": "", "k": 0, "error": lo["error"].mean()})
        elif not ra.empty:
            missing.add(f"{where}: no figure3 LoRA rows for {model} r={r}")
    return _frame(rows, FIGURE3_COLUMNS)


# ---- Figure 4 --------------------------------------------------------------------------------
FIGURE4_COLUMNS = ["model", "task", "run_id", "method", "r", "source", "epoch", "loss"]


def figure4_data(config: dict, results: Results, missing: Missing) -> pd.DataFrame:
    """Per run of ``study.figure4``: our mean training loss per epoch, then the paper's digitised
    curve of the same model (by ``paper_name``), task, method and rank, if any."""
    ref = reference.paper_rows("figure4_digitized")
    runs = entry_runs(config, "figure4")
    ours, paper = [], []
    for run in (r for m, t in panels(runs) for r in panel_runs(runs, m, t)):
        s = run.spec
        key = {"model": s.model, "task": s.task, "run_id": run.id, "method": s.method, "r": s.r}
        loss = results.epoch_losses(run.id, s.epochs, missing)
        ours += [{**key, "source": "ours", "epoch": e, "loss": v} for e, v in loss.items()]
        p = ref[(ref["model"] == paper_name(config, s.model)) & (ref["task"] == f"{s.task}_train")
                & (ref["method"] == METHOD_NAMES[s.method]) & (ref["rank"] == str(s.r))]
        ep = p["metric"].str.extract(r"epoch(\d+)")[0].astype(int)
        paper += sorted(({**key, "source": "paper", "epoch": e, "loss": v}
                         for e, v in zip(ep, p["number"])), key=lambda x: x["epoch"])
    return _frame(ours + paper, FIGURE4_COLUMNS)


# ---- Figure 5 --------------------------------------------------------------------------------
FIGURE5_COLUMNS = ["model", "task", "run_id", "method", "r", "epoch", "accuracy", "last"]
QUOTED_COLUMNS = ["model", "task", "method", "rank", "epoch", "accuracy", "placement"]


def figure5_data(config: dict, results: Results, missing: Missing) -> pd.DataFrame:
    """Forgetting (mean of HellaSwag, WinoGrande, ARC-C): per (model, task) of ``study.figure5``
    the base model's value (``method = base``, epoch 0) and each run's after epochs 1..E
    (``last``: epoch E)."""
    runs = entry_runs(config, "figure5")
    rows = []
    for model, task in panels(runs):
        base = results.series(base_run_id(model), "forgetting_avg", "accuracy", "lm-eval", missing,
                              range(0, 1))
        if 0 in base.index:
            rows.append({"model": model, "task": task, "run_id": base_run_id(model),
                         "method": "base", "r": 0, "epoch": 0, "accuracy": base[0], "last": False})
        for run in panel_runs(runs, model, task):
            s, E = run.spec, run.spec.epochs
            acc = results.series(run.id, "forgetting_avg", "accuracy", "lm-eval", missing,
                                 range(1, E + 1))
            rows += [{"model": model, "task": task, "run_id": run.id, "method": s.method, "r": s.r,
                      "epoch": e, "accuracy": v, "last": e == E}
                     for e, v in acc.items() if 1 <= e <= E]
    return _frame(rows, FIGURE5_COLUMNS)


def figure5_quoted(config: dict) -> pd.DataFrame:
    """The paper's quoted average accuracies (§4.3): ``placement`` is ``overlay`` where one of our
    panels stands in for that model and task and reaches that epoch, else ``side``."""
    runs = entry_runs(config, "figure5")
    panels = {(paper_name(config, r.spec.model), r.spec.task) for r in runs}
    max_epochs = max((r.spec.epochs for r in runs), default=0)
    ref = reference.paper_rows("figure5_text")
    rows = []
    for _, x in ref[ref["metric"].str.startswith("avg_acc")].iterrows():
        task = x["task"].replace("forgetting_", "")
        epoch = int(x["metric"].rsplit("epoch", 1)[1])
        inside = (x["model"], task) in panels and epoch <= max_epochs
        rows.append({"model": x["model"], "task": task, "method": x["method"], "rank": x["rank"],
                     "epoch": epoch, "accuracy": x["number"],
                     "placement": "overlay" if inside else "side"})
    return _frame(rows, QUOTED_COLUMNS)


def forgetting_gaps(ours: pd.DataFrame) -> pd.DataFrame:
    """Per method (LoRA, RaSA): the mean over panels of |accuracy(smallest r) − accuracy(largest
    r)| at the last epoch (``ours``: :func:`figure5_data`), the rank pairs compared, and the
    paper's value (text §4.3: r=8 vs r=32 at epoch 8; NaN where the paper gives none)."""
    ref = reference.paper_rows("figure5_text")
    gaps = ref[ref["metric"].str.startswith("mean_abs_gap")]
    last = ours[ours["last"].astype(bool)]
    rows = []
    for method in ("lora", "rasa"):
        vals, pairs = [], set()
        for _, g in last[last["method"] == method].groupby(["model", "task"], sort=False):
            by_r = dict(zip(g["r"], g["accuracy"]))
            if len(by_r) >= 2:
                vals.append(abs(by_r[min(by_r)] - by_r[max(by_r)]))
                pairs.add((min(by_r), max(by_r)))
        if vals:
            p = gaps[gaps["method"] == METHOD_NAMES[method]]
            rows.append({"method": method, "pairs": sorted(pairs), "ours": float(np.mean(vals)),
                         "paper": p["number"].iloc[0] if len(p) else float("nan")})
    return _frame(rows, ["method", "pairs", "ours", "paper"])


# ---- Figures 6-7 -----------------------------------------------------------------------------
LAST_COLUMNS = ["source", "model", "method", "r", "data_pct", "accuracy"]


def _last_accuracy(runs, results: Results, missing: Missing) -> list[dict]:
    """Our MATH accuracy (scorer ``paper``) at each run's last epoch."""
    rows = []
    for run in runs:
        E = run.spec.epochs
        s = results.series(run.id, "math", "accuracy", "paper", missing, range(E, E + 1))
        if E in s.index:
            rows.append({"source": "ours", "model": run.spec.model, "method": run.spec.method,
                         "r": run.spec.r, "data_pct": run.spec.fraction * 100, "accuracy": float(s[E])})
    return rows


def figure6_data(config: dict, results: Results, missing: Missing) -> pd.DataFrame:
    """MATH accuracy at the last epoch: ours per run of ``study.figure6`` (``model`` = our model),
    then the paper's Figure 6 data labels (``model`` = the paper's model)."""
    rows = _last_accuracy(entry_runs(config, "figure6"), results, missing)
    rows += [{"source": "paper", "model": x["model"], "method": x["method"].lower(),
              "r": pd.NA, "data_pct": 100.0, "accuracy": x["number"]}
             for _, x in reference.paper_rows("figure6").iterrows()]
    return _frame(rows, LAST_COLUMNS)


def figure7_data(config: dict, results: Results, missing: Missing) -> pd.DataFrame:
    """MATH accuracy at the last epoch per percentage of the training data: ours per run of
    ``study.figure7``, then the paper's inferred points for the models ours stand in for
    (``model`` = our model in both)."""
    runs = entry_runs(config, "figure7")
    models = list(dict.fromkeys(r.spec.model for r in runs))
    by_model = [r for m in models for meth in dict.fromkeys(x.spec.method for x in runs if x.spec.model == m)
                for r in runs if (r.spec.model, r.spec.method) == (m, meth)]
    rows = _last_accuracy(by_model, results, missing)
    ref = reference.paper_rows("figure7_inferred")
    for model in models:
        rows += [{"source": "paper", "model": model, "method": x["method"].lower(), "r": pd.NA,
                  "data_pct": float(x["task"].rsplit("data", 1)[1].rstrip("pct")),
                  "accuracy": x["number"]}
                 for _, x in ref[ref["model"] == paper_name(config, model)].iterrows()]
    return _frame(rows, LAST_COLUMNS)


# ---- mechanism check -------------------------------------------------------------------------
def mechanism_data(config: dict, results: Results, missing: Missing) -> pd.DataFrame:
    """mechanism.csv, one curve per (method, r, k) in that order, each by step."""
    df = results.table("mechanism.csv", missing)
    return df.sort_values(["method", "r", "k", "step"], kind="stable").reset_index(drop=True)
