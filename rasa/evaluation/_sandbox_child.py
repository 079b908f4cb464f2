"""Sandbox harness: checks ONE model-written program with evalplus, inside the isolation that
:mod:`rasa.evaluation.sandbox` set up. Run as ``python -I _sandbox_child.py RESULT_FD`` with a
pickled job on stdin (written by the trusted parent). Standalone on purpose: ``-I`` keeps the
repository and the environment variables out of ``sys.path``.

Order matters:
1. read the job, import evalplus and the modules samples may use, and do one dry run of
   evalplus's check on a trusted one-liner (still privileged: the interpreter may live where
   the sandbox user cannot read, so everything must be imported before the uid changes;
   a sample importing a module outside PRELOAD may then fail with ImportError there);
2. as root in fresh namespaces: mount private tmpfs over the world-writable directories, so
   nothing written there outlives the sandbox;
3. set resource limits, drop to the sandbox uid/gid (root mode only);
4. run evalplus's ``untrusted_check`` for the base tests, then the plus tests; evalplus forks
   the program into a grandchild with its own reliability guard and per-input time limits;
5. write one JSON line to RESULT_FD, and, as PID 1 of the namespace, SIGKILL every process
   left (a forked sample that outlived its check).
"""

import ctypes
import json
import os
import pickle
import resource
import signal
import sys

PRELOAD = (
    "abc", "array", "bisect", "calendar", "cmath", "collections", "copy", "dataclasses",
    "datetime", "decimal", "enum", "fractions", "functools", "hashlib", "heapq", "itertools",
    "json", "math", "numbers", "operator", "queue", "random", "re", "statistics", "string",
    "struct", "sys", "textwrap", "time", "typing", "unicodedata", "collections.abc",
    "numpy", "multiprocessing.sharedctypes", "multiprocessing.synchronize",
    "multiprocessing.popen_fork", "tempfile", "shutil", "contextlib", "faulthandler",
    "platform", "socket", "ctypes", "ctypes.util", "io", "codecs", "encodings.idna",
)


def _mount_tmpfs(paths, size_mb):
    libc = ctypes.CDLL(None, use_errno=True)
    for path in paths:
        if os.path.isdir(path) and not os.path.islink(path):
            options = f"size={size_mb}m,mode=1777".encode()
            if libc.mount(b"tmpfs", path.encode(), b"tmpfs", 0, options) != 0:
                raise OSError(ctypes.get_errno(), f"mount tmpfs on {path}")


def _block_network():
    """Best effort for the no-namespace fallback: every socket operation fails."""
    import socket

    def refuse(*args, **kwargs):
        raise OSError("network access is disabled in the sandbox")

    for name in ("connect", "connect_ex", "bind", "sendto", "listen"):
        setattr(socket.socket, name, refuse)
    socket.create_connection = refuse
    socket.getaddrinfo = refuse
    socket.create_server = refuse


def main():
    result_fd = int(sys.argv[1])
    job = pickle.loads(sys.stdin.buffer.read())
    limits = job["limits"]
    os.environ["TMPDIR"] = "/tmp" if job["mount_tmpfs"] else job["workdir"]
    os.environ["OMP_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = "1"
    os.environ["EVALPLUS_MAX_MEMORY_BYTES"] = str(limits["memory_bytes"])

    import multiprocessing

    multiprocessing.set_start_method("fork", force=True)
    import evalplus.eval as ev

    for name in PRELOAD:
        try:
            __import__(name)
        except ImportError:
            pass

    if job["mount_tmpfs"]:
        _mount_tmpfs(job["tmpfs_paths"], job["tmpfs_size_mb"])
        workdir = "/tmp/work"
        os.mkdir(workdir, 0o700)
    else:
        workdir = job["workdir"]
    uid = job["drop_to"]
    if uid is not None:
        os.chown(workdir, uid, uid)
    os.chdir(workdir)
    # Dry run on a trusted one-liner while still privileged: imports everything evalplus and
    # multiprocessing load lazily (the sandbox user may not be able to read the interpreter).
    ev.untrusted_check("humaneval", "def f(x):\n    return x\n", [[1]], "f", expected=[1],
                       atol=0, ref_time=[0.001], fast_check=True)

    def limit(kind, value):
        resource.setrlimit(kind, (value, value))

    limit(resource.RLIMIT_AS, limits["memory_bytes"])
    limit(resource.RLIMIT_DATA, limits["memory_bytes"])
    limit(resource.RLIMIT_CPU, limits["cpu_s"])
    limit(resource.RLIMIT_FSIZE, limits["fsize_bytes"])
    limit(resource.RLIMIT_NOFILE, limits["nofile"])
    limit(resource.RLIMIT_CORE, 0)
    limit(resource.RLIMIT_NPROC, limits["nproc"])
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)

    original = ev.unsafe_execute
    block = job["block_network_in_python"]

    def guarded_execute(*args, **kwargs):
        try:
            os.close(result_fd)  # the program never holds the result channel
        except OSError:
            pass
        if block:
            _block_network()
        return original(*args, **kwargs)

    ev.unsafe_execute = guarded_execute

    result = {"base": None, "plus": None, "error": ""}
    try:
        for name, inputs, expected, ref_time in job["tests"]:
            status, _details = ev.untrusted_check(
                job["dataset"], job["code"], inputs, job["entry_point"], expected=expected,
                atol=job["atol"], ref_time=ref_time, fast_check=job["fast_check"],
                min_time_limit=job["min_time_limit"],
                gt_time_limit_factor=job["gt_time_limit_factor"],
            )
            result[name] = status
            if status != "pass":
                break
    except BaseException as exc:  # noqa: BLE001 - reported, scored as a failure by the parent
        result["error"] = f"{type(exc).__name__}: {exc}"[:300]
    os.write(result_fd, (json.dumps(result) + "\n").encode())
    os.close(result_fd)
    if os.getpid() == 1:  # PID 1 of a private namespace: nothing may outlive the check
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
    os._exit(0)


if __name__ == "__main__":
    main()
