"""In-sandbox set-up (runs in the harness, before the program): mounts, limits, privileges,
seccomp. Standalone (stdlib + ctypes): ``_sandbox_child.py`` loads it by path.

:func:`apply` raises :class:`SetupError` naming the step that failed; the parent then reports
"sandbox setup failed: STEP" and never runs the program less isolated than asked.

* File system (isolated modes; the process is root of fresh user/mount namespaces or real root
  in a fresh mount namespace): every mount becomes read-only and nosuid (``mount_setattr``,
  recursive); homes, ``/run``, ``/var/run``, ``/var/lib``, ``/var/spool``, ``/mnt``, ``/media``,
  ``/srv``, the caller's home, working directory and repository are covered with empty
  read-only tmpfs; the interpreter's folders (``sys.base_prefix``, ``sys.prefix``), if under one
  of those, are bound back read-only; private writable tmpfs (size-capped) over ``/tmp``,
  ``/var/tmp``, ``/dev/shm`` are the only writable places.
* Privileges: capability bounding set emptied; root mode switches to a fresh uid/gid (which
  clears every capability), user-namespace mode clears all capability sets; no-new-privs; the
  effective set is checked to be empty.
* seccomp (x86-64, aarch64): ``socket``/``socketpair`` of ``AF_UNIX`` (path sockets anywhere),
  namespace creation (``unshare``, ``setns``, ``clone`` with namespace flags, ``clone3``),
  mount syscalls, ``ptrace``, kernel keyrings, ``bpf``, ``io_uring``, ``perf_event_open``,
  ``userfaultfd``, handle-based opens fail with an errno; other architectures refuse.
"""

import ctypes
import os
import platform
import resource
import struct

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_SET_SECCOMP, PR_CAP_AMBIENT = 38, 24, 22, 47
AT_FDCWD, AT_RECURSIVE = -100, 0x8000
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID = 0x1, 0x2
MS_BIND, MS_REC = 0x1000, 0x4000
SANDBOX_UID = 1000  # the program's uid in user-namespace mode

# syscall numbers: (x86-64, aarch64)
_NR = {
    "mount_setattr": (442, 442), "socket": (41, 198), "socketpair": (53, 199),
    "clone": (56, 220), "clone3": (435, 435),
}
_BLOCKED = {  # fail with EPERM
    "x86_64": (165, 166, 155, 161, 272, 308, 101, 248, 249, 250, 321, 323, 298, 303, 304,
               425, 426, 427, 428, 429, 430, 431, 432, 433, 442, 246, 320, 175, 176, 313),
    "aarch64": (40, 39, 41, 51, 97, 268, 117, 217, 218, 219, 280, 282, 241, 264, 265,
                425, 426, 427, 428, 429, 430, 431, 432, 433, 442, 104, 294, 105, 106, 273),
}
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_NS_FLAGS = 0x7E020080  # CLONE_NEW{NS,CGROUP,UTS,IPC,USER,PID,NET,TIME}


class SetupError(Exception):
    def __init__(self, step):
        super().__init__(step)
        self.step = step


def _arch():
    machine = platform.machine()
    if machine not in _AUDIT_ARCH:
        raise SetupError("unsupported architecture")
    return machine


def _check(ret, step):
    if ret != 0:
        raise SetupError(step)


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _read_only(path, arch, read_only=True):
    attr = _MountAttr(MOUNT_ATTR_NOSUID | MOUNT_ATTR_RDONLY * read_only, MOUNT_ATTR_RDONLY * (not read_only), 0, 0)
    nr = _NR["mount_setattr"][arch == "aarch64"]
    _check(_libc.syscall(nr, AT_FDCWD, path.encode(), AT_RECURSIVE * read_only, ctypes.byref(attr),
                         ctypes.sizeof(attr)), "read-only remount")


def _tmpfs(path, options, step):
    _check(_libc.mount(b"tmpfs", path.encode(), b"tmpfs", 0, options.encode()), step)


def _under(path, parent):
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _file_system(job, arch):
    keep = [p for p in job["keep"] if os.path.isdir(p)]
    hide, covered = [], []
    for path in sorted(set(job["hide"]), key=len):
        if (os.path.isdir(path) and not os.path.islink(path) and path != "/"
                and not any(_under(path, c) for c in covered)
                and not any(_under(path, k) for k in keep)):
            hide.append(path)
            covered.append(path)
    scratch = [p for p in job["scratch"] if os.path.isdir(p) and not os.path.islink(p)]
    keep_fds = {k: os.open(k, os.O_PATH) for k in keep if any(_under(k, c) for c in hide + scratch)}
    _read_only("/", arch)
    for path in hide:
        _tmpfs(path, "size=1m,mode=755", "hide")
    for path in scratch:
        _tmpfs(path, f"size={job['tmpfs_mb']}m,mode=1777", "scratch")
    for path, fd in keep_fds.items():  # the interpreter's folders, back where they were
        os.makedirs(path, mode=0o755, exist_ok=True)
        _check(_libc.mount(f"/proc/self/fd/{fd}".encode(), path.encode(), None, MS_BIND | MS_REC, None),
               "bind interpreter")
        os.close(fd)
        _read_only(path, arch)
    for path in hide:
        _read_only(path, arch)
    _read_only("/proc", arch, read_only=False)  # the private /proc: writable for uid maps


def _limits(job):
    for kind, value in job["rlimits"].items():
        resource.setrlimit(getattr(resource, kind), (value, value))


def _drop_privileges(job):
    with open("/proc/sys/kernel/cap_last_cap") as fh:
        last_cap = int(fh.read())
    uid = job["drop_to"]
    if job["isolate"] and uid is None:
        _nested_user()  # before the bounding set is emptied: a new user namespace refills it
    if _caps()["CapEff"] & (1 << 8):  # CAP_SETPCAP (absent in unprivileged, unsandboxed runs)
        for cap in range(last_cap + 1):
            _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "drop capabilities")
    _libc.prctl(PR_CAP_AMBIENT, 4, 0, 0, 0)  # PR_CAP_AMBIENT_CLEAR_ALL
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    else:
        header = struct.pack("Ii", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
        data = ctypes.create_string_buffer(24)  # two all-zero __user_cap_data_struct
        _check(_libc.capset(header, data), "drop capabilities")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no-new-privs")
    caps = _caps()
    if caps["CapEff"] or caps["CapPrm"] or (job["isolate"] and caps["CapBnd"]):
        raise SetupError("drop capabilities")


def _nested_user():
    """User-namespace mode: leave uid 0 for SANDBOX_UID of a nested user namespace (which owns
    no mount), so the program is neither root nor holds capabilities over any mount."""
    _check(_libc.unshare(0x10000000), "drop to a user")  # CLONE_NEWUSER
    for name, text in (("setgroups", "deny"), ("uid_map", f"{SANDBOX_UID} 0 1"),
                       ("gid_map", f"{SANDBOX_UID} 0 1")):
        with open(f"/proc/self/{name}", "w") as fh:
            fh.write(text)


def _caps():
    with open("/proc/self/status") as fh:
        return {line.split(":")[0]: int(line.split()[1], 16) for line in fh if line.startswith("Cap")}


def _seccomp_program(arch):
    """Classic BPF: allow all but the calls listed in the module docstring."""
    LD, JEQ, JSET, JGE, RET = 0x20, 0x15, 0x45, 0x35, 0x06
    ALLOW, ERRNO, KILL = 0x7FFF0000, 0x00050000, 0x80000000
    EPERM, ENOSYS = 1, 38
    nr = {name: nums[arch == "aarch64"] for name, nums in _NR.items()}
    code = [(LD, 0, 0, 4), (JEQ, 0, "kill", _AUDIT_ARCH[arch]), (LD, 0, 0, 0),
            (JGE, "eperm", 0, 0x40000000)]  # x32 system calls on x86-64
    code += [(JEQ, "eperm", 0, n) for n in _BLOCKED[arch]]
    code += [(JEQ, "sock", 0, nr["socket"]), (JEQ, "sock", 0, nr["socketpair"]),
             (JEQ, "clone", 0, nr["clone"]), (JEQ, "enosys", 0, nr["clone3"]),
             (RET, 0, 0, ALLOW)]
    labels = {"sock": len(code)}
    code += [(LD, 0, 0, 16), (JEQ, "eperm", 0, 1), (RET, 0, 0, ALLOW)]  # args[0] == AF_UNIX
    labels["clone"] = len(code)
    code += [(LD, 0, 0, 16), (JSET, "eperm", 0, _NS_FLAGS), (RET, 0, 0, ALLOW)]
    labels.update(eperm=len(code), enosys=len(code) + 1, kill=len(code) + 2)
    code += [(RET, 0, 0, ERRNO | EPERM), (RET, 0, 0, ERRNO | ENOSYS), (RET, 0, 0, KILL)]
    out = b""
    for i, (op, jt, jf, k) in enumerate(code):
        jt = labels[jt] - i - 1 if isinstance(jt, str) else jt
        jf = labels[jf] - i - 1 if isinstance(jf, str) else jf
        out += struct.pack("HBBI", op, jt, jf, k)
    return out, len(code)


def _seccomp(arch):
    program, length = _seccomp_program(arch)
    buf = ctypes.create_string_buffer(program)
    fprog = struct.pack("HxxxxxxP", length, ctypes.addressof(buf))
    _check(_libc.prctl(PR_SET_SECCOMP, 2, fprog, 0, 0), "seccomp")


def apply(job):
    """Set up the sandbox in this process (see the module docstring)."""
    arch = _arch()
    for procs in job["cgroup"]:
        try:
            with open(procs, "w") as fh:
                fh.write("0")
        except OSError:
            raise SetupError("join cgroup") from None
    if job["isolate"]:
        _file_system(job, arch)
    _limits(job)
    _drop_privileges(job)
    _seccomp(arch)
