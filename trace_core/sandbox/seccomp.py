"""A seccomp filter that fails the syscalls a sandbox worker never needs with EPERM.

Threads and processes (clone, clone3, fork, vfork), exec, signals to processes (kill, tkill,
pidfd_send_signal), reading or writing other processes (ptrace, process_vm_*), sockets,
changing limits (setrlimit, prlimit64: so getrlimit fails too), and namespaces and mounts.
Unlike audit hooks this also stops C code, e.g. `_posixsubprocess.fork_exec` or
`threading.Thread.start`, which raise no audit event on Python 3.11.
"""
from __future__ import annotations

import platform
import struct
import sys
from typing import Any

PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
RET_ALLOW, RET_EPERM = 0x7FFF0000, 0x00050000 | 1
LD_ABS, JEQ, JGE, RET = 0x20, 0x15, 0x35, 0x06
X32_BIT = 0x40000000
SYSCALLS = {  # machine -> (audit arch, refused syscall numbers)
    "x86_64": (0xC000003E, {"clone": 56, "fork": 57, "vfork": 58, "execve": 59, "kill": 62,
                            "clone3": 435, "execveat": 322, "ptrace": 101, "process_vm_readv": 310,
                            "process_vm_writev": 311, "setrlimit": 160, "prlimit64": 302,
                            "unshare": 272, "setns": 308, "mount": 165, "chroot": 161, "tkill": 200,
                            "pidfd_send_signal": 424, "socket": 41, "socketpair": 53, "bpf": 321}),
    "aarch64": (0xC00000B7, {"clone": 220, "clone3": 435, "execve": 221, "execveat": 281, "kill": 129,
                             "tkill": 130, "ptrace": 117, "process_vm_readv": 270,
                             "process_vm_writev": 271, "setrlimit": 164, "prlimit64": 261,
                             "unshare": 97, "setns": 268, "mount": 40, "chroot": 51,
                             "pidfd_send_signal": 424, "socket": 198, "socketpair": 199, "bpf": 280}),
}


def libc() -> Any:
    import ctypes
    import ctypes.util
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _instruction(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def program(arch: int, numbers: list[int]) -> bytes:
    """BPF: other arch -> allow; x32 numbers or a listed syscall -> EPERM; else allow."""
    n = len(numbers)
    allow_at, deny_at = 4 + n, 5 + n
    code = [_instruction(LD_ABS, 0, 0, 4),  # seccomp_data.arch
            _instruction(JEQ, 0, allow_at - 2, arch),
            _instruction(LD_ABS, 0, 0, 0),  # seccomp_data.nr
            _instruction(JGE, deny_at - 4, 0, X32_BIT)]
    code += [_instruction(JEQ, deny_at - (i + 1), 0, nr) for i, nr in enumerate(numbers, start=4)]
    code += [_instruction(RET, 0, 0, RET_ALLOW), _instruction(RET, 0, 0, RET_EPERM)]
    return b"".join(code)


def refuse_syscalls() -> str:
    machine = platform.machine()
    if not sys.platform.startswith("linux") or machine not in SYSCALLS:
        return f"off: {sys.platform} {machine}"
    import ctypes
    arch, numbers = SYSCALLS[machine]
    filters = program(arch, sorted(numbers.values()))
    buffer = ctypes.create_string_buffer(filters, len(filters))

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = Program(len(filters) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    c = libc()
    if c.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return f"off: no_new_privs: {ctypes.get_errno()}"
    if c.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        import os
        return f"off: seccomp: {os.strerror(ctypes.get_errno())}"
    return "on"
