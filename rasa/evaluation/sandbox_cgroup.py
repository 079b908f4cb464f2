"""A per-sample cgroup (v1 ``memory`` + ``pids`` controllers) where the caller may create one.

Root in a container or on a node usually can; an unprivileged cluster user usually cannot, and
the sandbox then falls back to its documented per-process bound (see ``sandbox.py``). The
harness joins the group itself (writes ``0`` to ``cgroup.procs``) before it runs the program,
so every process the program forks is counted from its first instruction.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from functools import cache


@cache
def _parents() -> dict[str, str] | None:
    """``{controller: directory of this process's cgroup}`` for memory and pids, if writable."""
    mounts = {}
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] == "cgroup":
                for option in fields[sep + 3].split(","):
                    if option in ("memory", "pids"):
                        mounts[option] = fields[4]
    own = {}
    with open("/proc/self/cgroup") as fh:
        for line in fh:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for c in controllers.split(","):
                own[c] = path
    parents = {}
    for c in ("memory", "pids"):
        if c not in mounts or c not in own:
            return None
        parent = mounts[c] + own[c].rstrip("/")
        if not os.access(parent, os.W_OK):
            return None
        parents[c] = parent
    return parents


@cache
def available() -> bool:
    """Whether this process may create per-sample cgroups with their limits (one trial group)."""
    trial = SampleCgroup(64 * 1024 * 1024, 16)
    trial.remove()
    return bool(trial.dirs)


class SampleCgroup:
    """Create with limits; ``procs`` are the files the harness joins; ``remove()`` when done.

    ``error`` says why a group that this process may create was not made (``dirs`` then empty)."""

    def __init__(self, memory_bytes: int, max_pids: int):
        self.dirs: list[str] = []
        self.error: str | None = None
        parents = _parents()
        if parents is None:
            return
        name = f"rasa-sandbox-{uuid.uuid4().hex}"
        try:
            for controller, parent in parents.items():
                path = os.path.join(parent, name)
                os.mkdir(path)
                self.dirs.append(path)
                if controller == "memory":
                    self._limit_memory(path, memory_bytes)
                else:
                    self._write(path, "pids.max", max_pids)
        except OSError as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            self.remove()
            self.dirs = []

    @classmethod
    def _limit_memory(cls, path: str, memory_bytes: int) -> None:
        """RAM, and RAM + swap where the kernel accounts swap; swappiness 0 in every case.

        Without ``memory.memsw.*`` (swap accounting off) a sample at its RAM limit would be
        swapped out rather than stopped, and could hold any amount; with swappiness 0 the
        group's reclaim never swaps its anonymous pages, so the out-of-memory killer stops it.
        """
        cls._write(path, "memory.limit_in_bytes", memory_bytes)
        cls._write(path, "memory.swappiness", 0)
        if os.path.exists(os.path.join(path, "memory.memsw.limit_in_bytes")):
            cls._write(path, "memory.memsw.limit_in_bytes", memory_bytes)

    @staticmethod
    def _write(path: str, name: str, value: int) -> None:
        with open(os.path.join(path, name), "w") as fh:
            fh.write(str(value))

    @property
    def procs(self) -> list[str]:
        return [os.path.join(d, "cgroup.procs") for d in self.dirs]

    def remove(self) -> None:
        for path in self.dirs:
            for _ in range(200):
                try:
                    with open(os.path.join(path, "cgroup.procs")) as fh:
                        for pid in fh.read().split():
                            try:
                                os.kill(int(pid), signal.SIGKILL)
                            except ProcessLookupError:
                                pass
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)
