"""Figures 2–7 and the mechanism check, ours with the paper's values overlaid where known.

Each ``figureN(config, results, missing)`` draws the frame of :mod:`rasa.report.figure_data`'s
``figureN_data`` and returns a matplotlib figure; :func:`render_figure` writes
``results/figures/<name>.png`` and ``.pdf``. The paper's values come from ``paper_numbers.csv``
and are always labelled "paper". Tiny models live on other scales than the paper's: when drawing
both on one axis would squash either (:func:`shares_axis`), the paper's values go on a twin
(right-hand) axis or into a side panel, and the axis label says so.
"""

from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from rasa.method_registry import LABELS as METHOD_NAMES
from rasa.report.entries import TASK_NAMES, entry_runs, model_label, paper_name
from rasa.report.figure_data import (
    INITS,
    figure2_data,
    figure3_data,
    figure4_data,
    figure5_data,
    figure5_quoted,
    figure6_data,
    figure7_data,
    forgetting_gaps,
    mechanism_data,
    panel_runs,
    panels,
    paper_module,
)
from rasa.report.results import Missing, Results
from rasa.report.style import MISSING_COLOR, PAPER_MARKER, PAPER_STYLE, method_color, plt, save, style

FIGURES = ("figure2", "figure3", "figure4", "figure5", "figure6", "figure7", "mechanism")
#: Figure 2's RaSA curves by ``init``: (line style, colour, legend text).
INIT_STYLE = dict(zip(INITS, (("-", "#c0392b", "Theorem 3.1 start"), ("-.", "#e67e22", "paper's start"))))
#: Figure 2's digitised points of the paper, by their ``paper_numbers.csv`` method.
PAPER_POINTS = {"LoRA_MRE_eq9": "paper: LoRA minimum (digitised)",
                "RaSA_k1_iter50": "paper: RaSA at iteration 50 (digitised)",
                "RaSA_k1_iter1": "paper: RaSA at iteration 1 (digitised)"}


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


def _legend_key(label: str):
    """Ours first (LoRA before RaSA, by r), then other entries, then the paper's."""
    m = re.match(r"^(?:ours: )?(\w+) r=(\d+)", label)
    if label.startswith("paper"):
        return (2, 0, 0, label)
    if m:
        return (0, 0 if m[1] == "LoRA" else 1, int(m[2]), label)
    return (1, 0, 0, label)


def _legend_entries(fig):
    """Every label drawn on the figure's axes (twins included) once, with its first handle, in
    :func:`_legend_key` order."""
    seen: dict = {}
    for ax in fig.axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    labels = sorted(seen, key=_legend_key)
    return [seen[lab] for lab in labels], labels


def _legend_below(fig, ncol: int | None = None, title: str | None = None, panel=None) -> None:
    """The figure's one legend: below the panels (``ncol`` columns at most, default up to 7, as
    many as fit) or centred in the spare ``panel``."""
    handles, labels = _legend_entries(fig)
    if panel is not None:
        panel.set_visible(True)
        panel.axis("off")
        panel.legend(handles, labels, loc="center", frameon=False)
    elif handles:
        ncol = ncol or min(len(handles), 7)
        longest = max(len(lab) for lab in labels)
        fit = max(1, int(fig.get_figwidth() * 12 / (longest + 6)))
        fig.legend(handles, labels, loc="outside lower center", ncol=max(1, min(ncol, fit)),
                   frameon=False, title=title, title_fontsize=7.5)


def _row_groups(df: pd.DataFrame, key: str):
    """``(first row, rows)`` per value of ``key``, in order of appearance."""
    return [(g.iloc[0], g) for _, g in df.groupby(key, sort=False)]


# ---- Figure 2 --------------------------------------------------------------------------------
def figure2(config: dict, results: Results, missing: Missing):
    rc = config["study"]["recon"]
    model, r, k = rc["model"], int(rc["fig2_r"]), int(rc["fig2_k"])
    data = figure2_data(config, results, missing)
    modules = list(data["module"].cat.categories)
    fig, axes, spare = _grid(max(len(modules), 1), 4, w=3.1, h=2.5)
    if not modules:
        _empty(axes[0])
    for ax, module in zip(axes, modules):
        _recon_panel(ax, data[data["module"] == module], r, k)
        ax.set_title(f"W_{paper_module(module)} ({module})")
        ax.set_xlabel("Iteration")
        ax.set_ylabel("Reconstruction error")
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
    _legend_below(fig, 2, panel=spare[0] if spare else None)
    _suptitle(fig, f"Figure 2 — Reconstruction error during coordinate descent: "
                   f"{model_label(config, model)}, r={r}, k={k}", missing)
    return fig


def _recon_panel(ax, d: pd.DataFrame, r: int, k: int) -> None:
    """One module: our RaSA curve per start, LoRA's minimum, the paper's digitised points."""
    ours = d[d["source"] == "ours"]
    rasa = ours[ours["method"] == "rasa"]
    for x, s in _row_groups(rasa, "init"):
        ls, color, name = INIT_STYLE.get(x["init"], (":", "#8e44ad", f"start '{x['init']}'"))
        ax.plot(s["iteration"], s["error"], ls, color=color,
                label=f"RaSA (r={r}, k={k})" + (f", {name}" if x["init"] else ""))
    for e in ours[ours["method"] == "lora"]["error"]:
        ax.axhline(e, ls="--", color=method_color("lora"), label=f"LoRA (r={r}), minimum")
    if rasa.empty:
        _note(ax, "RaSA curve missing", "upper right")
    paper = d[d["source"] == "paper"]
    if paper.empty:
        _note(ax, "not in the paper's figure", "upper right")
        return
    same = shares_axis(list(ours["error"]), list(paper["error"]))
    tgt = ax if same else _twin(ax, "paper (Llama-3.1-8B)")
    for _, x in paper.iterrows():
        color = method_color(x["method"])
        tgt.plot([x["iteration"]], [x["error"]], linestyle="none", color=color,
                 markerfacecolor="white" if x["paper_key"].endswith("iter1") else color,
                 label=PAPER_POINTS.get(x["paper_key"], f"paper: {x['paper_key']}")
                 + ("" if same else ", right axis"), **PAPER_MARKER)
    if not same:
        vals = list(paper["error"])
        padv = (max(vals) - min(vals)) * 0.6 or abs(vals[0]) * 0.05
        tgt.set_ylim(min(vals) - padv, max(vals) + padv)
        tgt.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))


# ---- Figure 3 --------------------------------------------------------------------------------
def figure3(config: dict, results: Results, missing: Missing):
    rc = config["study"]["recon"]
    ranks = [int(x) for x in rc["ranks"]]
    ks = [int(x) for x in rc["ks"]]
    data = figure3_data(config, results, missing)
    fig, axes, _ = _grid(len(ranks), 3, w=3.4, h=2.8)
    for ax, r in zip(axes, ranks):
        d = data[data["r"] == r]
        if d.empty:
            _empty(ax)
        rasa = d[d["method"] == "rasa"]
        inits = _row_groups(rasa, "init")
        for i, (x, s) in enumerate(inits):
            ax.plot(s["k"], s["error"], "o-" if i == 0 else "s-.", color=method_color("rasa"),
                    label="RaSA" + (f" ({x['init']} start)" if len(inits) > 1 else ""))
            best = s.loc[s["error"].idxmin()]
            ax.plot([best["k"]], [best["error"]], "o", markersize=9, markerfacecolor="none",
                    markeredgecolor="black", label="RaSA minimum over k")
        for e in d[d["method"] == "lora"]["error"]:
            ax.axhline(e, ls="--", color=method_color("lora"), label="LoRA (k = 0)")
        ax.set_title(f"r = {r}")
        ax.set_xlabel("k (shared ranks per layer)")
        ax.set_ylabel("Reconstruction error\n(mean over modules)")
        ax.set_xticks([k for k in ks if k <= r] or ks)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
    _legend_below(fig, 4)
    _suptitle(fig, f"Figure 3 — Converged reconstruction error vs k: "
                   f"{model_label(config, rc['model'])} (paper's point values unknown)", missing)
    return fig


# ---- Figure 4 --------------------------------------------------------------------------------
def figure4(config: dict, results: Results, missing: Missing):
    runs = entry_runs(config, "figure4")
    data = figure4_data(config, results, missing)
    pans = panels(runs)
    fig, axes, _ = _grid(max(len(pans), 1), len(dict.fromkeys(m for m, _ in pans)) or 1, w=3.8, h=2.9)
    if not pans:
        _empty(axes[0])
    for ax, (model, task) in zip(axes, pans):
        ranks = sorted({r.spec.r for r in panel_runs(runs, model, task)})
        _loss_panel(ax, data[(data["model"] == model) & (data["task"] == task)], ranks,
                    paper_name(config, model))
        ax.set_title(_panel_title(config, model, task))
        ax.set_xlabel("Epoch")
        ax.set_ylabel("Training loss (epoch mean)")
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    _legend_below(fig)
    _suptitle(fig, "Figure 4 — Training loss per epoch: LoRA vs RaSA", missing)
    return fig


def _loss_panel(ax, d: pd.DataFrame, ranks: list[int], pn: str) -> None:
    """One (model, task): our loss curve per run, the paper's digitised curve in the run's colour."""
    ours, paper = d[d["source"] == "ours"], d[d["source"] == "paper"]
    for x, s in _row_groups(ours, "run_id"):
        ax.plot(s["epoch"], s["loss"], "o-", color=method_color(x["method"], x["r"], ranks),
                label=f"{METHOD_NAMES[x['method']]} r={x['r']}")
    if ours.empty:
        _empty(ax)
    if paper.empty:
        _note(ax, f"no paper curve for {pn}", "upper right")
        return
    same = shares_axis(list(ours["loss"]), list(paper["loss"]))
    tgt = ax if same else _twin(ax, f"paper training loss ({pn})")
    for x, s in _row_groups(paper, "run_id"):
        tgt.plot(s["epoch"], s["loss"], color=method_color(x["method"], x["r"], ranks), **PAPER_STYLE,
                 label="paper (digitised)" + ("" if same else ", right axis"))


# ---- Figure 5 --------------------------------------------------------------------------------
def figure5(config: dict, results: Results, missing: Missing):
    runs = entry_runs(config, "figure5")
    pans = panels(runs)
    data = figure5_data(config, results, missing)
    quoted = figure5_quoted(config)
    side = quoted[quoted["placement"] == "side"]
    ncols = len(dict.fromkeys(m for m, _ in pans)) or 1
    n = max(len(pans), 1) + (1 if len(side) else 0)
    fig, axes, _ = _grid(n, n if len(side) and n <= 4 else ncols + (1 if len(side) else 0), w=3.6, h=2.9)
    for ax, (model, task) in zip(axes, pans):
        q = quoted[(quoted["placement"] == "overlay") & (quoted["model"] == paper_name(config, model))
                   & (quoted["task"] == task)]
        _forgetting_panel(ax, data[(data["model"] == model) & (data["task"] == task)], q,
                          panel_runs(runs, model, task))
        ax.set_title(_panel_title(config, model, task))
        ax.set_xlabel("Epoch (0 = base model)")
        ax.set_ylabel("Avg. accuracy (%)\nHellaSwag, WinoGrande, ARC-C")
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    if not pans:
        _empty(axes[0])
    if len(side):
        _quoted_panel(axes[-1], side)
    _legend_below(fig, title=_gaps_text(forgetting_gaps(data)) or None)
    _suptitle(fig, "Figure 5 — Forgetting: average accuracy on HellaSwag, WinoGrande and "
                   "ARC-Challenge after each epoch", missing)
    return fig


def _forgetting_panel(ax, d: pd.DataFrame, quoted: pd.DataFrame, runs) -> None:
    """One (model, task): each run's curve from the base model (epoch 0), the paper's quotes."""
    ranks = sorted({r.spec.r for r in runs})
    base = list(d[d["method"] == "base"]["accuracy"])
    drawn = False
    for run in runs:
        s = d[d["run_id"] == run.id]
        x, y = [0] * len(base) + list(s["epoch"]), base + list(s["accuracy"])
        if x:
            ax.plot(x, y, "o-", color=method_color(run.spec.method, run.spec.r, ranks),
                    label=f"{METHOD_NAMES[run.spec.method]} r={run.spec.r}")
            drawn = True
    if base:
        ax.plot([0], base, "D", color="0.3", label="base model (epoch 0)")
    if not drawn:
        _empty(ax)
    for _, x in quoted.iterrows():
        ax.plot([x["epoch"]], [x["accuracy"]], linestyle="none", color=method_color(x["method"].lower()),
                label="paper (quoted in text)", **PAPER_MARKER)
        ax.annotate(f"paper {x['method']} r={x['rank']}", (x["epoch"], x["accuracy"]), fontsize=6.5,
                    xytext=(-7, 0), textcoords="offset points", ha="right", va="center")


def _quoted_panel(ax, side: pd.DataFrame) -> None:
    """The paper's quoted values that none of our panels stands in for, as points."""
    xs: dict = {}
    for _, x in side.iterrows():
        label = f"{x['model']}\n{TASK_NAMES.get(x['task'], x['task'])}, r={x['rank']}"
        xi = xs.setdefault(label, len(xs)) + (-0.12 if x["method"] == "LoRA" else 0.12)
        ax.plot([xi], [x["accuracy"]], linestyle="none", color=method_color(x["method"].lower()),
                label=f"paper: {x['method']}", **PAPER_MARKER)
        ax.annotate(f"{x['accuracy']:.1f}", (xi, x["accuracy"]), fontsize=7, ha="center",
                    xytext=(0, 6), textcoords="offset points")
    ax.set_xticks(range(len(xs)), list(xs), fontsize=7)
    ax.set_xlim(-0.6, len(xs) - 0.4)
    ax.set_ylabel("Avg. accuracy (%)")
    epochs = sorted(set(side["epoch"]))
    ax.set_title(f"paper (quoted in §4.3), epoch {', '.join(map(str, epochs))}")
    ax.margins(y=0.2)


def _gaps_text(gaps: pd.DataFrame) -> str:
    lines = []
    for _, g in gaps.iterrows():
        ptxt = "" if pd.isna(g["paper"]) else f"; paper (r=8 vs 32, epoch 8): {g['paper']:.2f}"
        rs = ", ".join(f"r={a} vs {b}" for a, b in g["pairs"])
        lines.append(f"{METHOD_NAMES[g['method']]}: mean |accuracy gap| {rs} at the last epoch: "
                     f"ours {g['ours']:.2f}{ptxt}")
    return "\n".join(lines)


# ---- Figure 6 --------------------------------------------------------------------------------
def _bar(ax, x: float, val, method: str, hatch, label: str, width: float) -> None:
    if val is None:
        ax.text(x, 0, "—", ha="center", va="bottom", color=MISSING_COLOR)
        return
    b = ax.bar(x, val, width, color=method_color(method), alpha=0.45 if hatch else 0.9,
               hatch=hatch, edgecolor="black" if hatch else "none", linewidth=0.4, label=label)
    ax.bar_label(b, fmt="%.1f", fontsize=6.5, padding=1)


def figure6(config: dict, results: Results, missing: Missing):
    runs = entry_runs(config, "figure6")
    models = list(dict.fromkeys(r.spec.model for r in runs))
    methods = [m for m in ("lora", "rasa") if any(r.spec.method == m for r in runs)]
    data = figure6_data(config, results, missing)
    ours_d, paper_d = data[data["source"] == "ours"], data[data["source"] == "paper"]
    ours = {(x.model, x.method): x.accuracy for x in ours_d.itertuples()}
    paper = {(x.model, x.method): x.accuracy for x in paper_d.itertuples()}
    paper_models = list(dict.fromkeys(paper_d["model"]))
    r = ",".join(map(str, sorted({run.spec.r for run in runs})))
    same = shares_axis(list(ours.values()), list(paper.values()))
    fig, axes = plt.subplots(1, 1 if same else 2, figsize=(8.5 if same else 10, 3.6), squeeze=False,
                             gridspec_kw=None if same else {"width_ratios": [max(len(models), 1), len(paper_models)]})
    axes = list(axes.ravel())
    groups = [(m, paper_name(config, m)) for m in models]
    if same:  # one axis: ours solid, the paper's hatched, per model; paper-only models after
        ax, w, labels = axes[0], 0.2, []
        for i, (m, pn) in enumerate(groups):
            for j, meth in enumerate(methods):
                _bar(ax, i + (j - 1.5) * w, ours.get((m, meth)), meth, None, f"ours: {METHOD_NAMES[meth]}", w)
                _bar(ax, i + (j + 0.5) * w, paper.get((pn, meth)), meth, "//", f"paper: {METHOD_NAMES[meth]}", w)
            labels.append(model_label(config, m).replace(" (", "\n("))
        extra = [pm for pm in paper_models if pm not in {g[1] for g in groups}]
        for i, pn in enumerate(extra, start=len(groups)):
            for j, meth in enumerate(methods):
                _bar(ax, i + (j - 0.5) * w, paper.get((pn, meth)), meth, "//", f"paper: {METHOD_NAMES[meth]}", w)
            labels.append(f"{pn}\n(paper only)")
        ax.set_xticks(range(len(labels)), labels, fontsize=7.5)
        ax.set_title(f"ours (solid) and paper (hatched), r={r}")
    else:  # side panel: ours on its own scale, the paper's figure beside it
        w = 0.2
        for ax, names, vals, hatch, who in ((axes[0], models, ours, None, "ours"),
                                            (axes[1], paper_models, paper, "//", "paper")):
            for i, m in enumerate(names):
                for j, meth in enumerate(methods):
                    _bar(ax, i + (j - 0.5) * w * 1.5, vals.get((m, meth)), meth, hatch,
                         f"{who}: {METHOD_NAMES[meth]}", w * 1.5)
        axes[0].set_xticks(range(len(models)), [model_label(config, m).replace(" (", "\n(") for m in models],
                           fontsize=7.5)
        axes[0].set_title(f"ours (r={r}, {runs[0].spec.epochs if runs else '?'} epochs)")
        axes[1].set_xticks(range(len(paper_models)), paper_models, fontsize=7.5)
        axes[1].set_title("paper (Figure 6 data labels; r=4, 2 epochs)")
    for a in axes:
        a.set_ylabel("MATH accuracy, LAST (%)")
        a.grid(axis="x", visible=False)
        a.margins(y=0.12)
    if not ours:
        _note(axes[0], "no results yet", "upper left")
    _legend_below(fig, 4)
    _suptitle(fig, "Figure 6 — MATH accuracy of scaled models (LAST epoch): LoRA vs RaSA", missing)
    return fig


# ---- Figure 7 --------------------------------------------------------------------------------
def figure7(config: dict, results: Results, missing: Missing):
    runs = entry_runs(config, "figure7")
    models = list(dict.fromkeys(r.spec.model for r in runs))
    data = figure7_data(config, results, missing)
    fig, axes, _ = _grid(max(len(models), 1), 3, w=4.2, h=3.2)
    if not models:
        _empty(axes[0])
    for ax, model in zip(axes, models):
        mruns = [r for r in runs if r.spec.model == model]
        _fraction_panel(ax, data[data["model"] == model], mruns, paper_name(config, model))
        fracs = sorted({r.spec.fraction * 100 for r in mruns})
        ax.set_xticks(fracs, [f"{f:g}%" for f in fracs])
        ax.set_xlabel("Training data")
        ax.set_ylabel("MATH accuracy, LAST (%)")
        ax.set_title(f"{model_label(config, model)} | Math, r={mruns[0].spec.r}, {mruns[0].spec.epochs} epochs")
    _legend_below(fig, 2)
    _suptitle(fig, "Figure 7 — MATH accuracy vs amount of training data", missing)
    return fig


def _fraction_panel(ax, d: pd.DataFrame, runs, pn: str) -> None:
    """One model: our accuracy per data fraction and method, the paper's inferred points."""
    ours, paper = d[d["source"] == "ours"], d[d["source"] == "paper"]
    for method in dict.fromkeys(r.spec.method for r in runs):
        pts = sorted(zip(*(ours[ours["method"] == method][c] for c in ("data_pct", "accuracy"))))
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=method_color(method),
                    label=f"ours: {METHOD_NAMES[method]} r={runs[0].spec.r}")
    if ours.empty:
        _empty(ax)
    if paper.empty:
        return
    same = shares_axis(list(ours["accuracy"]), list(paper["accuracy"]))
    tgt = ax if same else _twin(ax, f"paper MATH accuracy (%), {pn}")
    for _, x in paper.iterrows():
        tgt.plot([x["data_pct"]], [x["accuracy"]], linestyle="none", color=method_color(x["method"]),
                 label=f"paper: {METHOD_NAMES[x['method']]} (inferred = Table 2)"
                 + ("" if same else ", right axis"), **PAPER_MARKER)
    if not same:
        tgt.set_ylim(paper["accuracy"].min() - 3, paper["accuracy"].max() + 3)


# ---- mechanism check -------------------------------------------------------------------------
def mechanism(config: dict, results: Results, missing: Missing):
    mc = config["study"].get("mechanism", {})
    df = mechanism_data(config, results, missing)
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for (method, r, k), g in (df.groupby(["method", "r", "k"], sort=True) if len(df) else []):
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
