"""HumanEval+ scoring in the sandbox: known answers, adversarial programs, isolation."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from rasa.evaluation.humaneval import (
    build_prompt,
    compute_expected,
    load_problems,
    postprocess,
    score_programs,
    summarize,
)
from rasa.evaluation.sandbox import Limits, isolation_mode

FIXTURE = Path(__file__).resolve().parents[2] / "rasa" / "fixtures" / "humanevalplus.jsonl"
ADVERSARIAL_BOUND_S = 60.0  # all adversarial samples together, 2 workers; a time bound, not a speed test


def test_fixture_canonical_solutions_pass_and_wrong_ones_fail():
    problems = load_problems(FIXTURE)
    expected = compute_expected(problems)
    programs = [[p["prompt"] + p["canonical_solution"]] for p in problems]
    _, metrics = summarize(problems, score_programs(problems, programs, expected, workers=2, desc=None))
    assert metrics[("base", "pass@1")] == 100.0
    assert metrics[("plus", "pass@1")] == 100.0
    wrong = [[p["prompt"] + "    return None\n"] for p in problems]
    _, metrics = summarize(problems, score_programs(problems, wrong, expected, workers=2, desc=None))
    assert metrics[("base", "pass@1")] == 0.0
    assert metrics[("plus", "pass@1")] == 0.0


def test_plus_tests_catch_what_base_tests_miss(toy_problems):
    expected = compute_expected(toy_problems)
    # right on every base input, wrong on the plus input 10**9 + 1
    sloppy = toy_problems[0]["prompt"] + "    return x + y if abs(x) < 1000 else 0\n"
    right = toy_problems[0]["prompt"] + toy_problems[0]["canonical_solution"]
    rows, metrics = summarize(toy_problems[:1], score_programs(
        toy_problems[:1], [[sloppy, right, right, sloppy]], expected, workers=2, desc=None))
    assert rows[0]["correct_base"] == 4 and rows[0]["correct_plus"] == 2
    assert metrics[("base", "pass@1")] == 100.0
    assert metrics[("plus", "pass@1")] == 50.0


def test_prompt_and_postprocessing(toy_problems):
    problem = toy_problems[0]
    prompt = build_prompt(problem)
    assert "### Instruction:\nWrite a Python function `add(x: int, y: int) -> int` to solve the following problem:\nReturn x + y." in prompt
    assert prompt.endswith('### Response:\ndef add(x: int, y: int) -> int:\n    """Return x + y.\n    >>> add(1, 2)\n    3\n    """')
    program = postprocess(problem, "\n    z = x + y\n\n    return z\nprint(add(1, 2))\nimport os\n")
    assert program == problem["prompt"].rstrip() + "\n    z = x + y\n\n    return z"
    assert postprocess(problem, "\n    return x + y\nresult = 3\n").endswith("    return x + y")
    assert postprocess(problem, "\n    return x\n\ndef helper():\n    pass") .endswith("    return x\n")


class _Listener:
    """A TCP server outside the sandbox that records whether anyone connected."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
                self.connections += 1
                conn.close()
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.thread.join(timeout=2)
        self.sock.close()


def test_adversarial_samples_fail_in_bounded_time_and_touch_nothing(toy_problems, tmp_path):
    problem = toy_problems[0]
    expected = compute_expected(toy_problems[:1])
    sentinel_dir = tmp_path / "outside"
    sentinel_dir.mkdir()
    sentinel = sentinel_dir / "sentinel.txt"
    sentinel.write_text("keep me")
    escaped = Path("/tmp") / f"rasa-escape-{uuid.uuid4().hex}"
    listener = _Listener()
    head = problem["prompt"]
    body = "    return x + y\n"
    samples = {
        "delete (os)": f"import os, shutil\n{head}    os.remove({str(sentinel)!r})\n    shutil.rmtree({str(sentinel_dir)!r})\n{body}",
        "fork bomb (os)": f"import os\n{head}    while True:\n        os.fork()\n",
        "fork bomb (libc)": f"import ctypes\n{head}    libc = ctypes.CDLL(None)\n    while True:\n        libc.fork()\n",
        "infinite loop": f"{head}    while True:\n        try:\n            pass\n        except BaseException:\n            pass\n",
        "unbounded allocation": f"{head}    hoard = []\n    while True:\n        hoard.append(bytearray(10**7))\n",
        "network": f"import socket\n{head}    socket.create_connection(('127.0.0.1', {listener.port}), timeout=2).sendall(b'x')\n{body}",
        "network (raw socket)": f"import socket\n{head}    s = socket.socket()\n    s.connect(('127.0.0.1', {listener.port}))\n{body}",
        "write outside (os.open)": f"import os\n{head}    os.close(os.open({str(escaped)!r}, os.O_CREAT | os.O_WRONLY))\n    assert False\n",
    }
    if isolation_mode() == "root":  # only the uid drop stops raw syscalls; see sandbox.py
        samples["delete (libc)"] = (f"import ctypes\n{head}    assert ctypes.CDLL(None).unlink("
                                    f"{str(sentinel).encode()!r}) == 0\n{body}")
    names = list(samples)
    start = time.monotonic()
    try:
        results = score_programs([problem], [[samples[n] for n in names]], expected,
                                 Limits(timeout=15, memory_mb=1024), workers=2, desc=None)[0]
    finally:
        listener.close()
    elapsed = time.monotonic() - start
    verdicts = {n: r for n, r in zip(names, results)}
    assert all(r["base"] != "pass" for r in results), verdicts
    assert elapsed < ADVERSARIAL_BOUND_S
    assert sentinel.read_text() == "keep me"
    assert not escaped.exists()
    assert listener.connections == 0


def test_isolation_mode_is_reported():
    assert isolation_mode() in ("root", "userns", "none")
