"""The rule files hold wiring only: logic lives in rasa/ (run_settings, workflow_inputs, resources)."""

from __future__ import annotations

import re

from snake import ROOT

MAX_LINES = 10


def long_functions(text: str) -> list[tuple[str, int]]:
    """(name, lines) of each ``def`` longer than MAX_LINES, def line through its last line."""
    lines, found = text.splitlines(), []
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)def (\w+)", line)
        if not m:
            continue
        body = [j for j in range(i + 1, len(lines)) if lines[j].strip()]
        ends = [j for j in body if len(lines[j]) - len(lines[j].lstrip()) <= len(m[1])]
        last = max((j for j in body if not ends or j < ends[0]), default=i)
        if last - i + 1 > MAX_LINES:
            found.append((m[2], last - i + 1))
    return found


def test_the_checker_finds_a_long_function():
    text = "def short(x):\n    return x\n\n\ndef long(x):\n" + "    x += 1\n" * 10 + "    return x\nA = 1\n"
    assert long_functions(text) == [("long", 12)]


def test_no_function_in_the_rule_files_exceeds_ten_lines():
    files = [ROOT / "Snakefile", *sorted((ROOT / "workflow/rules").glob("*.smk"))]
    found = {f.name: long_functions(f.read_text()) for f in files}
    assert not {name: fs for name, fs in found.items() if fs}, found
