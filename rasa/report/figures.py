"""Figures 2–7 and the mechanism check, ours with the paper's values overlaid where known.

Each ``figureN(config, results, missing)`` returns a matplotlib figure; :func:`render_figure`
writes ``results/figures/<name>.png`` and ``.pdf``. The paper's values come from
``paper_numbers.csv`` and are always labelled "paper". Tiny models live on other scales than the
paper's: when drawing both on one axis would squash either (:func:`shares_axis`), the paper's
values go on a twin (right-hand) axis or into a side panel, and the axis label says so.
"""

from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from rasa.method_registry import LABELS as METHOD_NAMES
from rasa.report import reference
from rasa.report.entries import TASK_NAMES, base_run_id, entry_runs, model_label, paper_name
from rasa.report.results import Missing, Results
from rasa.report.style import (MISSING_COLOR, PAPER_MARKER, PAPER_STYLE, method_color, plt, save,
                               style)

FIGURES = ("figure2", "figure3", "figure4", "figure5", "figure6", "figure7", "mechanism")
#: Figure 2's RaSA curves by ``init``: (line style, colour, legend text).
INIT_STYLE = {"theorem": ("-", "#c0392b", "Theorem 3.1 start"), "paper": ("-.", "#e67e22", "paper's start")}
#: Figure 2's panel order in the paper (W_o is not in the paper's figure; ours adds it last).
MODULE_ORDER = ("up", "down", "gate", "q", "k", "v", "o")


# ---- helpers ---------------------------------------------------------------------------------
def shares_axis(ours, paper, min_frac: float = 0.25) -> bool:
    """True when both sets of values can share one y axis: each set with a spread spans at least
    ``min_frac`` of the joint range (so neither is squashed into a sliver)."""
    a = [float(x) for x in ours if x is not None and np.isfinite(x)]
    b = [float(x) for x in paper if x is not None and np.isfinite(x)]
    if not a or not b:
        return True
    lo, hi = min(a + b), max(a + b)
    span = hi - lo
    if span <= 0:
        return True
    for vals in (a, b):
        own = max(vals) - min(vals)
        if own / span < min_frac and (len(vals) > 1 or own == 0 and len(a) > 1 and len(b) > 1):
            return False
    # a lone value (no spread) must sit within the other set's range, widened by its span
    for vals, other in ((a, b), (b, a)):
        if max(vals) == min(vals) and len(other) > 1:
            olo, ohi = min(other), max(other)
            pad = max(ohi - olo, 1e-12)
            if not (olo - pad <= vals[0] <= ohi + pad):
                return False
    return True


def _twin(ax, label: str):
    tw = ax.twinx()
    tw.spines["right"].set_visible(True)
    tw.grid(False)
    tw.set_ylabel(label, color="0.35")
    tw.tick_params(axis="y", colors="0.35")
    return tw


def _note(ax, text: str, where: str = "lower left") -> None:
    x, ha = (0.02, "left") if "left" in where else (0.98, "right")
    y, va = (0.03, "bottom") if "lower" in where else (0.97, "top")
    ax.text(x, y, text, transform=ax.transAxes, ha=ha, va=va, fontsize=7, color=MISSING_COLOR,
            style="italic")


def _empty(ax, text: str = "no results yet") -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=9,
            color=MISSING_COLOR, style="italic")


def _suptitle(fig, title: str, missing: Missing) -> None:
    if missing.items:
        title += f"  [partial: {len(missing.items)} input(s) missing]"
    width = fig.get_figwidth()
    fig.suptitle(textwrap.fill(title, max(40, int(width * 12))), fontsize=11)


def _grid(n: int, ncols: int, w: float = 3.4, h: float = 2.7, **kw):
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    w = max(w, 6.0 / ncols)  # narrow figures cramp titles and legends
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows + 0.5), squeeze=False, **kw)
    axes = list(axes.ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n], axes[n:]


def _panel_title(config: dict, model: str, task: str, extra: str = "") -> str:
    return f"{model_label(config, model)} | {TASK_NAMES.get(task, task)}{extra}"


def _paper_module(module: str) -> str:
    """``model.layers.0.mlp.up_proj`` / ``up_proj`` / ``W_up`` -> ``up``."""
    m = module.split(".")[-1]
    m = m[2:] if m.startswith("W_") else m
    return m[: -len("_proj")] if m.endswith("_proj") else m


def _module_sort(module: str):
    m = _paper_module(module)
    return (MODULE_ORDER.index(m) if m in MODULE_ORDER else len(MODULE_ORDER), module)


def _panels(runs) -> list[tuple[str, str]]:
    """(model, task) panels in the paper's order: tasks (code, math) outer, models inner."""
    tasks = list(dict.fromkeys(r.spec.task for r in runs))
    tasks.sort(key=lambda t: ("code", "math").index(t) if t in ("code", "math") else 9)
    models = list(dict.fromkeys(r.spec.model for r in runs))
    return [(m, t) for t in tasks for m in models if any(r.spec.model == m and r.spec.task == t for r in runs)]


def _legend_below(fig, handles, labels, ncol: int = 4, title: str | None = None) -> None:
    if handles:
        longest = max(len(lab) for lab in labels)
        fit = max(1, int(fig.get_figwidth() * 12 / (longest + 6)))
        fig.legend(handles, labels, loc="outside lower center", ncol=max(1, min(ncol, fit)),
                   frameon=False, title=title, title_fontsize=7.5)


def _legend_key(label: str):
    """Ours first (LoRA before RaSA, by r), then other entries, then the paper's."""
    m = re.match(r"^(?:ours: )?(\w+) r=(\d+)", label)
    if label.startswith("paper"):
        return (2, 0, 0, label)
    if m:
        return (0, 0 if m[1] == "LoRA" else 1, int(m[2]), label)
    return (1, 0, 0, label)


def _dedup(handles, labels, sort: bool = True):
    seen, pairs = set(), []
    for h, lab in zip(handles, labels):
        if lab not in seen:
            seen.add(lab)
            pairs.append((h, lab))
    if sort:
        pairs.sort(key=lambda p: _legend_key(p[1]))
    return [p[0] for p in pairs], [p[1] for p in pairs]


# ---- Figure 2 --------------------------------------------------------------------------------
def figure2(config: dict, results: Results, missing: Missing):
    rc = config["study"]["recon"]
    model, r, k = rc["model"], int(rc["fig2_r"]), int(rc["fig2_k"])
    df = results.table("recon.csv", missing)
    d = df[(df["analysis"] == "figure2") & (df["model"] == model)]
    if results.path("recon.csv").exists() and d.empty:
        missing.add(f"{results.path('recon.csv')}: no figure2 rows for model {model}")
    rasa = d[(d["method"] == "rasa") & (d["r"] == r) & (d["k"] == k)]
    lora = d[(d["method"] == "lora") & (d["r"] == r)]
    modules = sorted(set(d["module"]), key=_module_sort)
    pn = paper_name(config, model)
    ref = reference.paper_rows("figure2_digitized")
    fig, axes, spare = _grid(max(len(modules), 1), 4, w=3.1, h=2.5)
    handles = []
    if not modules:
        _empty(axes[0])
    for ax, module in zip(axes, modules):
        pm = _paper_module(module)
        ours_vals = []
        mod = rasa[rasa["module"] == module]
        inits = sorted(set(mod["init"].fillna("").astype(str)), key=lambda i: (i not in INIT_STYLE, i))
        for init in inits:
            s = mod[mod["init"].fillna("").astype(str) == init].sort_values("iteration")
            ls, color, name = INIT_STYLE.get(init, (":", "#8e44ad", f"start '{init}'"))
            ax.plot(s["iteration"], s["error"], ls, color=color,
                    label=f"RaSA (r={r}, k={k})" + (f", {name}" if init else ""))
            ours_vals += list(s["error"])
        lo = lora[lora["module"] == module]
        if not lo.empty:
            ax.axhline(float(lo["error"].iloc[0]), ls="--", color=method_color("lora"),
                       label=f"LoRA (r={r}), minimum")
            ours_vals.append(float(lo["error"].iloc[0]))
        else:
            missing.add(f"{results.path('recon.csv')}: no figure2 LoRA row for {model} {module} r={r}")
        if rasa[rasa["module"] == module].empty:
            missing.add(f"{results.path('recon.csv')}: no figure2 RaSA rows for {model} {module} "
                        f"r={r} k={k}")
            _note(ax, "RaSA curve missing", "upper right")
        # the paper's digitised values (Llama-3.1-8B, r=8, k=1)
        p = ref[ref["task"] == f"recon_W_{pm}"]
        last_it = int(rasa["iteration"].max()) if not rasa.empty else int(rc["fig2_iters"])
        pts = []
        for _, x in p.iterrows():
            it = 1 if x["method"].endswith("iter1") else last_it
            color = method_color("lora") if x["method"].startswith("LoRA") else method_color("rasa")
            face = "white" if x["method"].endswith("iter1") else color
            pts.append((it, x["number"], color, face, x["method"]))
        if pts:
            same = shares_axis(ours_vals, [p_[1] for p_ in pts])
            tgt = ax if same else _twin(ax, "paper (Llama-3.1-8B)")
            for it, val, color, face, meth in pts:
                lab = {"LoRA_MRE_eq9": "paper: LoRA minimum (digitised)",
                       "RaSA_k1_iter50": "paper: RaSA at iteration 50 (digitised)",
                       "RaSA_k1_iter1": "paper: RaSA at iteration 1 (digitised)"}.get(meth, f"paper: {meth}")
                tgt.plot([it], [val], linestyle="none", color=color, markerfacecolor=face,
                         label=lab + ("" if same else ", right axis"), **PAPER_MARKER)
            if not same:
                vals = [p_[1] for p_ in pts]
                padv = (max(vals) - min(vals)) * 0.6 or abs(vals[0]) * 0.05
                tgt.set_ylim(min(vals) - padv, max(vals) + padv)
                tgt.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
            h, lab_ = tgt.get_legend_handles_labels()
            handles += list(zip(h, lab_))
        else:
            _note(ax, "not in the paper's figure", "upper right")
        h, lab_ = ax.get_legend_handles_labels()
        handles += list(zip(h, lab_))
        ax.set_title(f"W_{pm} ({module})")
        ax.set_xlabel("Iteration")
        ax.set_ylabel("Reconstruction error")
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
    h, lab_ = _dedup([x[0] for x in handles], [x[1] for x in handles])
    if spare:
        spare[0].set_visible(True)
        spare[0].axis("off")
        spare[0].legend(h, lab_, loc="center", frameon=False)
    else:
        _legend_below(fig, h, lab_, ncol=2)
    _suptitle(fig, f"Figure 2 — Reconstruction error during coordinate descent: "
                   f"{model_label(config, model)}, r={r}, k={k}", missing)
    return fig


# ---- Figure 3 --------------------------------------------------------------------------------
def figure3(config: dict, results: Results, missing: Missing):
    rc = config["study"]["recon"]
    model = rc["model"]
    df = results.table("recon.csv", missing)
    d = df[(df["analysis"] == "figure3") & (df["model"] == model)]
    ranks = [int(x) for x in rc["ranks"]]
    ks = [int(x) for x in rc["ks"]]
    fig, axes, _ = _grid(len(ranks), 3, w=3.4, h=2.8)
    handles = []
    for ax, r in zip(axes, ranks):
        lo = d[(d["method"] == "lora") & (d["r"] == r)]
        ra = d[(d["method"] == "rasa") & (d["r"] == r)]
        if lo.empty and ra.empty:
            if results.path("recon.csv").exists():
                missing.add(f"{results.path('recon.csv')}: no figure3 rows for {model} r={r}")
            _empty(ax)
        inits = sorted(set(ra["init"]))
        for i, init in enumerate(inits):
            s = ra[ra["init"] == init].groupby("k")["error"].agg(["mean", "count"])
            s = s.reindex([k for k in ks if k in s.index])
            ax.plot(s.index, s["mean"], "o-" if i == 0 else "s-.", color=method_color("rasa"),
                    label="RaSA" + (f" ({init} start)" if len(inits) > 1 else ""))
            if len(s):
                kmin = s["mean"].idxmin()
                ax.plot([kmin], [s["mean"].min()], "o", markersize=9, markerfacecolor="none",
                        markeredgecolor="black", label="RaSA minimum over k")
            absent = [k for k in ks if k <= r and k not in s.index]
            if absent:
                missing.add(f"{results.path('recon.csv')}: no figure3 RaSA rows for {model} r={r} "
                            f"k={absent}")
        if not lo.empty:
            ax.axhline(lo["error"].mean(), ls="--", color=method_color("lora"), label="LoRA (k = 0)")
        elif not ra.empty:
            missing.add(f"{results.path('recon.csv')}: no figure3 LoRA rows for {model} r={r}")
        ax.set_title(f"r = {r}")
        ax.set_xlabel("k (shared ranks per layer)")
        ax.set_ylabel("Reconstruction error\n(mean over modules)")
        ax.set_xticks([k for k in ks if k <= r] or ks)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
        h, lab = ax.get_legend_handles_labels()
        handles += list(zip(h, lab))
    h, lab = _dedup([x[0] for x in handles], [x[1] for x in handles])
    _legend_below(fig, h, lab + [], ncol=4)
    _suptitle(fig, f"Figure 3 — Converged reconstruction error vs k: {model_label(config, model)} "
                   "(paper's point values unknown)", missing)
    return fig


# ---- Figure 4 --------------------------------------------------------------------------------
def figure4(config: dict, results: Results, missing: Missing):
    runs = entry_runs(config, "figure4")
    panels = _panels(runs)
    ncols = len(dict.fromkeys(m for m, _ in panels)) or 1
    fig, axes, _ = _grid(max(len(panels), 1), ncols, w=3.8, h=2.9)
    ref = reference.paper_rows("figure4_digitized")
    handles = []
    if not panels:
        _empty(axes[0])
    for ax, (model, task) in zip(axes, panels):
        pruns = [r for r in runs if r.spec.model == model and r.spec.task == task]
        ranks = sorted({r.spec.r for r in pruns})
        ours_vals, series = [], []
        for run in pruns:
            s = results.epoch_losses(run.id, run.spec.epochs, missing)
            label = f"{METHOD_NAMES[run.spec.method]} r={run.spec.r}"
            color = method_color(run.spec.method, run.spec.r, ranks)
            if len(s):
                ax.plot(s.index, s.values, "o-", color=color, label=label)
                ours_vals += list(s.values)
            series.append((run, color))
        if not ours_vals:
            _empty(ax)
        pn = paper_name(config, model)
        paper_curves = []
        for run, color in series:
            p = ref[(ref["model"] == pn) & (ref["task"] == f"{task}_train")
                    & (ref["method"] == METHOD_NAMES[run.spec.method]) & (ref["rank"] == str(run.spec.r))]
            if len(p):
                ep = p["metric"].str.extract(r"epoch(\d+)")[0].astype(int)
                order = np.argsort(ep.to_numpy())
                paper_curves.append((ep.to_numpy()[order], p["number"].to_numpy()[order], color, run))
        if paper_curves:
            same = shares_axis(ours_vals, [v for c in paper_curves for v in c[1]])
            tgt = ax if same else _twin(ax, f"paper training loss ({pn})")
            for ep, vals, color, run in paper_curves:
                tgt.plot(ep, vals, color=color, **PAPER_STYLE,
                         label="paper (digitised)" + ("" if same else ", right axis"))
            h, lab = tgt.get_legend_handles_labels()
            handles += list(zip(h, lab))
        else:
            _note(ax, f"no paper curve for {pn}", "upper right")
        ax.set_title(_panel_title(config, model, task))
        ax.set_xlabel("Epoch")
        ax.set_ylabel("Training loss (epoch mean)")
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        h, lab = ax.get_legend_handles_labels()
        handles += list(zip(h, lab))
    h, lab = _dedup([x[0] for x in handles], [x[1] for x in handles])
    _legend_below(fig, h, lab, ncol=min(len(h), 7) or 1)
    _suptitle(fig, "Figure 4 — Training loss per epoch: LoRA vs RaSA", missing)
    return fig


# ---- Figure 5 --------------------------------------------------------------------------------
def figure5(config: dict, results: Results, missing: Missing):
    runs = entry_runs(config, "figure5")
    panels = _panels(runs)
    ref = reference.paper_rows("figure5_text")
    quoted = ref[ref["metric"].str.startswith("avg_acc")]
    gaps = ref[ref["metric"].str.startswith("mean_abs_gap")]
    panel_keys = {(paper_name(config, m), t): (m, t) for m, t in panels}
    max_epochs = max((r.spec.epochs for r in runs), default=0)
    overlay, side = [], []
    for _, x in quoted.iterrows():
        task = x["task"].replace("forgetting_", "")
        epoch = int(x["metric"].rsplit("epoch", 1)[1])
        key = (x["model"], task)
        (overlay if key in panel_keys and epoch <= max_epochs else side).append((x, task, epoch))
    ncols = len(dict.fromkeys(m for m, _ in panels)) or 1
    n = max(len(panels), 1) + (1 if side else 0)
    fig, axes, _ = _grid(n, n if side and n <= 4 else ncols + (1 if side else 0), w=3.6, h=2.9)
    handles = []
    last_acc: dict = {}
    for ax, (model, task) in zip(axes, panels):
        pruns = [r for r in runs if r.spec.model == model and r.spec.task == task]
        ranks = sorted({r.spec.r for r in pruns})
        base = results.series(base_run_id(model), "forgetting_avg", "accuracy", "lm-eval", missing,
                              range(0, 1))
        base_v = base.get(0)
        ours_vals = []
        for run in pruns:
            E = run.spec.epochs
            s = results.series(run.id, "forgetting_avg", "accuracy", "lm-eval", missing, range(1, E + 1))
            s = s[(s.index >= 1) & (s.index <= E)]
            if base_v is not None:
                s = pd.concat([pd.Series({0: base_v}), s])
            if len(s):
                ax.plot(s.index, s.values, "o-", color=method_color(run.spec.method, run.spec.r, ranks),
                        label=f"{METHOD_NAMES[run.spec.method]} r={run.spec.r}")
                ours_vals += list(s.values)
            if E in s.index:
                last_acc[(run.spec.method, model, task, run.spec.r)] = float(s[E])
        if base_v is not None:
            ax.plot([0], [base_v], "D", color="0.3", label="base model (epoch 0)")
        if not ours_vals:
            _empty(ax)
        pn = paper_name(config, model)
        for x, t, epoch in overlay:
            if (x["model"], t) == (pn, task):
                ax.plot([epoch], [x["number"]], linestyle="none", color=method_color(x["method"].lower()),
                        label="paper (quoted in text)", **PAPER_MARKER)
                ax.annotate(f"paper {x['method']} r={x['rank']}", (epoch, x["number"]), fontsize=6.5,
                            xytext=(-7, 0), textcoords="offset points", ha="right", va="center")
        ax.set_title(_panel_title(config, model, task))
        ax.set_xlabel("Epoch (0 = base model)")
        ax.set_ylabel("Avg. accuracy (%)\nHellaSwag, WinoGrande, ARC-C")
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        h, lab = ax.get_legend_handles_labels()
        handles += list(zip(h, lab))
    if not panels:
        _empty(axes[0])
    if side:
        ax = axes[-1]
        xs = {}
        for i, (x, task, epoch) in enumerate(side):
            label = f"{x['model']}\n{TASK_NAMES.get(task, task)}, r={x['rank']}"
            xi = xs.setdefault(label, len(xs))
            off = -0.12 if x["method"] == "LoRA" else 0.12
            ax.plot([xi + off], [x["number"]], linestyle="none",
                    color=method_color(x["method"].lower()), label=f"paper: {x['method']}", **PAPER_MARKER)
            ax.annotate(f"{x['number']:.1f}", (xi + off, x["number"]), fontsize=7, ha="center",
                        xytext=(0, 6), textcoords="offset points")
        ax.set_xticks(range(len(xs)), list(xs), fontsize=7)
        ax.set_xlim(-0.6, len(xs) - 0.4)
        ax.set_ylabel("Avg. accuracy (%)")
        epochs = sorted({e for _, _, e in side})
        ax.set_title(f"paper (quoted in §4.3), epoch {', '.join(map(str, epochs))}")
        ax.margins(y=0.2)
        h, lab = ax.get_legend_handles_labels()
        handles += list(zip(h, lab))
    text = _forgetting_gaps(last_acc, gaps)
    h, lab = _dedup([x[0] for x in handles], [x[1] for x in handles])
    _legend_below(fig, h, lab, ncol=min(len(h), 7) or 1, title=text or None)
    _suptitle(fig, "Figure 5 — Forgetting: average accuracy on HellaSwag, WinoGrande and "
                   "ARC-Challenge after each epoch", missing)
    return fig


def _forgetting_gaps(last_acc: dict, gaps: pd.DataFrame) -> str:
    """Mean over panels of |acc(smallest r) − acc(largest r)| at the last epoch, ours beside the
    paper's (text §4.3: r=8 vs r=32 at epoch 8)."""
    lines = []
    for method in ("lora", "rasa"):
        vals, pairs = [], set()
        by_panel: dict = {}
        for (m, model, task, r), v in last_acc.items():
            if m == method:
                by_panel.setdefault((model, task), {})[r] = v
        for d in by_panel.values():
            if len(d) >= 2:
                vals.append(abs(d[min(d)] - d[max(d)]))
                pairs.add((min(d), max(d)))
        if vals:
            p = gaps[gaps["method"] == METHOD_NAMES[method]]
            ptxt = f"; paper (r=8 vs 32, epoch 8): {p['number'].iloc[0]:.2f}" if len(p) else ""
            rs = ", ".join(f"r={a} vs {b}" for a, b in sorted(pairs))
            lines.append(f"{METHOD_NAMES[method]}: mean |accuracy gap| {rs} at the last epoch: "
                         f"ours {np.mean(vals):.2f}{ptxt}")
    return "\n".join(lines)


# ---- Figure 6 --------------------------------------------------------------------------------
def figure6(config: dict, results: Results, missing: Missing):
    runs = entry_runs(config, "figure6")
    models = list(dict.fromkeys(r.spec.model for r in runs))
    methods = [m for m in ("lora", "rasa") if any(r.spec.method == m for r in runs)]
    ours: dict = {}
    for run in runs:
        s = results.series(run.id, "math", "accuracy", "paper", missing, range(run.spec.epochs, run.spec.epochs + 1))
        if run.spec.epochs in s.index:
            ours[(run.spec.model, run.spec.method)] = float(s[run.spec.epochs])
    ref = reference.paper_rows("figure6")
    paper = {(x["model"], x["method"].lower()): x["number"] for _, x in ref.iterrows()}
    paper_models = list(dict.fromkeys(ref["model"]))
    r = sorted({run.spec.r for run in runs})
    same = shares_axis(list(ours.values()), list(paper.values()))
    fig, axes = plt.subplots(1, 1 if same else 2, figsize=(8.5 if same else 10, 3.6), squeeze=False,
                             gridspec_kw=None if same else {"width_ratios": [max(len(models), 1), len(paper_models)]})
    axes = list(axes.ravel())
    width = 0.2

    def bars(ax, x, val, method, hatch, label):
        w = width if same else width * 1.5
        if val is None:
            ax.text(x, 0, "—", ha="center", va="bottom", color=MISSING_COLOR)
            return
        b = ax.bar(x, val, w, color=method_color(method), alpha=0.45 if hatch else 0.9,
                   hatch=hatch, edgecolor="black" if hatch else "none", linewidth=0.4, label=label)
        ax.bar_label(b, fmt="%.1f", fontsize=6.5, padding=1)

    groups = [(m, paper_name(config, m)) for m in models]
    if same:  # one axis: ours solid, the paper's hatched, per model; paper-only models after
        extra = [pm for pm in paper_models if pm not in {g[1] for g in groups}]
        ax = axes[0]
        labels = []
        for i, (m, pn) in enumerate(groups):
            for j, meth in enumerate(methods):
                bars(ax, i + (j - 1.5) * width, ours.get((m, meth)), meth, None, f"ours: {METHOD_NAMES[meth]}")
                bars(ax, i + (j + 0.5) * width, paper.get((pn, meth)), meth, "//", f"paper: {METHOD_NAMES[meth]}")
            labels.append(model_label(config, m).replace(" (", "\n("))
        for i, pn in enumerate(extra, start=len(groups)):
            for j, meth in enumerate(methods):
                bars(ax, i + (j - 0.5) * width, paper.get((pn, meth)), meth, "//", f"paper: {METHOD_NAMES[meth]}")
            labels.append(f"{pn}\n(paper only)")
        ax.set_xticks(range(len(labels)), labels, fontsize=7.5)
        ax.set_ylabel("MATH accuracy, LAST (%)")
        ax.set_title(f"ours (solid) and paper (hatched), r={','.join(map(str, r))}")
    else:  # side panel: ours on its own scale, the paper's figure beside it
        ax = axes[0]
        for i, m in enumerate(models):
            for j, meth in enumerate(methods):
                bars(ax, i + (j - 0.5) * width * 1.5, ours.get((m, meth)), meth, None,
                     f"ours: {METHOD_NAMES[meth]}")
        ax.set_xticks(range(len(models)), [model_label(config, m).replace(" (", "\n(") for m in models],
                      fontsize=7.5)
        ax.set_ylabel("MATH accuracy, LAST (%)")
        ax.set_title(f"ours (r={','.join(map(str, r))}, {runs[0].spec.epochs if runs else '?'} epochs)")
        ax2 = axes[1]
        for i, pn in enumerate(paper_models):
            for j, meth in enumerate(methods):
                bars(ax2, i + (j - 0.5) * width * 1.5, paper.get((pn, meth)), meth, "//",
                     f"paper: {METHOD_NAMES[meth]}")
        ax2.set_xticks(range(len(paper_models)), paper_models, fontsize=7.5)
        ax2.set_ylabel("MATH accuracy, LAST (%)")
        ax2.set_title("paper (Figure 6 data labels; r=4, 2 epochs)")
    for a in axes:
        a.grid(axis="x", visible=False)
        a.margins(y=0.12)
    if not ours:
        _note(axes[0], "no results yet", "upper left")
    handles = []
    for a in axes:
        h, lab = a.get_legend_handles_labels()
        handles += list(zip(h, lab))
    h, lab = _dedup([x[0] for x in handles], [x[1] for x in handles])
    _legend_below(fig, h, lab, ncol=4)
    _suptitle(fig, "Figure 6 — MATH accuracy of scaled models (LAST epoch): LoRA vs RaSA", missing)
    return fig


# ---- Figure 7 --------------------------------------------------------------------------------
def figure7(config: dict, results: Results, missing: Missing):
    runs = entry_runs(config, "figure7")
    models = list(dict.fromkeys(r.spec.model for r in runs))
    ref = reference.paper_rows("figure7_inferred")
    fig, axes, _ = _grid(max(len(models), 1), 3, w=4.2, h=3.2)
    handles = []
    if not models:
        _empty(axes[0])
    for ax, model in zip(axes, models):
        pn = paper_name(config, model)
        mruns = [r for r in runs if r.spec.model == model]
        ours_vals = []
        for method in dict.fromkeys(r.spec.method for r in mruns):
            pts = []
            for run in [r for r in mruns if r.spec.method == method]:
                E = run.spec.epochs
                s = results.series(run.id, "math", "accuracy", "paper", missing, range(E, E + 1))
                if E in s.index:
                    pts.append((run.spec.fraction * 100, float(s[E])))
            pts.sort()
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=method_color(method),
                        label=f"ours: {METHOD_NAMES[method]} r={mruns[0].spec.r}")
                ours_vals += [p[1] for p in pts]
        if not ours_vals:
            _empty(ax)
        p = ref[ref["model"] == pn]
        if len(p):
            same = shares_axis(ours_vals, list(p["number"]))
            tgt = ax if same else _twin(ax, f"paper MATH accuracy (%), {pn}")
            for _, x in p.iterrows():
                pct = float(x["task"].rsplit("data", 1)[1].rstrip("pct"))
                tgt.plot([pct], [x["number"]], linestyle="none", color=method_color(x["method"].lower()),
                         label=f"paper: {x['method']} (inferred = Table 2)" + ("" if same else ", right axis"),
                         **PAPER_MARKER)
            if not same:
                vals = list(p["number"])
                tgt.set_ylim(min(vals) - 3, max(vals) + 3)
            h, lab = tgt.get_legend_handles_labels()
            handles += list(zip(h, lab))
        fracs = sorted({r.spec.fraction * 100 for r in mruns})
        ax.set_xticks(fracs, [f"{f:g}%" for f in fracs])
        ax.set_xlabel("Training data")
        ax.set_ylabel("MATH accuracy, LAST (%)")
        r = mruns[0].spec.r if mruns else "?"
        ax.set_title(f"{model_label(config, model)} | Math, r={r}, {mruns[0].spec.epochs} epochs")
        h, lab = ax.get_legend_handles_labels()
        handles += list(zip(h, lab))
    h, lab = _dedup([x[0] for x in handles], [x[1] for x in handles])
    _legend_below(fig, h, lab, ncol=2)
    _suptitle(fig, "Figure 7 — MATH accuracy vs amount of training data", missing)
    return fig


# ---- mechanism check -------------------------------------------------------------------------
def mechanism(config: dict, results: Results, missing: Missing):
    mc = config["study"].get("mechanism", {})
    df = results.table("mechanism.csv", missing)
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    groups = df.groupby(["method", "r", "k"], sort=True) if len(df) else []
    for (method, r, k), g in groups:
        g = g.sort_values("step")
        n = int(g["trainable_params"].iloc[0])
        ax.plot(g["step"], g["loss"], "-", color=method_color(method),
                label=f"{METHOD_NAMES.get(method, method)} r={r}" + (f", k={k}" if method == "rasa" else "")
                + f" ({n:,} params)")
    if len(df) == 0:
        _empty(ax)
    elif (df["loss"] > 0).all() and df["loss"].max() / df["loss"].min() > 20:
        ax.set_yscale("log")
    ax.set_xlabel("Training step")
    ax.set_ylabel("Student loss on held-out inputs\n(MSE to the teacher's logits)")
    ax.set_title(f"{model_label(config, mc.get('model', '?'))}: teacher with shared + private "
                 "updates", fontsize=8.5)
    if len(df):
        ax.legend()
    _suptitle(fig, "Mechanism check — LoRA vs RaSA students (ours; not in the paper)", missing)
    return fig


_BUILDERS = {"figure2": figure2, "figure3": figure3, "figure4": figure4, "figure5": figure5,
             "figure6": figure6, "figure7": figure7, "mechanism": mechanism}


def render_figure(name: str, config: dict, results_root: str | Path, partial: bool = False,
                  out_dir: str | Path | None = None,
                  analysis_root: str | Path | None = None) -> list[Path]:
    """Write ``<name>.png`` and ``.pdf`` under ``out_dir`` (default ``<results>/figures``), reading
    recon.csv / mechanism.csv from ``analysis_root`` (default: the results dir); raises
    :class:`~rasa.report.results.MissingResultsError` on missing inputs unless ``partial``."""
    results = Results(results_root, analysis_root)
    missing = Missing(name, partial)
    with style():
        fig = _BUILDERS[name](config, results, missing)
        try:
            missing.check()
        except Exception:
            plt.close(fig)
            raise
        return save(fig, Path(out_dir) if out_dir else Path(results_root) / "figures", name)
