"""A real SLURM cluster on this machine, for the SLURM test tier: munged, MariaDB + slurmdbd,
slurmctld and one slurmd (`-N localhost`), all in one scratch folder, all stopped by PID.

    cluster = LocalCluster(scratch).start()   # raises ClusterError with the daemons' log tails
    env = cluster.env                         # SLURM_CONF etc. for sbatch/squeue/submitit
    cluster.stop()

Accounting is not optional: without slurmdbd `sacct` fails, and submitit then waits forever on a
job that was cancelled. No systemd and no cgroups are assumed (linuxproc tracking, no task plugin).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd", "mariadb-install-db", "sbatch")


class ClusterError(RuntimeError):
    """The cluster did not come up: the message holds what its daemons logged."""


def missing_programs() -> list[str]:
    return [name for name in DAEMONS if shutil.which(name) is None and not Path("/usr/sbin", name).exists()]


def _program(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024 * 9 // 10  # slurmd refuses a node that claims more
    return 1024


class LocalCluster:
    def __init__(self, scratch: Path) -> None:
        self.dir = Path(scratch)
        self.procs: dict[str, subprocess.Popen] = {}
        self.munge_socket = self.dir / "munge" / "munge.socket.2"
        self.conf = self.dir / "etc" / "slurm.conf"
        self.ctld_port, self.slurmd_port, self.dbd_port, self.db_port = _free_ports(4)

    @property
    def env(self) -> dict[str, str]:
        """What every client needs (sbatch, squeue, sacct, scancel, submitit)."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self, timeout: float = 60.0) -> "LocalCluster":
        for folder in ("munge", "etc", "log", "state", "spool", "db"):
            (self.dir / folder).mkdir(parents=True, exist_ok=True)
        (self.dir / "munge").chmod(0o755)  # munged refuses a socket folder others may write to
        try:
            self._start_munge()
            self._start_database(timeout)
            self._write_configs()
            self._spawn("slurmdbd", [_program("slurmdbd"), "-D"])
            self._wait(lambda: self._port_open(self.dbd_port), "slurmdbd", timeout)
            self._spawn("slurmctld", [_program("slurmctld"), "-D", "-c", "-i"])
            self._wait(lambda: self._port_open(self.ctld_port), "slurmctld", timeout)
            self._spawn("slurmd", [_program("slurmd"), "-D", "-N", "localhost"])
            self._wait(self._node_idle, "slurmd", timeout)
        except Exception:
            self.stop()
            raise
        return self

    def _start_munge(self) -> None:
        key = self.dir / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self._spawn("munged", [_program("munged"), "-F", "--force", f"--key-file={key}",
                               f"--socket={self.munge_socket}", f"--pid-file={self.dir / 'munge' / 'munged.pid'}",
                               f"--seed-file={self.dir / 'munge' / 'munged.seed'}",
                               f"--log-file={self.dir / 'log' / 'munged.log'}"])
        self._wait(self.munge_socket.exists, "munged", 20)

    def _start_database(self, timeout: float) -> None:
        data = self.dir / "db"
        subprocess.run([_program("mariadb-install-db"), "--no-defaults", f"--datadir={data}", "--user=root",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, capture_output=True, timeout=timeout)
        self._spawn("mariadbd", [_program("mariadbd"), "--no-defaults", f"--datadir={data}", "--user=root",
                                 f"--socket={self.dir / 'db.sock'}", f"--port={self.db_port}",
                                 "--bind-address=127.0.0.1", "--skip-name-resolve",
                                 "--innodb-buffer-pool-size=32M", f"--log-error={self.dir / 'log' / 'mariadb.log'}"])
        self._wait(lambda: self._port_open(self.db_port), "mariadbd", timeout)

    def _write_configs(self) -> None:
        d, sock = self.dir, self.munge_socket
        self.conf.write_text(f"""\
ClusterName=harness
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={self.ctld_port}
SlurmdPort={self.slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={sock},cred_expire=10
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerParameters=sched_interval=2,bf_interval=2
KillWait=5
MpiDefault=none
ReturnToService=2
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort={self.dbd_port}
AccountingStoragePass={sock}
NodeName=localhost NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={_memory_mb()} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
""")
        dbd = self.conf.with_name("slurmdbd.conf")
        dbd.write_text(f"""\
AuthType=auth/munge
AuthInfo=socket={sock}
DbdHost=localhost
DbdPort={self.dbd_port}
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={self.db_port}
StorageUser=root
StorageLoc=slurm_acct_db
PidFile={d}/slurmdbd.pid
LogFile={d}/log/slurmdbd.log
""")
        dbd.chmod(0o600)  # slurmdbd refuses a config others can read

    def _spawn(self, name: str, command: list[str]) -> None:
        out = open(self.dir / "log" / f"{name}.out", "ab")
        self.procs[name] = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                            start_new_session=True)  # a Ctrl-C to pytest is not theirs

    def _wait(self, ready, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is not None:
                raise ClusterError(f"{name} exited with {proc.returncode}:\n{self.logs()}")
            if time.monotonic() > deadline:
                raise ClusterError(f"{name} not ready after {timeout:.0f} s:\n{self.logs()}")
            time.sleep(0.2)

    @staticmethod
    def _port_open(port: int) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    def _node_idle(self) -> bool:
        state = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, env=self.env)
        return state.stdout.strip().startswith("idle")

    def logs(self, lines: int = 15) -> str:
        tails = []
        for path in sorted((self.dir / "log").glob("*")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            if text:
                tails.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(tails)

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        """A SLURM client command (squeue, sacct, scancel, scontrol) against this cluster."""
        return subprocess.run(list(command), capture_output=True, text=True, env=self.env, check=check, timeout=60)

    def array_task(self, index: int) -> str:
        """The SLURM id (`<array>_<index>`) of a queued or running array task (or of the one job)."""
        rows = self.run("squeue", "-h", "-r", "-o", "%i").stdout.split()
        if len(rows) == 1 and "_" not in rows[0]:
            return rows[0]  # submitit submits a one-job sweep as a plain job
        return next(row for row in rows if row.endswith(f"_{index}"))

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel every job first (slurmd then has no steps to wait for), then SIGTERM all daemons
        together, SIGKILL any still there after `timeout`."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            subprocess.run(["scancel", "--user", "root", "--full"], capture_output=True, env=self.env, timeout=30)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.run("squeue", "-h", check=False).stdout.strip():
                time.sleep(0.5)
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
