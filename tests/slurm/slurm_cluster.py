"""A private single-node SLURM cluster on this host, for the real-SLURM test.

``start(root)`` installs Debian's ``slurmctld slurmd slurm-client munge`` when they are missing,
writes ``slurm.conf`` and ``gres.conf`` for this host (node name = ``hostname``,
``proctrack/linuxproc``, ``task/none``, ``select/cons_tres`` with ``CR_Core_Memory``, one
``gpu`` GRES backed by ``/dev/null``, no accounting database), and starts a private ``munged``
(own key and socket under ``root``), ``slurmctld`` and ``slurmd`` in the foreground as child
processes. ``stop(cluster)`` cancels the cluster's jobs and ends exactly those three processes by
their pids. Everything listens on loopback, on free ports.

Nothing outside ``root`` is written: ``slurm.conf`` and ``gres.conf`` live in ``root/etc`` and
every client command finds them through ``SLURM_CONF``, so the cluster runs beside an existing
SLURM installation (``/etc/slurm``, a system slurmctld on the default ports) without touching it.
The jobstep executor of snakemake-executor-plugin-slurm removes ``SLURM_*`` variables
(``SLURM_CONF`` included) before its nested ``srun``; ``root/bin`` therefore holds one small
wrapper per SLURM client program that sets ``SLURM_CONF`` and runs the real one, and
:attr:`Cluster.env` puts that folder first on ``PATH`` (sbatch exports it to the jobs).

Command line, for trying the cluster by hand (root only)::

    python tests/slurm/slurm_cluster.py start /tmp/advmri-slurm   # prints the pids, leaves it up
    python tests/slurm/slurm_cluster.py stop /tmp/advmri-slurm
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
# The client programs of slurm-client that users and the executor plugin call.
CLIENT_PROGRAMS = (
    "sbatch",
    "squeue",
    "sinfo",
    "sacct",
    "scontrol",
    "srun",
    "salloc",
    "scancel",
    "sshare",
    "sacctmgr",
    "sstat",
    "sattach",
    "sbcast",
    "sprio",
    "sreport",
    "sdiag",
    "strigger",
)
BINARIES = ["munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol"]
MARKER = "# written by advmri tests/slurm/slurm_cluster.py"
# A partition whose only node never registers and has no GPU: lets a test ask for a GPU where
# the cluster has none, without a second slurmd.
NO_GPU_PARTITION = "cpuonly"
PARTITION = "main"
# The same node with a 5-minute MaxTime: too short for the tiny study's pretrain at its last retry.
SHORT_PARTITION = "short"
SHORT_MAX_MINUTES = 5
# CPUs and memory of the node: the tiny study is sized for them, and a group job of two 2-thread
# evaluations (cores: 8 lets them run at once) is not.
NODE_CPUS = 2
NODE_MEMORY_MB = 8000


class ClusterError(RuntimeError):
    """The private SLURM cluster could not be installed, configured or started."""


@dataclass
class Cluster:
    """A running private cluster: its state folder, daemon pids and client environment."""

    root: Path
    hostname: str
    pids: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False)

    @property
    def conf(self) -> Path:
        """This cluster's slurm.conf (under ``root``, never in /etc/slurm)."""
        return self.root / "etc" / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """Environment for client commands (sbatch, squeue, snakemake) talking to this cluster.

        ``SLURM_CONF`` names this cluster's configuration, and ``root/bin`` (client wrappers that
        set it again, for the jobstep executor's nested ``srun``) comes first on ``PATH``.
        """
        env = dict(os.environ)
        env["SLURM_CONF"] = str(self.conf)
        env["PATH"] = os.pathsep.join([str(self.root / "bin"), env.get("PATH", "")])
        return env

    def command(self, *args: str, check: bool = True) -> str:
        """Run a SLURM client command against this cluster and return its stdout."""
        result = subprocess.run(
            list(args), capture_output=True, text=True, env=self.env, timeout=60
        )
        if check and result.returncode != 0:
            raise ClusterError(f"{' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout


def missing_binaries() -> list[str]:
    """Names of the SLURM/munge programs not found on PATH (or /usr/sbin)."""
    search = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/sbin"
    return [name for name in BINARIES if shutil.which(name, path=search) is None]


def install_if_missing() -> None:
    """Install Debian's SLURM and munge packages with apt-get when any program is missing.

    Services are not started by the packages (this module starts its own daemons).
    """
    if not missing_binaries():
        return
    if shutil.which("apt-get") is None:
        raise ClusterError(f"missing {missing_binaries()} and no apt-get to install {PACKAGES}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    update = subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, text=True)
    if update.returncode != 0:
        raise ClusterError(f"apt-get update failed: {update.stderr.strip()[-300:]}")
    result = subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES],
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0 or missing_binaries():
        raise ClusterError(f"apt-get install {' '.join(PACKAGES)} failed: {result.stderr[-500:]}")


def _sbin(name: str) -> str:
    found = shutil.which(name, path=os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/sbin")
    if found is None:
        raise ClusterError(f"{name} not found")
    return found


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def slurm_conf(root: Path, hostname: str, cpus: int, memory_mb: int, ports: tuple[int, int]) -> str:
    """Text of a single-node slurm.conf whose state, logs and munge socket live under ``root``."""
    ctld_port, slurmd_port = ports
    return f"""{MARKER}
ClusterName=advmri
SlurmctldHost={hostname}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge/munge.socket
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool/%n
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
GresTypes=gpu
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# squeue-based job status needs finished jobs to stay visible for a while (the plugin checks
# MinJobAge >= 3 x its first status interval).
MinJobAge=600
KillWait=5
InactiveLimit=0
ReturnToService=2
SlurmdTimeout=300
DefMemPerCPU=500
# declared CPUs/memory win over what slurmd detects, so the node never drains on a small VM
SlurmdParameters=config_overrides
NodeName={hostname} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} Gres=gpu:1 State=UNKNOWN
NodeName=nogpu NodeAddr=127.0.0.2 CPUs=1 RealMemory=1000 State=FUTURE
PartitionName={PARTITION} Nodes={hostname} Default=YES MaxTime=INFINITE State=UP
PartitionName={NO_GPU_PARTITION} Nodes=nogpu MaxTime=INFINITE State=UP
PartitionName={SHORT_PARTITION} Nodes={hostname} MaxTime={SHORT_MAX_MINUTES} State=UP
"""


def gres_conf(hostname: str) -> str:
    """gres.conf declaring one GPU on this host, backed by /dev/null (scheduling only)."""
    return f"{MARKER}\nNodeName={hostname} Name=gpu File=/dev/null\n"


def write_client_wrappers(folder: Path, conf: Path) -> None:
    """One script per SLURM client program on PATH: ``SLURM_CONF=conf`` then the real program.

    The jobstep executor drops ``SLURM_CONF`` before its nested ``srun``; without the wrapper that
    ``srun`` would read the compiled-in ``/etc/slurm/slurm.conf`` (another cluster, or none).
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name in CLIENT_PROGRAMS:
        real = shutil.which(name)
        if real is None:
            continue
        wrapper = folder / name
        wrapper.write_text(f'#!/bin/sh\nSLURM_CONF={conf} exec {real} "$@"\n')
        wrapper.chmod(0o755)


def _wait(predicate, timeout: float, what: str, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    tails = "\n".join(f"--- {log}\n{log.read_text()[-1500:]}" for log in logs if log.exists())
    raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")


def start(root: Path, cpus: int = NODE_CPUS, memory_mb: int = NODE_MEMORY_MB) -> Cluster:
    """Install (if needed), configure and start munged, slurmctld and slurmd; wait for the node.

    Parameters
    ----------
    root : folder for the cluster's state, spool, logs, munge key and socket (created).
    cpus : CPUs the node offers (declared: slurmd does not check them against the machine).
    memory_mb : memory the node offers in MB.

    Returns
    -------
    Cluster
        with the pids of the three daemons; pass it to ``stop`` (also when a test fails).
    """
    if os.geteuid() != 0:
        raise ClusterError("a private SLURM cluster needs root")
    install_if_missing()
    root = Path(root).resolve()
    for sub in ("munge", "state", "spool", "log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "munge", 0o700)
    hostname = socket.gethostname()
    cluster = Cluster(root=root, hostname=hostname)
    cluster.conf.parent.mkdir(parents=True, exist_ok=True)
    # slurmd and slurmctld read gres.conf from the folder of slurm.conf
    cluster.conf.write_text(slurm_conf(root, hostname, cpus, memory_mb, (free_port(), free_port())))
    (cluster.conf.parent / "gres.conf").write_text(gres_conf(hostname))
    write_client_wrappers(root / "bin", cluster.conf)
    try:
        key = root / "munge" / "munge.key"
        if not key.exists():
            subprocess.run([_sbin("mungekey"), "-c", "-k", str(key)], check=True)
        os.chmod(key, 0o600)
        socket_path = root / "munge" / "munge.socket"
        _spawn(
            cluster,
            "munged",
            [
                _sbin("munged"),
                "-F",
                "--force",
                f"--socket={socket_path}",
                f"--key-file={key}",
                f"--pid-file={root}/munge/munged.pid",
                f"--log-file={root}/log/munged.log",
                f"--seed-file={root}/munge/munged.seed",
            ],
        )
        _wait(socket_path.exists, 20, "munged's socket", [root / "log/munged.log"])
        conf = str(cluster.conf)
        _spawn(cluster, "slurmctld", [_sbin("slurmctld"), "-D", "-i", "-f", conf])
        _spawn(cluster, "slurmd", [_sbin("slurmd"), "-D", "-f", conf, "-N", hostname])
        logs = [root / "log/slurmctld.log", root / "log/slurmd.log"]

        def node_ready() -> bool:
            for name, process in cluster.processes.items():
                if process.poll() is not None:
                    raise ClusterError(f"{name} exited with {process.returncode}: see {root}/log")
            out = cluster.command("sinfo", "-h", "-N", "-n", hostname, "-o", "%t", check=False)
            states = set(out.split())  # one line per partition of the node
            return bool(states) and states <= {"idle", "mix", "alloc"}

        _wait(node_ready, 90, f"node {hostname} to become idle", logs)
    except BaseException:
        stop(cluster)
        raise
    (root / "pids.json").write_text(json.dumps(cluster.pids))
    return cluster


def _spawn(cluster: Cluster, name: str, argv: list[str]) -> None:
    log = open(cluster.root / "log" / f"{name}.out", "ab")  # noqa: SIM115 - lives with the daemon
    process = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=cluster.env
    )
    log.close()
    cluster.processes[name] = process
    cluster.pids[name] = process.pid


def cancel_all_jobs(cluster: Cluster, timeout: float = 30) -> None:
    """scancel every job of the cluster and wait until slurmd runs no job step any more."""
    if "slurmctld" not in cluster.pids:
        return
    ids = cluster.command("squeue", "-h", "-o", "%i", check=False).split()
    if ids:
        cluster.command("scancel", *ids, check=False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        active = cluster.command("squeue", "-h", "-t", "PD,R,CG,S", "-o", "%i", check=False)
        steps = cluster.command("scontrol", "listpids", check=False).strip().splitlines()[1:]
        if not active.strip() and not steps:
            return
        time.sleep(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _end(pid: int, process: subprocess.Popen | None, timeout: float = 15) -> None:
    """SIGTERM one daemon by pid, SIGKILL it if it is still there after ``timeout`` seconds."""
    if not _alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return
        if process is None and not _alive(pid):
            return
        time.sleep(0.2)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
        if process is not None:
            process.wait(timeout=10)


def stop(cluster: Cluster) -> None:
    """Cancel the cluster's jobs, then end slurmd, slurmctld and munged by pid."""
    try:
        cancel_all_jobs(cluster)
    finally:
        for name in ("slurmd", "slurmctld", "munged"):
            if name in cluster.pids:
                _end(cluster.pids[name], cluster.processes.get(name))


def _main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in {"start", "stop"}:
        print(__doc__.split("Command line")[1], file=sys.stderr)
        return 2
    action, root = argv[0], Path(argv[1]).resolve()
    if action == "start":
        # the daemons outlive this process; `stop` reads their pids back from pids.json
        print(json.dumps(start(root).pids))
        return 0
    pids = json.loads((root / "pids.json").read_text())
    stop(Cluster(root=root, hostname=socket.gethostname(), pids=pids))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
