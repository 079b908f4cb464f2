"""One launcher for one CPU process, one node, or many nodes under Slurm.

``python -m rasa.launch --nodes N --procs-per-node P MODULE ARGS...`` runs ``python -m MODULE ARGS``
on N × P processes:

- 1 × 1: in this process's place (``os.execvp``), nothing in between;
- inside a Slurm job (``SLURM_JOB_ID`` set), N × P > 1: one ``srun`` step with one task per process
  (``--nodes N --ntasks-per-node P``). Each task re-enters this module (``--task``), which maps
  Slurm's ``SLURM_PROCID``/``SLURM_LOCALID``/``SLURM_NTASKS`` to torch's ``RANK``/``LOCAL_RANK``/
  ``WORLD_SIZE`` and execs the module; the rendezvous is the first node of the job at a port
  derived from the job id. No torchrun sits between Slurm and the processes, so a Slurm signal
  (``--signal=TERM@...`` without ``B:``, ``scancel --signal=TERM``, preemption) reaches every
  training process directly and nothing kills them while they save.

  The Snakemake job must run in the batch step itself, not inside an ``srun -n1`` (the executor's
  ``mpi`` resource, see ``workflow/rules/train.smk``): the node list comes from ``scontrol show job``
  because the jobstep plugin strips ``SLURM_NNODES`` and the other allocation variables, and the
  step is started with ``--overlap`` so it never waits on CPUs another step holds.
- outside Slurm, 1 node × P processes: ``torchrun --standalone --nproc-per-node P``, which
  forwards SIGTERM to the processes and gives them ``SHUTDOWN_SECONDS`` to save before it kills
  them (torchrun's own default is 30 s).

The command is printed first.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

SHUTDOWN_SECONDS = 900

def scontrol(*args: str) -> str:
    return subprocess.run(["scontrol", *args], capture_output=True, text=True, check=True).stdout


def job_fields(job_id: str) -> dict[str, str]:
    """``scontrol show job -o``'s ``Key=Value`` fields (values without spaces are all we read)."""
    return dict(re.findall(r"(\S+?)=(\S*)", scontrol("show", "job", "-o", job_id)))


def master_address(job: dict[str, str]) -> str:
    """The address of the job's first node (its ``NodeAddr``; on most clusters its hostname)."""
    first = scontrol("show", "hostnames", job["NodeList"]).split()[0]
    node = dict(re.findall(r"(\S+?)=(\S*)", scontrol("show", "node", "-o", first)))
    return node.get("NodeAddr") or first


def master_port(job_id: str) -> int:
    """A port below the usual ephemeral range, distinct for jobs sharing a node."""
    return 20000 + int(job_id) % 10000


def slurm_command(nodes: int, procs_per_node: int, module: str, args: list[str], env) -> list[str]:
    job_id = env["SLURM_JOB_ID"]
    job = job_fields(job_id)
    allocated = int(job["NumNodes"].split("-")[0])
    if allocated != nodes:
        raise SystemExit(f"rasa.launch: the run wants {nodes} node(s) but Slurm job {job_id} holds "
                         f"{allocated}: submit it with --nodes={nodes} (the rule's `nodes` resource)")
    cpus = job.get("CPUs/Task", "1")
    return ["srun", f"--nodes={nodes}", f"--ntasks={nodes * procs_per_node}",
            f"--ntasks-per-node={procs_per_node}", f"--cpus-per-task={cpus}", "--overlap",
            "--kill-on-bad-exit=1",
            f"--export=ALL,MASTER_ADDR={master_address(job)},MASTER_PORT={master_port(job_id)}",
            sys.executable, "-m", "rasa.launch", "--task", module, *args]


def command(nodes: int, procs_per_node: int, module: str, args: list[str], env=os.environ) -> list[str]:
    if nodes == 1 and procs_per_node == 1:
        return [sys.executable, "-m", module, *args]
    if env.get("SLURM_JOB_ID"):
        return slurm_command(nodes, procs_per_node, module, args, env)
    if nodes > 1:
        raise SystemExit(f"rasa.launch: {nodes} nodes need a Slurm job (no SLURM_JOB_ID here)")
    return [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={procs_per_node}",
            "--standalone", f"--shutdown-timeout={SHUTDOWN_SECONDS}", "-m", module, *args]


def task_environment(env) -> dict[str, str]:
    """torch.distributed's variables for one ``srun`` task."""
    return {"RANK": env["SLURM_PROCID"], "LOCAL_RANK": env["SLURM_LOCALID"],
            "WORLD_SIZE": env["SLURM_NTASKS"], "LOCAL_WORLD_SIZE": env["SLURM_NTASKS_PER_NODE"],
            "GROUP_RANK": env["SLURM_NODEID"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--procs-per-node", type=int, default=1)
    parser.add_argument("--task", action="store_true",
                        help="internal: one srun task; set torch's rank variables from Slurm's")
    parser.add_argument("module")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    a = parser.parse_args(argv)
    if a.task:
        os.environ.update(task_environment(os.environ))
        cmd = [sys.executable, "-m", a.module, *a.args]
    else:
        cmd = command(a.nodes, a.procs_per_node, a.module, a.args)
        print("launch:", " ".join(cmd), flush=True)
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main()
