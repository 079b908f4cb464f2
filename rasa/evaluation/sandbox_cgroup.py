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


def available() -> bool:
    """Whether this process may create per-sample cgroups."""
    return _parents() is not None


class SampleCgroup:
    """Create with limits; ``procs`` are the files the harness joins; ``remove()`` when done."""

    def __init__(self, memory_bytes: int, max_pids: int):
        self.dirs: list[str] = []
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
                    self._write(path, "memory.limit_in_bytes", memory_bytes)
                    if os.path.exists(os.path.join(path, "memory.memsw.limit_in_bytes")):
                        self._write(path, "memory.memsw.limit_in_bytes", memory_bytes)
                else:
                    self._write(path, "pids.max", max_pids)
        except OSError:
            self.remove()
            self.dirs = []

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
