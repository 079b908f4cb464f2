"""``python -m rasa.report --config configs/config.yaml --results results [--only T ...] [--partial]``

Renders Tables 1–2 (ours, the paper's, Δ) and Figures 2–7 plus the mechanism check from the tidy
CSVs under ``--results``. Without ``--partial`` a target whose inputs are missing fails with a
message naming every missing file, run and epoch (exit status 2); with ``--partial`` every target
renders from whatever exists, missing cells and points shown as missing.

For Snakemake rules: ``--config-json`` passes the (validated) config inline, ``--out`` writes
``tables/`` and ``figures/`` somewhere other than the results directory (e.g. when ``--results``
is a per-target staging directory), ``--analysis-dir`` says where recon.csv and mechanism.csv are.
"""

from __future__ import annotations

import argparse
import json
import sys

from rasa.report import TARGETS, MissingResultsError, render
from rasa.report.entries import load_config


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rasa.report", description=__doc__.split("\n\n")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--config", default=None,
                     help="the study config, YAML (default: configs/config.yaml)")
    src.add_argument("--config-json", default=None, help="the study config as a JSON string")
    ap.add_argument("--results", default=None,
                    help="directory with runs.csv, metrics.csv, losses.csv (default: the config's "
                         "`results`, else results)")
    ap.add_argument("--out", default=None,
                    help="write tables/ and figures/ under this directory (default: --results)")
    ap.add_argument("--analysis-dir", default=None,
                    help="directory with recon.csv and mechanism.csv (default: --results)")
    ap.add_argument("--only", nargs="+", choices=list(TARGETS), metavar="TARGET",
                    help=f"render only these: {', '.join(TARGETS)} (default: all)")
    ap.add_argument("--partial", action="store_true",
                    help="render from whatever results exist; missing cells/points shown as missing")
    args = ap.parse_args(argv)
    config = (json.loads(args.config_json) if args.config_json
              else load_config(args.config or "configs/config.yaml"))
    results = args.results or config.get("results") or "results"
    failed = []
    for name in args.only or TARGETS:
        try:
            paths = render(name, config, results, args.partial, args.out, args.analysis_dir)
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
