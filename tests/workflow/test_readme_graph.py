"""The README's picture of the DAG is the rule graph Snakemake builds for the paper's study.

After changing the rules, print the README's block anew with ``python tests/workflow/test_readme_graph.py``.
"""

from __future__ import annotations

import re

from snake import ROOT, snakemake

COMMAND = ("--rulegraph", "mermaid-js", "all", "--configfile", "configs/paper.yaml")


def rule_edges(mermaid: str) -> list[tuple[str, str]]:
    """(producer, consumer) pairs of ``snakemake --rulegraph mermaid-js`` output (ids resolved to names)."""
    names = dict(re.findall(r"^\s*(id\d+)\[(\w+)\]", mermaid, re.M))
    edges = re.findall(r"^\s*(id\d+) --> (id\d+)", mermaid, re.M)
    return sorted((names[a], names[b]) for a, b in edges)


def readme_block(edges: list[tuple[str, str]]) -> str:
    """The README's mermaid block: one line per edge, rules named as in the rule files."""
    return "```mermaid\nflowchart LR\n" + "".join(f"  {a} --> {b}\n" for a, b in edges) + "```"


def readme_edges() -> list[tuple[str, str]]:
    block = re.search(r"```mermaid\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "README.md has no mermaid block"
    return sorted(tuple(line.strip().split(" --> ")) for line in block.group(1).splitlines() if " --> " in line)


def test_readme_shows_the_paper_studys_rule_graph():
    built = rule_edges(snakemake(*COMMAND).stdout)
    assert built, "snakemake printed no rule graph"
    assert readme_edges() == built, ("README.md's rule graph is stale; print it anew with "
                                     "python tests/workflow/test_readme_graph.py")


if __name__ == "__main__":
    print(readme_block(rule_edges(snakemake(*COMMAND).stdout)))
