"""``python -m rasa.report --config configs/config.yaml --results results [--only T ...] [--partial]``

Renders Tables 1–2 (ours, the paper's, Δ) and Figures 2–7 plus the mechanism check from the tidy
CSVs under ``--results``. Without ``--partial`` a target whose inputs are missing fails with a
message naming every missing file, run and epoch (exit status 2); with ``--partial`` every target
renders from whatever exists, missing cells and points shown as missing.
"""

from __future__ import annotations

import argparse
import sys

from rasa.report import TARGETS, MissingResultsError, render
from rasa.report.study import load_config


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rasa.report", description=__doc__.split("\n\n")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/config.yaml", help="the study config (default: %(default)s)")
    ap.add_argument("--results", default=None,
                    help="results directory (default: the config's `results`, else results)")
    ap.add_argument("--only", nargs="+", choices=list(TARGETS), metavar="TARGET",
                    help=f"render only these: {', '.join(TARGETS)} (default: all)")
    ap.add_argument("--partial", action="store_true",
                    help="render from whatever results exist; missing cells/points shown as missing")
    args = ap.parse_args(argv)
    config = load_config(args.config)
    results = args.results or config.get("results") or "results"
    failed = []
    for name in args.only or TARGETS:
        try:
            paths = render(name, config, results, args.partial)
        except MissingResultsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed.append(name)
            continue
        for p in paths:
            print(p)
    if failed:
        print(f"error: not rendered (missing inputs): {', '.join(failed)}; "
              "use --partial to render from whatever exists", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
