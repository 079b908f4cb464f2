"""Adversarial samples for the HumanEval+ sandbox, shared by the tests run as root and the ones
run as a throw-away unprivileged uid (``python sandbox_probes.py CONTEXT_JSON`` prints the
results as JSON; the tests start it under ``setpriv``).

Every probe is a body for ``def add(x, y)`` written so that it scores **pass only if its
attack worked** (it returns ``x + y`` after the attack, or returns a forged answer); the
callers also look for traces outside (files, connections, IPC objects).
"""

from __future__ import annotations

import json
import os
import sys
import warnings

HEAD = 'def add(x: int, y: int) -> int:\n    """Return x + y."""\n'
BASE = [[1, 2], [0, 0], [-3, 5]]
PLUS = [[10**9, 1], [7, -7]]
HALVE = 'def halve(x: float) -> float:\n    """Half of x."""\n'


def _tests(inputs_base=BASE, inputs_plus=PLUS, fn=lambda x, y: x + y):
    return [("base", inputs_base, [fn(*i) for i in inputs_base], [0.0] * len(inputs_base)),
            ("plus", inputs_plus, [fn(*i) for i in inputs_plus], [0.0] * len(inputs_plus))]


def _indent(body: str) -> str:
    return "".join("    " + line + "\n" for line in body.strip("\n").split("\n"))


FORGERS = {  # the five bodies of the issue, and more ways to claim a pass without computing it
    "__eq__ always true": "class T:\n    def __eq__(s, o): return True\nreturn T()",
    "read expected from the caller's frame": "import sys\nL = sys._getframe(1).f_locals\nreturn L['expected'][L['i']]",
    "overwrite expected in the caller's frame": (
        "import sys\nf = sys._getframe(1)\n"
        "while f is not None:\n    if 'expected' in f.f_locals:\n        f.f_locals['expected'][:] = [None] * 99\n"
        "    f = f.f_back\nreturn None"),
    "set the checker's stat/details/progress, then exit": (
        "import sys, os\nf = sys._getframe(1)\n"
        "while f is not None:\n    L = f.f_locals\n"
        "    for k in ('stat', 'progress'):\n        if k in L:\n            L[k].value = 0 if k == 'stat' else 99\n"
        "    if 'details' in L:\n        L['details'][:] = [True] * len(L['details'])\n"
        "    f = f.f_back\nos._exit(0)"),
    "int subclass": "class I(int):\n    def __eq__(s, o): return True\n    __hash__ = int.__hash__\nreturn I(0)",
    "list holding a forger": "class T:\n    def __eq__(s, o): return True\nreturn [T()]",
    "forged records on every descriptor": (
        "import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b'R\\nB\\n' + b'O 0\\n' * 50 + b'P\\n')\n"
        "    except OSError:\n        pass\nos._exit(0)"),
    "patch the comparison modules": (
        "import numpy, builtins\nnumpy.allclose = lambda *a, **k: True\nnumpy.isclose = numpy.allclose\nreturn -1"),
}
FLOAT_FORGER = "import numpy\nnumpy.allclose = lambda *a, **k: True\nreturn 0.0"  # issue's 5th body


def escape_probes(ctx: dict) -> dict[str, str]:
    """Bodies that pass only if they read, wrote, unmounted, connected or saw the outside."""
    return {
        "read a file in the caller's home": (
            f"import os\nassert os.read(os.open({ctx['secret']!r}, os.O_RDONLY), 9) == b'SECRET'\nreturn x + y"),
        "read the checkout": (
            f"import os\nassert os.read(os.open({ctx['checkout_file']!r}, os.O_RDONLY), 1)\nreturn x + y"),
        "write outside the scratch": (
            f"import os\nfd = os.open({ctx['outside_file']!r}, os.O_CREAT | os.O_WRONLY, 0o666)\n"
            "assert os.write(fd, b'x') == 1\nreturn x + y"),
        "delete a file outside": (
            f"import ctypes\nassert ctypes.CDLL(None).unlink({ctx['keep_file'].encode()!r}) == 0\nreturn x + y"),
        "write into the caller's home": (
            f"import os\nfd = os.open({ctx['home_file']!r}, os.O_CREAT | os.O_WRONLY, 0o666)\n"
            "assert os.write(fd, b'x') == 1\nreturn x + y"),
        "unmount the scratch": "import ctypes\nassert ctypes.CDLL(None).umount2(b'/tmp', 2) == 0\nreturn x + y",
        "unmount the hidden home": (
            f"import ctypes\nassert ctypes.CDLL(None).umount2({ctx['home'].encode()!r}, 2) == 0\nreturn x + y"),
        "new namespaces, then unmount": (
            "import ctypes\nlibc = ctypes.CDLL(None)\nassert libc.unshare(0x10000000 | 0x20000) == 0\n"
            f"assert libc.umount2({ctx['home'].encode()!r}, 2) == 0\nreturn x + y"),
        "remount read-write": (
            "import ctypes\nassert ctypes.CDLL(None).mount(None, b'/', None, 0x20 | 0x1000, None) == 0\nreturn x + y"),
        "path socket outside": (
            f"import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({ctx['socket']!r})\nreturn x + y"),
        "path socket in the home": (
            f"import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({ctx['home_socket']!r})\nreturn x + y"),
        "see the caller's processes": f"import os\nassert os.path.exists('/proc/{ctx['pid']}')\nreturn x + y",
        "regain root": "import ctypes, os\nassert ctypes.CDLL(None).setuid(0) == 0 and os.getuid() == 0\nreturn x + y",
        "TCP to the host": (
            f"import socket\nsocket.create_connection(('127.0.0.1', {ctx['port']}), timeout=2).sendall(b'x')\n"
            "return x + y"),
    }


MAY_PASS = ("SysV IPC objects", "kill everything")  # right answers; only their traces matter


def trace_probes(ctx: dict) -> dict[str, str]:
    """Bodies that may well run; what matters is that nothing of them is left afterwards."""
    key = ctx["ipc_key"]
    return {
        "SysV IPC objects": (
            f"import ctypes\nlibc = ctypes.CDLL(None)\nassert libc.shmget({key}, 4096, 0o1666) >= 0\n"
            f"assert libc.msgget({key}, 0o1666) >= 0\nassert libc.semget({key}, 1, 0o1666) >= 0\nreturn x + y"),
        "fork bomb": "import ctypes\nlibc = ctypes.CDLL(None)\nwhile True:\n    libc.fork()",
        "unbounded allocation": "hoard = []\nwhile True:\n    hoard.append(bytearray(10**7))",
        "kill everything": "import ctypes\nctypes.CDLL(None).kill(-1, 9)\nreturn x + y",
        "infinite loop": "while True:\n    try:\n        pass\n    except BaseException:\n        pass",
    }


MEMORY_PROBE = (  # five children of 300 MB: passes iff all five are alive, holding it, at once (1.5 GB)
    # A child the OOM killer takes after it reported counts for nothing: the survivors are counted.
    "import ctypes, os, select, time\nlibc = ctypes.CDLL(None)\nr, w = os.pipe()\npids = []\n"
    "for _ in range(5):\n    pid = libc.fork()\n    if pid == 0:\n        b = b'x' * (300 * 2**20)\n"
    "        os.write(w, b'1')\n        time.sleep(30)\n        os._exit(0)\n    pids.append(pid)\n"
    "held, end = 0, time.time() + 6\n"
    "while held < 5 and select.select([r], [], [], max(0, end - time.time()))[0]:\n"
    "    held += len(os.read(r, 5))\n"
    "time.sleep(0.5)\n"
    "return min(held, sum(os.waitpid(p, os.WNOHANG) == (0, 0) for p in pids))")


def honest_fixture(mode: str | None) -> list[str]:
    """Task ids of the fixture's canonical solutions that do not pass (base and plus)."""
    from pathlib import Path

    from rasa.evaluation.humaneval import compute_expected, load_problems
    from rasa.evaluation.sandbox import check_program, passed

    problems = load_problems(Path(__file__).resolve().parents[2] / "rasa" / "fixtures" / "humanevalplus.jsonl")
    expected = compute_expected(problems)
    failed = []
    for p in problems:
        exp = expected[p["task_id"]]
        tests = [(s, p[f"{s}_input"], exp[s], exp[f"{s}_time"]) for s in ("base", "plus")]
        result = check_program(p["prompt"] + p["canonical_solution"], p["entry_point"], tests,
                               p.get("atol", 0), mode=mode)
        if not passed(result, plus=True):
            failed.append(p["task_id"])
    return failed


def run(ctx: dict, mode: str | None = None) -> dict:
    """Verdicts of honest samples (before and after) and of every probe, in ``mode``."""
    from rasa.evaluation.sandbox import Limits, check_program, isolation_mode
    from rasa.evaluation.sandbox_cgroup import available as cgroup_available

    limits = Limits(timeout=15, memory_mb=1024, nproc=16)

    def verdict(body, head=HEAD, tests=None, atol=0.0):
        r = check_program(head + _indent(body), "add" if head == HEAD else "halve",
                          tests or _tests(), atol, limits, mode=mode)
        return {"base": r["base"], "plus": r["plus"], "error": r["error"]}

    halve_tests = _tests([[3.0], [1.0]], [[1e-9], [-7.5]], lambda x: x / 2)
    out = {"mode": mode or isolation_mode(), "honest before": verdict("return x + y")}
    out["forgers"] = {name: verdict(body) for name, body in FORGERS.items()}
    out["forgers"]["patch numpy.allclose (float problem)"] = verdict(FLOAT_FORGER, HALVE, halve_tests, 1e-6)
    out["escapes"] = {name: verdict(body) for name, body in escape_probes(ctx).items()}
    out["traces"] = {name: verdict(body) for name, body in trace_probes(ctx).items()}
    with warnings.catch_warnings(record=True) as caught:  # a sample without its cgroup says so
        warnings.simplefilter("always")
        out["memory"] = verdict(MEMORY_PROBE, tests=[("base", [[1, 2]], [5], [2.0])])
    out["memory fallback"] = [str(w.message) for w in caught if "no cgroup" in str(w.message)]
    out["cgroup"] = cgroup_available() and not out["memory fallback"]
    out["honest after"] = verdict("return x + y")
    out["honest float"] = verdict("return x / 2", HALVE, halve_tests, 1e-6)
    out["honest fixture failures"] = honest_fixture(mode)
    return out


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]), os.environ.get("PROBE_MODE") or None)))
