"""Run model-written programs against evalplus tests in an isolated, bounded subprocess.

One sample = one sandbox: a fresh ``python -I`` harness (``_sandbox_child.py``) that calls
evalplus's own ``untrusted_check`` (base tests, then plus tests) and reports one JSON line. The
isolation layers, strongest available first (:func:`isolation_mode`):

``root``  (running as root with ``unshare``; the default in containers and on this CI)
    * new network namespace: no interfaces but a downed loopback, so no connection can open;
    * new PID namespace with the harness as PID 1: when it exits or is killed, the kernel kills
      every process the sample forked (no survivors, whatever they do with ``setsid``);
    * new mount namespace with private tmpfs over ``/tmp``, ``/var/tmp``, ``/dev/shm`` and
      ``/run/lock``: the sample's working directory lives there and vanishes with it;
    * the harness drops to a fresh unprivileged uid/gid, so RLIMIT_NPROC bounds fork bombs
      (root ignores it) and the file system outside world-writable places is read-only to it.
``userns`` (not root, but unprivileged user namespaces allowed)
    the same namespaces via ``unshare -r``; no uid change, so RLIMIT_NPROC counts against the
    calling user and is set to its current process count plus the budget.
``none``  (no ``unshare``)
    a plain subprocess in its own session, killed as a group at the deadline; sockets are
    disabled by monkeypatching ``socket`` in the sample's process; a sample that escapes the
    session (``setsid``) or uses raw syscalls is not contained. Documented, not recommended.

In every mode: resource limits (address space, CPU seconds, file size, open files, processes,
no core dumps), evalplus's reliability guard and per-input time limits inside, and a hard
wall-clock deadline per sample enforced by the parent. A sample that crashes, times out, or
breaks the harness is scored as failed.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

CHILD = Path(__file__).with_name("_sandbox_child.py")
TMPFS_PATHS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")


@dataclass(frozen=True)
class Limits:
    """Per-sample limits (pinned; recorded with the results)."""

    timeout: float = 20.0  # wall clock for the whole sample (base + plus tests), seconds
    memory_mb: int = 4096  # address space of the harness and the program (evalplus's default)
    nproc: int = 64  # processes/threads the sandbox user may hold
    fsize_mb: int = 64  # largest file the program may write
    nofile: int = 256  # open file descriptors
    tmpfs_mb: int = 64  # size of each private tmpfs
    min_time_limit: float = 1.0  # evalplus: per-input limit = max(min, factor * canonical time)
    gt_time_limit_factor: float = 4.0


def _unshare_args(user_ns: bool) -> list[str]:
    args = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount",
            "--propagation", "private"]
    return args + (["--map-root-user"] if user_ns else [])


@lru_cache(maxsize=None)
def isolation_mode() -> str:
    """``"root"``, ``"userns"`` or ``"none"`` (see the module docstring); probed once."""
    if os.environ.get("RASA_SANDBOX_MODE"):
        return os.environ["RASA_SANDBOX_MODE"]
    if shutil.which("unshare") is None:
        return "none"
    for mode, user_ns in (("root", False), ("userns", True)):
        if mode == "root" and os.geteuid() != 0:
            continue
        try:
            probe = subprocess.run(_unshare_args(user_ns) + ["true"], capture_output=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return mode
    return "none"


def _processes_of_current_user() -> int:
    uid, count = os.getuid(), 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                count += os.stat(f"/proc/{entry}").st_uid == uid
            except OSError:
                pass
    return count


def _sandbox_uid() -> int:
    """A fresh uid (and gid) nobody else uses: RLIMIT_NPROC then counts only this sample."""
    return random.SystemRandom().randrange(1_000_000, 2_000_000_000)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def check_program(code: str, entry_point: str, tests: list[tuple], atol: float,
                  limits: Limits = Limits(), dataset: str = "humaneval",
                  mode: str | None = None) -> dict:
    """Run ``code`` against ``tests`` = ``[(name, inputs, expected, ref_time), ...]``.

    Returns ``{"base": status, "plus": status, "error": str, "mode": mode, "seconds": float}``
    where a status is evalplus's ``"pass"``/``"fail"``/``"timeout"``, or None when the tests
    were not run (an earlier test set failed), or ``"killed"`` when the wall-clock deadline hit.
    """
    mode = mode or isolation_mode()
    workdir = None if mode in ("root", "userns") else tempfile.mkdtemp(prefix="rasa-sandbox-")
    nproc = limits.nproc + (_processes_of_current_user() if mode != "root" else 0)
    job = {
        "code": code, "entry_point": entry_point, "atol": atol, "dataset": dataset,
        "tests": tests, "fast_check": True,
        "min_time_limit": limits.min_time_limit,
        "gt_time_limit_factor": limits.gt_time_limit_factor,
        "limits": {
            "memory_bytes": limits.memory_mb * 1024 * 1024,
            "cpu_s": int(limits.timeout) + 5,
            "fsize_bytes": limits.fsize_mb * 1024 * 1024,
            "nofile": limits.nofile,
            "nproc": nproc,
        },
        "drop_to": _sandbox_uid() if mode == "root" else None,
        "mount_tmpfs": mode in ("root", "userns"),
        "tmpfs_paths": [p for p in TMPFS_PATHS if os.path.isdir(p) and not os.path.islink(p)],
        "tmpfs_size_mb": limits.tmpfs_mb,
        "workdir": workdir,
        "block_network_in_python": mode == "none",
    }
    result_r, result_w = os.pipe()
    argv = [sys.executable, "-I", str(CHILD), str(result_w)]
    if mode in ("root", "userns"):
        argv = _unshare_args(mode == "userns") + argv
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    start = time.monotonic()
    out = {"base": None, "plus": None, "error": "", "mode": mode, "seconds": 0.0}
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, pass_fds=(result_w,),
                                cwd=workdir or "/", env=env, start_new_session=True)
    except OSError as exc:
        os.close(result_r)
        os.close(result_w)
        out["error"] = f"could not start the sandbox: {exc}"
        return out
    os.close(result_w)
    deadline = start + limits.timeout
    data = b""
    try:
        try:
            proc.stdin.write(pickle.dumps(job))
            proc.stdin.close()
        except BrokenPipeError:
            pass
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                out["error"] = f"killed at the {limits.timeout:g} s deadline"
                out["base"] = out["base"] or "killed"
                break
            ready, _, _ = select.select([result_r], [], [], remaining)
            if ready:
                chunk = os.read(result_r, 65536)
                if not chunk:
                    break
                data += chunk
                if b"\n" in data or len(data) > 1_000_000:
                    break  # one line is the whole reply; do not wait for EOF
    finally:
        os.close(result_r)
        _kill_group(proc)
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    if data and not out["error"]:
        try:
            reply = json.loads(data.decode().splitlines()[0])
            out.update(base=reply.get("base"), plus=reply.get("plus"), error=reply.get("error", ""))
        except (ValueError, IndexError, UnicodeDecodeError):
            out["error"] = "unreadable harness reply"
    elif not data and not out["error"]:
        out["error"] = f"harness exited without a result (exit code {proc.returncode})"
    out["seconds"] = round(time.monotonic() - start, 3)
    return out


def passed(result: dict, plus: bool) -> bool:
    """Base tests passed (``plus=False``), or base and plus tests passed (``plus=True``)."""
    if result["base"] != "pass":
        return False
    return result["plus"] == "pass" if plus else True


# TEMPORARY (humaneval branch): a minimal stand-in for the sandbox rewrite's ``run_script``, so
# that the ``bigcode`` scorer can be tested; the sandbox branch's version replaces it at the merge.
def run_script(source: str, limits: Limits = Limits()) -> str:
    """Run ``source`` as one Python program in the namespaces of :func:`isolation_mode`, with
    ``limits``: ``"pass"`` (exit status 0), ``"fail"`` or ``"timeout"``."""
    import resource

    mode = isolation_mode()
    argv = [sys.executable, "-I", "-"]
    if mode in ("root", "userns"):
        argv = _unshare_args(mode == "userns") + argv

    def bound():
        memory = limits.memory_mb * 1024 * 1024
        for kind, value in ((resource.RLIMIT_AS, memory), (resource.RLIMIT_CPU, int(limits.timeout) + 5),
                            (resource.RLIMIT_FSIZE, limits.fsize_mb * 1024 * 1024),
                            (resource.RLIMIT_NOFILE, limits.nofile), (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(kind, (value, value))

    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    with tempfile.TemporaryDirectory(prefix="rasa-script-") as cwd:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, cwd=cwd, env=env,
                                start_new_session=True, preexec_fn=bound)
        try:
            proc.communicate(source.encode(), timeout=limits.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return "timeout"
    return "pass" if proc.returncode == 0 else "fail"
