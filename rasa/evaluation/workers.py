"""A process pool that cannot hang: every task has a hard deadline, a stuck worker is killed.

``concurrent.futures`` and ``multiprocessing.Pool`` cannot cancel a task that is stuck in C code
(a sympy big-integer power, a backtracking regex), and SIGALRM timeouts (sympy checks, Math-Verify)
only work in a process's main thread. Here each worker is a single-threaded process serving one
task at a time over a pipe; the parent waits with a deadline and, past it, kills the worker
(SIGKILL), records the task as ``timeout`` and starts a fresh worker. A worker that dies (memory
limit, segfault, C stack overflow) is recorded as ``crash`` and replaced the same way.

Workers are fresh interpreters (``python -m rasa.evaluation.workers``), not ``multiprocessing``
children: they inherit none of the parent's threads (torch, tokenizers) and never re-import the
caller's ``__main__``, so the pool is safe to use from any script. A worker only receives tasks
after it has reported ready, so its start-up time never counts against a task's deadline.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from tqdm import tqdm

_READY = "__ready__"
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass
class Outcome:
    status: str  # "ok", "error" (the function raised), "timeout" (killed), "crash" (worker died)
    value: Any = None
    error: str = ""


def _resolve(qualname: str) -> Callable:
    module, _, name = qualname.partition(":")
    return getattr(importlib.import_module(module), name)


def _serve(conn_in: Connection, conn_out: Connection, memory_mb: int, init: str) -> None:
    """Worker main loop: receive ``(task_id, "module:function", args)``, reply with the result."""
    if memory_mb > 0:
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if init:
        _resolve(init)()
    conn_out.send(_READY)
    cache: dict[str, Callable] = {}
    while True:
        try:
            message = conn_in.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        task_id, qualname, args = message
        try:
            fn = cache.get(qualname) or cache.setdefault(qualname, _resolve(qualname))
            reply = (task_id, "ok", fn(*args), "")
        except BaseException as exc:  # noqa: BLE001 - report, keep serving
            reply = (task_id, "error", None, f"{type(exc).__name__}: {exc}"[:500])
        try:
            conn_out.send(reply)
        except (BrokenPipeError, OSError):
            return


class _Worker:
    def __init__(self, memory_mb: int | None, init: str | None):
        task_r, task_w = os.pipe()
        result_r, result_w = os.pipe()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
        env.setdefault("OMP_NUM_THREADS", "1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rasa.evaluation.workers", str(task_r), str(result_w),
             str(memory_mb or 0), init or ""],
            pass_fds=(task_r, result_w), env=env, stdin=subprocess.DEVNULL,
        )
        os.close(task_r)
        os.close(result_w)
        self.send_conn = Connection(task_w, readable=False)
        self.conn = Connection(result_r, writable=False)
        self.ready = False
        self.task: int | None = None
        self.deadline = 0.0

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.send_conn.close()
        self.conn.close()


class TimeoutPool:
    """``TimeoutPool(workers=2, timeout=5).map("pkg.mod:fn", [args, ...])`` -> list of Outcome.

    ``timeout`` is the hard wall-clock deadline per task, counted from dispatch. ``memory_mb``
    caps each worker's address space (RLIMIT_AS). ``init`` ("module:function") runs once in each
    worker before it reports ready (heavy imports go there).
    """

    def __init__(self, workers: int = 2, timeout: float = 7.0, memory_mb: int | None = 2048,
                 init: str | None = None, startup_timeout: float = 120.0):
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.n_workers = workers
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.init = init
        self.startup_timeout = startup_timeout
        self._workers: list[_Worker] = []
        self.restarts = 0

    def _spawn(self) -> _Worker:
        worker = _Worker(self.memory_mb, self.init)
        worker.deadline = time.monotonic() + self.startup_timeout
        return worker

    def _ensure_workers(self) -> None:
        for worker in [w for w in self._workers if not w.alive()]:
            worker.kill()
            self._workers.remove(worker)
        while len(self._workers) < self.n_workers:
            self._workers.append(self._spawn())

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        self._workers.remove(worker)
        self._workers.append(self._spawn())
        self.restarts += 1

    def map(self, qualname: str, arglist: list[tuple], desc: str | None = None) -> list[Outcome]:
        self._ensure_workers()
        results: list[Outcome | None] = [None] * len(arglist)
        pending = deque(range(len(arglist)))
        done = 0
        bar = tqdm(total=len(arglist), desc=desc, disable=desc is None, mininterval=1.0)
        while done < len(arglist):
            for worker in self._workers:
                if worker.ready and worker.task is None and pending:
                    task = pending.popleft()
                    try:
                        worker.send_conn.send((task, qualname, arglist[task]))
                    except (BrokenPipeError, OSError):
                        pending.appendleft(task)
                        self._replace(worker)
                        break
                    worker.task, worker.deadline = task, time.monotonic() + self.timeout
            busy = [w for w in self._workers if w.task is not None or not w.ready]
            next_deadline = min(w.deadline for w in busy)
            ready = wait([w.conn for w in busy], timeout=max(0.0, next_deadline - time.monotonic()))
            for worker in list(busy):
                if not worker.ready:
                    self._check_startup(worker, worker.conn in ready)
                    continue
                if worker.conn in ready:
                    try:
                        task_id, status, value, error = worker.conn.recv()
                    except (EOFError, OSError):
                        results[worker.task] = Outcome("crash", error="worker died")
                        self._replace(worker)
                    else:
                        results[task_id] = Outcome(status, value, error)
                        worker.task = None
                    done += 1
                    bar.update(1)
                elif time.monotonic() >= worker.deadline:
                    results[worker.task] = Outcome("timeout", error=f"killed after {self.timeout} s")
                    self._replace(worker)
                    done += 1
                    bar.update(1)
        bar.close()
        return results  # type: ignore[return-value]

    def _check_startup(self, worker: _Worker, readable: bool) -> None:
        if readable:
            try:
                message = worker.conn.recv()
            except (EOFError, OSError):
                message = None
            if message == _READY:
                worker.ready = True
                return
        elif time.monotonic() < worker.deadline:
            return
        code = worker.process.poll()
        self.close()
        raise RuntimeError(f"a worker failed to start (exit code {code}); run "
                           f"`python -m rasa.evaluation.workers` by hand to see why")

    def close(self) -> None:
        for worker in self._workers:
            try:
                worker.send_conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for worker in self._workers:
            try:
                worker.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
            worker.kill()
        self._workers = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)))


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit("usage: python -m rasa.evaluation.workers TASK_FD RESULT_FD MEMORY_MB INIT "
                 "(started by TimeoutPool, not by hand)")
    _serve(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False),
           int(sys.argv[3]), sys.argv[4])
