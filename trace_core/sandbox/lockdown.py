"""What a sandbox worker does to itself before it runs any untrusted code.

Layers, each applied when the OS allows it and reported by name (`apply` returns them):
- `rlimits`: address space, CPU seconds (over the worker's life), file size, open files, no core.
- `netns`: a network namespace of its own (Linux, needs CAP_SYS_ADMIN): no interface but a
  loopback that is down, so no connection can be made, not even to 127.0.0.1.
- `uid`: root drops to an unprivileged uid when the Python installation is readable by it; then
  RLIMIT_NPROC=0 stops forks and threads in the kernel and OS permissions guard files.
- `seccomp`: a syscall filter (Linux x86_64/aarch64) that fails clone/fork/exec, kill, ptrace,
  sockets, setrlimit/prlimit, unshare/setns/mount with EPERM, whatever code asks for them.
- `audit`: a `sys.addaudithook` hook (it cannot be removed) that refuses, at the Python level,
  writes and deletions outside the work folder, reads outside the Python installation and
  module files, sockets, fork/exec/spawn/subprocess, new threads, signals to other processes,
  rlimit changes, ctypes, and further audit hooks. C code that calls the OS directly is not seen.
"""
from __future__ import annotations

import os
import resource
import stat
import sys
from typing import Any

from trace_core.sandbox import seccomp

NOBODY = 65534
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
MODULE_SUFFIXES = (".py", ".pyc", ".so", ".pyi", ".pth", ".typed")
PATH_EVENTS = {"os.remove", "os.rmdir", "os.rename", "os.mkdir", "os.chmod", "os.chown", "os.link",
               "os.symlink", "os.truncate", "os.utime", "shutil.rmtree", "os.mkfifo", "os.mknod",
               "os.chflags", "os.lchflags", "os.setxattr", "os.removexattr", "shutil.copyfile",
               "shutil.copytree", "shutil.move", "shutil.chown"}
READ_EVENTS = {"os.listdir", "os.scandir", "glob.glob", "os.getxattr", "os.listxattr"}
REFUSED_EVENTS = {"os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn", "os.system",
                  "os.startfile", "subprocess.Popen", "_thread.start_new_thread", "os.kill",
                  "os.killpg", "signal.pthread_kill", "resource.setrlimit", "resource.prlimit",
                  "sys.addaudithook", "os.chroot", "pty.spawn", "os.setuid", "os.setgid"}
REFUSED_PREFIXES = ("socket.", "ctypes.", "_posixsubprocess.", "winreg.", "msvcrt.", "webbrowser.")
REFUSED_IMPORTS = {"ctypes", "_ctypes", "_posixsubprocess"}  # ctypes pokes memory; fork_exec has no event


def apply(workdir: str, memory_mb: int, cpu_s: int, file_mb: int) -> dict[str, str]:
    """Lock this process down; return {layer: "on" | "off: why"}."""
    layers = {"pdeathsig": _die_with_parent(), "netns": _own_network_namespace(),
              "rlimits": _set_limits(memory_mb, cpu_s, file_mb)}
    layers["uid"] = _drop_uid(workdir)
    layers["nproc"] = _no_new_processes(layers["uid"] == "on")
    layers["seccomp"] = seccomp.refuse_syscalls()
    install_audit_hook(workdir)
    layers["audit"] = "on"
    return layers


def _die_with_parent() -> str:
    if not sys.platform.startswith("linux"):
        return f"off: {sys.platform}"
    import signal
    return "on" if seccomp.libc().prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0 else "off: prctl failed"


def _own_network_namespace() -> str:
    if not sys.platform.startswith("linux"):
        return f"off: {sys.platform}"
    import ctypes
    libc = seccomp.libc()
    if libc.unshare(CLONE_NEWNET) != 0:
        return f"off: unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())}"
    return "on"


def _set_limits(memory_mb: int, cpu_s: int, file_mb: int) -> str:
    limits = [(resource.RLIMIT_AS, memory_mb * 2**20), (resource.RLIMIT_CPU, cpu_s),
              (resource.RLIMIT_FSIZE, file_mb * 2**20), (resource.RLIMIT_CORE, 0),
              (resource.RLIMIT_NOFILE, 256)]
    failed = []
    for which, value in limits:
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError) as exc:
            failed.append(f"{which}: {exc}")
    return "on" if not failed else "partly: " + "; ".join(failed)


def _readable_by_others(path: str) -> bool:
    """Every folder above `path` can be entered, and `path` read, by any user."""
    path = os.path.realpath(path)
    if not os.path.exists(path):
        return True  # nothing there to read anyway
    parts = path.split(os.sep)
    for i in range(2, len(parts) + 1):
        mode = os.stat(os.sep.join(parts[:i]) or os.sep).st_mode
        needed = stat.S_IXOTH | (stat.S_IROTH if i == len(parts) else 0)
        if stat.S_ISDIR(mode) and mode & needed != needed:
            return False
    return True


def _drop_uid(workdir: str) -> str:
    if not hasattr(os, "getuid") or os.getuid() != 0:
        return "off: not running as root (the worker keeps the caller's uid)"
    roots = [sys.base_prefix, sys.prefix, sys.exec_prefix] + [p for p in sys.path if p]
    unreadable = [p for p in roots if not _readable_by_others(p)]
    if unreadable:
        return f"off: {unreadable[0]} is not readable by uid {NOBODY}"
    os.chown(workdir, NOBODY, NOBODY)
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    return "on"


def _no_new_processes(dropped_root: bool) -> str:
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    except (ValueError, OSError) as exc:
        return f"off: {exc}"
    if hasattr(os, "getuid") and os.getuid() == 0 and not dropped_root:
        return "off: set, but the kernel does not apply RLIMIT_NPROC to root"
    return "on"


def install_audit_hook(workdir: str) -> None:
    """Refuse what untrusted code must not do (see the module docstring)."""
    workdir = os.path.realpath(workdir)
    read_roots = tuple(os.path.realpath(p) for p in {sys.base_prefix, sys.prefix, sys.exec_prefix})
    module_roots = tuple(os.path.realpath(p) for p in sys.path if p)
    own_proc = f"/proc/{os.getpid()}"
    realpath, fspath = os.path.realpath, os.fspath

    def inside(path: str, roots: tuple[str, ...]) -> bool:
        return any(path == root or path.startswith(root + os.sep) for root in roots)

    def resolve(path: Any) -> str | None:
        if isinstance(path, int):
            return None  # an already open descriptor: opening it again grants nothing new
        return realpath(fspath(path) if not isinstance(path, bytes) else path.decode(errors="replace"))

    def may_read(path: str) -> bool:
        if inside(path, (workdir,) + read_roots + (own_proc, "/dev/null", "/dev/urandom")):
            return True
        return inside(path, module_roots) and (path.endswith(MODULE_SUFFIXES) or os.path.isdir(path))

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path = resolve(args[0])
            if path is None:
                return
            mode, flags = args[1] or "", args[2] or 0
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or flags & WRITE_FLAGS
            if writing and not inside(path, (workdir,)):
                raise PermissionError(f"sandbox: writing {path} is not allowed (only inside {workdir})")
            if not writing and not may_read(path):
                raise PermissionError(f"sandbox: reading {path} is not allowed")
        elif event in PATH_EVENTS:
            for arg in args[:2]:
                if isinstance(arg, (str, bytes, os.PathLike)):
                    path = resolve(arg)
                    if path is not None and not inside(path, (workdir,)):
                        raise PermissionError(f"sandbox: {event} on {path} is not allowed")
        elif event in READ_EVENTS:
            if args and isinstance(args[0], (str, bytes, os.PathLike)) and not may_read(resolve(args[0])):
                raise PermissionError(f"sandbox: {event} on {args[0]} is not allowed")
        elif event in REFUSED_EVENTS or event.startswith(REFUSED_PREFIXES):
            raise PermissionError(f"sandbox: {event} is not allowed")
        elif event == "import" and args and args[0] in REFUSED_IMPORTS:
            raise ImportError(f"sandbox: importing {args[0]} is not allowed")

    sys.addaudithook(hook)
