"""How a :class:`~rasa.report.tables.Table` is written: cell text, CSV, Markdown and LaTeX.

Numbers are shown at the paper's precision where their size allows (:func:`fmt`); missing cells
are "—" in Markdown and LaTeX and empty in CSV; marks are *italic* / **bold** (Markdown) or
``\\textit`` / ``\\textbf`` (LaTeX).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from rasa.io import atomic_open, write_text_atomic

if TYPE_CHECKING:
    from rasa.report.tables import Column, Row, Table

MISSING = "—"


def is_missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def csv_value(v):
    """A cell as written to CSV: empty when missing, floats to 6 decimals."""
    if is_missing(v):
        return None
    return round(v, 6) if isinstance(v, float) else v


def fmt(v, kind: str, delta: bool = False) -> str:
    """Display text of one cell: the paper's precision where the size allows."""
    if is_missing(v):
        return MISSING
    if isinstance(v, str):
        return v
    sign = ""
    if delta:
        sign = "+" if v > 0 else "−" if v < 0 else ""
        v = abs(v)
    if kind == "metric":
        text = f"{v:.1f}"
    elif kind == "time":          # hours; tiny runs take seconds
        text = (f"{v:.1f}h" if v >= 0.95 or v == 0 else f"{v * 60:.1f}min" if v * 60 >= 0.95
                else f"{v * 3600:.0f}s")
    elif kind == "params":        # millions; tiny adapters have thousands
        text = (f"{v / 1000:.1f}B" if v >= 999.95 else f"{v:.1f}M" if v >= 0.095 or v == 0
                else f"{v * 1000:.1f}K" if v * 1000 >= 0.95 else f"{v * 1e6:.0f}")
    else:
        text = str(v)
    return sign + text


def md_mark(text: str, mark: str | None) -> str:
    if not mark or text == MISSING:
        return text
    return {"italic": f"*{text}*", "bold": f"**{text}**", "bold+italic": f"***{text}***"}[mark]


def tex(text: str) -> str:
    """``text`` with LaTeX's special characters escaped."""
    for a, b in (("\\", "\\textbackslash{}"), ("&", "\\&"), ("%", "\\%"), ("#", "\\#"),
                 ("_", "\\_"), ("$", "\\$"), ("≙", "for"), ("−", "$-$"), ("Δ", "$\\Delta$")):
        text = text.replace(a, b)
    return text


def tex_mark(text: str, mark: str | None) -> str:
    if not mark or text == MISSING:
        return text
    return {"italic": f"\\textit{{{text}}}", "bold": f"\\textbf{{{text}}}",
            "bold+italic": f"\\textbf{{\\textit{{{text}}}}}"}[mark]


def cell_text(table: Table, row: Row, model: str | None, col: Column) -> str:
    v = table.cells.get((row, None if col.shared else model, col.key))
    return fmt(v, col.kind, delta=table.view == "delta")


def title(table: Table) -> str:
    n = table.spec.name[-1]
    which = {"ours": "ours", "paper": "the paper's numbers", "delta": "Δ = ours − paper"}[table.view]
    scorer = " (corrected answer checker)" if table.spec.scorer == "corrected" else ""
    return f"Table {n}{scorer} — {which}"


def to_frame(table: Table) -> pd.DataFrame:
    """The CSV layout: r, Method, shared columns, then ``<model> <column>`` per model."""
    records = []
    for row in table.rows:
        rec = {"r": None if row.r_label == "–" else row.r, "Method": row.label}
        for c in table.shared:
            rec[c.header + c.csv_unit] = csv_value(table.cells.get((row, None, c.key)))
        for m in table.models:
            for c in table.per_model:
                rec[f"{m} {c.header}{c.csv_unit}"] = csv_value(table.cells.get((row, m, c.key)))
        records.append(rec)
    df = pd.DataFrame.from_records(records)
    df["r"] = df["r"].astype("Int64")
    return df


def to_markdown(table: Table) -> str:
    head = ["r", "Method"] + [c.header for c in table.shared] + [
        f"{m} {c.header}" for m in table.models for c in table.per_model]
    lines = [f"# {title(table)}", "", f"*{table.spec.caption}.*", "",
             "| " + " | ".join(head) + " |",
             "|" + "|".join(["---", "---"] + ["---:"] * (len(head) - 2)) + "|"]
    for row in table.rows:
        cells = [row.r_label, row.label]
        cells += [cell_text(table, row, None, c) for c in table.shared]
        for m in table.models:
            for c in table.per_model:
                cells.append(md_mark(cell_text(table, row, m, c), table.marks.get((row, m, c.key))))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *[f"- {n}" for n in table.notes], ""]
    return "\n".join(lines)


def _latex_head(table: Table) -> list[str]:
    """From ``\\begin{table}`` to the header's ``\\midrule``: model groups over their columns."""
    ns, npm = len(table.shared), len(table.per_model)
    spec = "rl" + "r" * ns + ("r" * npm) * len(table.models)
    out = ["\\begin{table}[t]", "\\centering", "\\small", "\\setlength{\\tabcolsep}{3pt}",
           f"\\caption{{{tex(title(table))}: {tex(table.spec.caption)}.}}",
           f"\\label{{tab:{table.spec.output}-{table.view}}}",
           f"\\begin{{tabular}}{{{spec}}}", "\\toprule"]
    first = 3 + ns
    groups, rules = [" & " * (1 + ns)], []
    for i, m in enumerate(table.models):
        lo = first + i * npm
        groups.append(f"\\multicolumn{{{npm}}}{{c}}{{{tex(m)}}}")
        rules.append(f"\\cmidrule(lr){{{lo}-{lo + npm - 1}}}")
    out.append(groups[0] + " & ".join(groups[1:]) + " \\\\")
    out.append(" ".join(rules))
    out.append(" & ".join(["$r$", "Method"] + [tex(c.header) for c in table.shared]
                          + [tex(c.header) for _ in table.models for c in table.per_model])
               + " \\\\")
    out.append("\\midrule")
    return out


def to_latex(table: Table) -> str:
    out = [f"% {title(table)}. Generated by `python -m rasa.report`; needs \\usepackage{{booktabs}}."]
    out += _latex_head(table)
    prev = None
    for row in table.rows:
        if prev is not None and row.group != prev:
            out.append("\\midrule")
        prev = row.group
        cells = [tex(row.r_label), tex(row.label)]
        cells += [tex(cell_text(table, row, None, c)) for c in table.shared]
        for m in table.models:
            for c in table.per_model:
                cells.append(tex_mark(tex(cell_text(table, row, m, c)), table.marks.get((row, m, c.key))))
        out.append(" & ".join(cells) + " \\\\")
    out += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    out += [f"% {n}" for n in table.notes]
    return "\n".join(out) + "\n"


def write_table(table: Table, out_dir: str | Path, stem: str) -> list[Path]:
    """``<stem>.csv``, ``.md`` and ``.tex`` under ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.{ext}" for ext in ("csv", "md", "tex")]
    with atomic_open(paths[0]) as fh:
        to_frame(table).to_csv(fh, index=False, lineterminator="\n")
    write_text_atomic(paths[1], to_markdown(table))
    write_text_atomic(paths[2], to_latex(table))
    return paths
