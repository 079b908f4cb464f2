"""Tables 1 and 2 in the paper's layout: ours, the paper's, and Δ = ours − paper.

Layout (the paper's): one row per (r, method) — FFT first (Table 2), then VeRA with its own r,
then for each r the methods in the order LoRA, MoRA, OLoRA, AdaLoRA, PriLoRA, RaSA — and, per
model (labelled by its ``paper_name``), the columns Time, P@1 BEST/LAST and P@10 BEST/LAST
(Table 1) or ACC BEST/LAST (Table 2); ``# Trainable Param.`` (and ``# Extra Param.``, Table 2) is
one column for all models, as in the paper.

Choices (documented in results/README.md):

- BEST = maximum over the run's epochs 1..E, LAST = the value at epoch E. P@1 and P@10 are
  selected *independently* (P@10 BEST may come from another epoch than P@1 BEST); the paper does
  not say, and its VeRA row (P@1 BEST = LAST = 48.8, P@10 BEST 66.5 > LAST 64.2) is consistent
  with this. BEST is shown only when every epoch 1..E has been evaluated.
- Time = ``train_hours`` of runs.csv (wall-clock training time), as in the paper.
- Marks, applied to our tables by rule: *italic* = best of its rank group (rows sharing r; FFT and
  VeRA are groups of their own and, being alone, are never italic); **bold** = best of its model
  column over every row except FFT (the paper never marks FFT, although FFT is higher on MATH).
  Only P@k / ACC columns are marked; values are compared at the displayed precision (one
  decimal), and ties are all marked (the paper marks both 56.9s in Table 1, Llama P@1 LAST).
  Applied to the paper's own numbers this rule reproduces the paper's marks except in Table 2,
  Llama ACC LAST, where the paper bolds RaSA r=32 (29.6) although RaSA r=16 has 29.8; the paper
  view lists such differences in its notes (computed, see :func:`mark_differences`).
- The paper view carries the paper's marks as printed (``paper_marks.csv``).
- ``# Extra Param.``: 0 is shown as "—" (none), as in the paper.
- With ``study.<table>.base: true`` (not the paper's: its tables have none) a "Base model" row
  above the methods shows each model untrained (epoch 0, ``<model>__base``; BEST = LAST = that
  one evaluation), with no parameters, no time, no marks and no paper counterpart.
- Missing cells (no run yet, or not reported by the paper) are "—" in Markdown and LaTeX and
  empty in CSV.

This module holds the table model (:class:`TableSpec`, :class:`Row`, :class:`Table`) and the
builders (ours, the paper's, Δ); :mod:`rasa.report.table_format` writes them out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from rasa import method_registry
from rasa.evaluation.passk import reported_ks
from rasa.method_registry import LABELS as METHOD_NAMES
from rasa.report import reference
from rasa.report.entries import base_run_id, entry_runs, paper_name
from rasa.report.results import Missing, Results
from rasa.report.table_format import fmt, write_table

BASE = "base"   # the Row.method of the base model's row (study.<table>.base)


def _own_row(method: str) -> bool:
    """A row of its own whatever r (FFT, VeRA, the base model)."""
    return method == BASE or method_registry.get(method).own_row


def _has_rank(method: str) -> bool:
    return method != BASE and method_registry.get(method).has_rank


@dataclass(frozen=True)
class Column:
    key: str          # the paper_numbers.csv metric name (pass@1_best, train_time_h, ...)
    header: str       # as printed in the paper
    kind: str         # metric | time | params
    shared: bool = False  # one column for all models

    @property
    def csv_unit(self) -> str:
        return {"time": " (h)", "params": " (M)"}.get(self.kind, "")


@dataclass(frozen=True)
class TableSpec:
    name: str                      # table1 | table2 (the study entry and paper_numbers table)
    output: str                    # file stem
    caption: str
    benchmark: str
    scorer: str
    metrics: tuple[tuple[str, str], ...]   # (metrics.csv metric, paper_numbers prefix)
    columns: tuple[Column, ...]


def _metric_columns(metrics, header_of) -> tuple[Column, ...]:
    cols = []
    for _, prefix in metrics:
        for which in ("best", "last"):
            cols.append(Column(f"{prefix}_{which}", f"{header_of[prefix]} {which.upper()}", "metric"))
    return tuple(cols)


_T1_METRICS = (("pass@1", "pass@1"), ("pass@10", "pass@10"))
_T2_METRICS = (("accuracy", "acc"),)
TABLE1 = TableSpec(
    "table1", "table1",
    "Performance on the code generation task (i.e. HumanEval+)", "humanevalplus", "plus",
    _T1_METRICS,
    (Column("trainable_params_M", "# Trainable Param.", "params", shared=True),
     Column("train_time_h", "Time", "time"))
    + _metric_columns(_T1_METRICS, {"pass@1": "P@1", "pass@10": "P@10"}),
)
_T2_COLUMNS = (
    (Column("trainable_params_M", "# Trainable Param.", "params", shared=True),
     Column("extra_params_M", "# Extra Param.", "params", shared=True),
     Column("train_time_h", "Time", "time"))
    + _metric_columns(_T2_METRICS, {"acc": "ACC"})
)
TABLE2 = TableSpec("table2", "table2",
                   "Performance on mathematical reasoning task (i.e. MATH)", "math", "paper",
                   _T2_METRICS, _T2_COLUMNS)
TABLE2_CORRECTED = TableSpec(
    "table2", "table2_corrected",
    "Performance on mathematical reasoning task (i.e. MATH), corrected answer checker",
    "math", "corrected", _T2_METRICS, _T2_COLUMNS)
TABLES = {"table1": TABLE1, "table2": TABLE2}


@dataclass(frozen=True, order=True)
class Row:
    method: str   # our key: lora, rasa, vera, fft, ...
    r: int        # 0 for FFT
    k: int = 0

    @property
    def group(self) -> tuple:
        return ("own", self.method) if _own_row(self.method) else ("rank", self.r)

    @property
    def align(self) -> tuple:
        """The key that pairs our row with the paper's: VeRA and FFT whatever their r."""
        return (self.method, None) if _own_row(self.method) else (self.method, self.r)

    @property
    def r_label(self) -> str:
        return str(self.r) if _has_rank(self.method) else "–"

    @property
    def paper_rank(self) -> str:
        return str(self.r) if _has_rank(self.method) else "full"

    @property
    def label(self) -> str:
        return "Base model" if self.method == BASE else METHOD_NAMES.get(self.method, self.method)


def sort_rows(rows) -> list[Row]:
    def key(row: Row):
        if row.method == BASE:
            return (-1, 0, 0, 0)
        order = method_registry.names().index(row.method)
        own = method_registry.get(row.method).own_row
        return (0 if own else 1, order if own else row.r, order, row.k)
    return sorted(set(rows), key=key)


@dataclass
class Table:
    spec: TableSpec
    view: str                       # ours | paper | delta
    rows: list[Row]
    models: list[str]               # column-group labels (paper model names)
    cells: dict = field(default_factory=dict)   # (row, model|None, key) -> float | str
    marks: dict = field(default_factory=dict)   # (row, model, key) -> italic|bold|bold+italic
    notes: list[str] = field(default_factory=list)

    # ---- access ----------------------------------------------------------------------------
    def get(self, row: Row, model: str | None, key: str):
        col = self.column(key)
        return self.cells.get((row, None if col.shared else model, key))

    def column(self, key: str) -> Column:
        return next(c for c in self.spec.columns if c.key == key)

    @property
    def shared(self) -> list[Column]:
        return [c for c in self.spec.columns if c.shared]

    @property
    def per_model(self) -> list[Column]:
        return [c for c in self.spec.columns if not c.shared]

    def find_row(self, method: str, r: int | None = None) -> Row:
        """The row of ``method`` (our key) at rank ``r`` (ignored for FFT and VeRA)."""
        for row in self.rows:
            if row.method == method and (_own_row(method) or row.r == r):
                return row
        raise KeyError((method, r))


# ---- marks -----------------------------------------------------------------------------------
def rule_marks(table: Table) -> dict:
    """The paper's convention applied by rule (see the module docstring)."""
    marks: dict = {}
    rows_in_group: dict = {}
    for row in table.rows:
        rows_in_group.setdefault(row.group, []).append(row)
    for m in table.models:
        for c in table.per_model:
            if c.kind != "metric":
                continue
            vals = {row: round(v, 1) for row in table.rows
                    if isinstance(v := table.cells.get((row, m, c.key)), float) and not math.isnan(v)}
            for group, rows in rows_in_group.items():
                present = [vals[r] for r in rows if r in vals]
                if len(rows) < 2 or not present:
                    continue
                for r in rows:
                    if r in vals and vals[r] == max(present):
                        marks[(r, m, c.key)] = "italic"
            pool = [v for r, v in vals.items() if _has_rank(r.method)]
            if pool:
                for r, v in vals.items():
                    if _has_rank(r.method) and v == max(pool):
                        marks[(r, m, c.key)] = "bold+italic" if marks.get((r, m, c.key)) else "bold"
    return marks


# ---- building --------------------------------------------------------------------------------
_NOTES_COMMON = [
    "*italic*: best per rank; **bold**: best per model (P@k/ACC columns only; compared at one "
    "decimal, ties all marked; FFT is never marked; VeRA, with its own r, is a group of its own).",
    "BEST = maximum over epochs 1..E, shown only once every epoch is evaluated; LAST = epoch E. "
    "Each metric's BEST is taken independently (P@1 BEST and P@10 BEST may come from different "
    "epochs).",
    "Time = wall-clock training hours (runs.csv train_hours); # Param. in millions (M), "
    "thousands (K) or billions (B).",
    "— = missing (run not finished or not evaluated yet, or not reported by the paper); "
    "in # Extra Param. also 'none'.",
]


def build_ours(spec: TableSpec, config: dict, results: Results, missing: Missing) -> Table:
    runs = [r for r in entry_runs(config, spec.name) if r.spec.fraction == 1.0]
    models = []
    for run in runs:
        if run.spec.model not in models:
            models.append(run.spec.model)
    labels = {m: paper_name(config, m) for m in models}
    if len(set(labels.values())) != len(labels):
        raise ValueError(f"study.{spec.name}: two models share a paper_name: {labels}")
    base = config["study"][spec.name].get("base", False)
    rows = sort_rows([Row(r.spec.method, r.spec.r, r.spec.k) for r in runs]
                     + ([Row(BASE, 0)] if base else []))
    table = Table(spec, "ours", rows, [labels[m] for m in models])
    metrics = computed_metrics(spec, config)
    if base:
        _base_cells(table, spec, metrics, models, labels, results, missing)
    shared: dict = {}
    for run in runs:
        s, label = run.spec, labels[run.spec.model]
        row = Row(s.method, s.r, s.k)
        info = results.run_row(run.id, missing)
        if info is not None:
            table.cells[(row, label, "train_time_h")] = _float(info["train_hours"])
            shared.setdefault((row, "trainable_params_M"), {})[label] = _float(info["trainable_params"]) / 1e6
            extra = _float(info["extra_params"])
            shared.setdefault((row, "extra_params_M"), {})[label] = math.nan if extra == 0 else extra / 1e6
        for metric, prefix in metrics:
            best, last = results.best_last(run.id, s.epochs, spec.benchmark, metric, spec.scorer, missing)
            table.cells[(row, label, f"{prefix}_best")] = best
            table.cells[(row, label, f"{prefix}_last")] = last
    keys = {c.key for c in table.shared}
    for (row, key), per_model in shared.items():
        if key not in keys:
            continue
        vals = [v for v in per_model.values() if not math.isnan(v)]
        if not vals:
            continue
        if all(abs(v - vals[0]) <= 1e-12 for v in vals):
            table.cells[(row, None, key)] = vals[0]
        else:  # models of different sizes: list them in column order
            table.cells[(row, None, key)] = " / ".join(
                fmt(per_model.get(label, math.nan), "params") for label in table.models)
    table.marks = rule_marks(table)
    mapping = ", ".join(f"{labels[m]} = {m}" for m in models if labels[m] != m)
    scorer = {"plus": "HumanEval+ (base + plus tests, scorer `plus`)",
              "paper": "MATH, the authors' sympy answer checker (scorer `paper`)",
              "corrected": "MATH, our corrected answer checker (scorer `corrected`)"}[spec.scorer]
    table.notes = ([f"Columns are named by the paper's model each of ours stands in for: {mapping}."]
                   if mapping else []) + [f"Benchmark: {scorer}."] + _NOTES_COMMON + (
        [_base_note(config, spec)] if base else []) + _not_computed_notes(spec, config, metrics)
    if missing.items:
        table.notes.append(f"{len(missing.items)} input(s) missing (partial rendering).")
    return table


def _base_cells(table: Table, spec: TableSpec, metrics: list[tuple[str, str]], models: list[str],
                labels: dict, results: Results, missing: Missing) -> None:
    """The base model's row: its one evaluation (epoch 0) is both BEST and LAST."""
    for model in models:
        for metric, prefix in metrics:
            best, last = results.best_last(base_run_id(model), 0, spec.benchmark, metric, spec.scorer,
                                           missing, first=0)
            table.cells[(Row(BASE, 0), labels[model], f"{prefix}_best")] = best
            table.cells[(Row(BASE, 0), labels[model], f"{prefix}_last")] = last


def computed_metrics(spec: TableSpec, config: dict) -> list[tuple[str, str]]:
    """The table's metrics the study's evaluation produces: pass@k only for k <= the
    samples per problem (``benchmarks.humanevalplus.n_samples``); the others stay "—"."""
    if spec.benchmark != "humanevalplus":
        return list(spec.metrics)
    ks = reported_ks(config["benchmarks"]["humanevalplus"]["n_samples"])
    return [(m, p) for m, p in spec.metrics if int(m.removeprefix("pass@")) in ks]


def _not_computed_notes(spec: TableSpec, config: dict, computed: list[tuple[str, str]]) -> list[str]:
    return [f"{metric}: not computed (benchmarks.{spec.benchmark}.n_samples = "
            f"{config['benchmarks'][spec.benchmark]['n_samples']} samples per problem, "
            f"fewer than k), shown as —." for metric, prefix in spec.metrics
            if (metric, prefix) not in computed]


def _base_note(config: dict, spec: TableSpec) -> str:
    prompt = (config["benchmarks"][spec.benchmark].get("base_prompt", "alpaca")
              if spec.benchmark == "humanevalplus" else "alpaca")
    how = {"alpaca": "the fine-tuned runs' Alpaca prompt",
           "chat": "its chat template, code taken from the reply's code block"}[prompt]
    return (f"Base model: each model untrained (epoch 0; BEST = LAST = that one evaluation), "
            f"prompted with {how}; not marked, no counterpart in the paper.")


def build_paper(spec: TableSpec) -> Table:
    """The paper's table as printed: its values (paper_numbers.csv) and marks (paper_marks.csv)."""
    ref = reference.paper_rows(spec.name)
    models = list(dict.fromkeys(ref["model"]))
    rows = {}
    for _, x in ref.iterrows():
        method = method_registry.by_label(x["method"])
        r = 0 if x["rank"] == "full" else int(x["rank"])
        rows[(x["method"], x["rank"])] = Row(method.name, r, method.k_for(r))
    table = Table(spec, "paper", sort_rows(rows.values()), models)
    for _, x in ref.iterrows():
        row = rows[(x["method"], x["rank"])]
        metric = "trainable_params_M" if x["metric"] == "trainable_params" else x["metric"]
        col = next((c for c in spec.columns if c.key == metric), None)
        if col is None:
            raise ValueError(f"paper_numbers.csv: {spec.name} metric {x['metric']!r} has no column")
        val = x["value"] if math.isnan(x["number"]) else float(x["number"])
        key = (row, None if col.shared else x["model"], metric)
        if col.shared and key in table.cells and table.cells[key] != val:
            raise ValueError(f"paper_numbers.csv: {spec.name} {x['method']} r={x['rank']}: "
                             f"{metric} differs between models")
        table.cells[key] = val
    for _, x in reference.paper_marks().iterrows():
        if x["table"] == spec.name:
            table.marks[(rows[(x["method"], x["rank"])], x["model"], x["metric"])] = x["mark"]
    table.notes = [
        "Values: paper_numbers.csv (source: the paper); marks as printed in the paper "
        "(paper_marks.csv): *italic* best per rank, **bold** best per model.",
        "Time = wall-clock training hours on 1×8 A100-40G; # Param. in millions.",
        "— = not reported by the paper (FFT time; extra parameters of methods that use none).",
    ]
    for (row, m, key), (printed, rule) in mark_differences(table).items():
        table.notes.append(
            f"Mark as printed differs from the rule: {m} {table.column(key).header}, {row.label} "
            f"r={row.r_label}: paper {printed or 'none'}, rule {rule or 'none'}.")
    for m in models:
        for _, prefix in spec.metrics:
            for row in table.rows:
                best = table.cells.get((row, m, f"{prefix}_best"))
                last = table.cells.get((row, m, f"{prefix}_last"))
                if isinstance(best, float) and isinstance(last, float) and best < last:
                    table.notes.append(
                        f"As printed, {m} {row.label} r={row.r_label} has BEST {best:.1f} < LAST "
                        f"{last:.1f} (impossible if BEST is the maximum over epochs including the "
                        "last; no run can reproduce both).")
    return table


def mark_differences(table: Table) -> dict:
    """Cells whose mark in ``table.marks`` differs from :func:`rule_marks` on the same values:
    ``(row, model, key) -> (mark in table, rule's mark)`` (``None`` = unmarked)."""
    rule = rule_marks(table)
    return {k: (table.marks.get(k), rule.get(k)) for k in sorted(set(rule) | set(table.marks),
                                                                     key=str)
            if table.marks.get(k) != rule.get(k)}


def build_delta(ours: Table, paper: Table) -> Table:
    """Δ = ours − paper, cell by cell, on our rows and models; missing where either is missing
    or not a number. Our rows meet the paper's by (method, r); VeRA and FFT whatever their r."""
    delta = Table(ours.spec, "delta", list(ours.rows), list(ours.models))
    by_align = {row.align: row for row in paper.rows}
    for row in ours.rows:
        prow = by_align.get(row.align)
        for c in ours.spec.columns:
            for m in ([None] if c.shared else ours.models):
                a = ours.cells.get((row, m, c.key))
                b = None
                if prow is not None:
                    if c.shared:
                        b = paper.cells.get((prow, None, c.key))
                    elif m in paper.models:
                        b = paper.cells.get((prow, m, c.key))
                if isinstance(a, float) and isinstance(b, float) and not (math.isnan(a) or math.isnan(b)):
                    delta.cells[(row, m, c.key)] = a - b
    ours_vera = [str(r.r) for r in ours.rows if r.method == "vera"]
    paper_vera = [str(r.r) for r in paper.rows if r.method == "vera"]
    delta.notes = [
        "Δ = ours − paper, cell by cell (our run vs the paper's column of the model it stands in "
        "for); — where either side is missing or not a number.",
    ] + ([f"VeRA rows are compared whatever their r (each uses its own rank: ours r="
          f"{', '.join(ours_vera)}, paper r={', '.join(paper_vera)})."]
         if ours_vera and paper_vera else []) + [
        "Time Δ in hours; # Param. Δ in millions; metric Δ in percentage points.",
    ] + [n for n in ours.notes if n.startswith("Columns are named")]
    return delta


def _float(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def render_table(name: str, config: dict, results_root: str | Path, partial: bool = False,
                 out_dir: str | Path | None = None) -> list[Path]:
    """Write ``<name>{,_paper,_delta}.{csv,md,tex}`` (and ``table2_corrected.*``) under
    ``<results>/tables``; raises :class:`MissingResultsError` when inputs are missing unless
    ``partial``."""
    spec = TABLES[name]
    results = Results(results_root)
    out_dir = Path(out_dir) if out_dir else Path(results_root) / "tables"
    missing = Missing(name, partial)
    ours = build_ours(spec, config, results, missing)
    extra = []
    if name == "table2":
        extra.append(build_ours(TABLE2_CORRECTED, config, results, missing))
    missing.check()
    paper = build_paper(spec)
    paths = write_table(ours, out_dir, spec.output)
    paths += write_table(paper, out_dir, f"{spec.output}_paper")
    paths += write_table(build_delta(ours, paper), out_dir, f"{spec.output}_delta")
    for t in extra:
        paths += write_table(t, out_dir, t.spec.output)
    return paths
