"""One matplotlib style for every figure, and deterministic saving (PNG + PDF).

Reruns give byte-identical files where matplotlib allows: the Agg backend, a fixed dpi, a fixed
``svg.hashsalt``, no creation date in PDF metadata, no software tag in PNG metadata.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

from rasa import method_registry
from rasa.io import atomic_open

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DPI = 150
RC = {
    "figure.dpi": 100,
    "savefig.dpi": DPI,
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "legend.fontsize": 7.5,
    "legend.framealpha": 0.85,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "lines.linewidth": 1.6,
    "lines.markersize": 4.5,
    "figure.constrained_layout.use": True,
    "svg.hashsalt": "rasa-peft-report",
    "pdf.fonttype": 42,
    "path.simplify": False,
}

PAPER_STYLE = {"linestyle": "--", "alpha": 0.45, "linewidth": 1.1}
PAPER_MARKER = {"marker": "*", "markersize": 9, "markeredgecolor": "black", "markeredgewidth": 0.5}
MISSING_COLOR = "0.45"


def style():
    """Context manager that applies :data:`RC`."""
    return plt.rc_context(RC)


def method_color(method: str, r: int | None = None, ranks=()) -> tuple:
    """The method's colour map in :mod:`rasa.method_registry` (LoRA blues, RaSA reds, as the paper; others
    greys); darker for larger r."""
    cmap = plt.get_cmap(method_registry.get(method).colormap)
    ranks = sorted(set(ranks))
    if r is None or len(ranks) <= 1 or r not in ranks:
        return cmap(0.8)
    return cmap(0.45 + 0.5 * ranks.index(r) / (len(ranks) - 1))


def save(fig, out_dir: str | Path, stem: str) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png, pdf = out_dir / f"{stem}.png", out_dir / f"{stem}.pdf"
    with atomic_open(png, "wb") as fh:
        fig.savefig(fh, format="png", dpi=DPI, metadata={"Software": None})
    with atomic_open(pdf, "wb") as fh:
        fig.savefig(fh, format="pdf", dpi=DPI, metadata={"CreationDate": None, "ModDate": None,
                                                         "Creator": "rasa-peft report"})
    plt.close(fig)
    return [png, pdf]
