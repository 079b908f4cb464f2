"""One launcher for one CPU process, one GPU node, or many nodes under Slurm.

``python -m rasa.launch --procs-per-node P -- MODULE ARGS...`` runs ``python -m MODULE ARGS``:

- 1 node × 1 process: in this process's place (``os.execvp``), nothing in between;
- 1 node × P processes: ``torchrun --standalone --nproc-per-node P``;
- N > 1 nodes (inside a Slurm allocation): ``srun --ntasks-per-node 1`` starts one ``torchrun``
  per node, all rendezvousing (c10d) at the allocation's first node, with the job id as the
  rendezvous id, so a requeued job forms a fresh group.

The number of nodes is read from ``SLURM_NNODES`` (1 outside Slurm); the command is printed first.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys


def first_node() -> str:
    out = subprocess.run(["scontrol", "show", "hostnames", os.environ["SLURM_JOB_NODELIST"]],
                         capture_output=True, text=True, check=True)
    return out.stdout.split()[0]


def command(procs_per_node: int, module: str, args: list[str], env=os.environ) -> list[str]:
    nodes = int(env.get("SLURM_NNODES", 1))
    if nodes == 1 and procs_per_node == 1:
        return [sys.executable, "-m", module, *args]
    torchrun = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={procs_per_node}"]
    if nodes == 1:
        return [*torchrun, "--standalone", "-m", module, *args]
    rendezvous = [f"--nnodes={nodes}", "--rdzv-backend=c10d",
                  f"--rdzv-endpoint={first_node()}:{env.get('RASA_RDZV_PORT', '29500')}",
                  f"--rdzv-id={env.get('SLURM_JOB_ID', 'rasa')}"]
    return ["srun", f"--nodes={nodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=1",
            *torchrun, *rendezvous, "-m", module, *args]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--procs-per-node", type=int, default=1)
    parser.add_argument("module")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    a = parser.parse_args(argv)
    cmd = command(a.procs_per_node, a.module, a.args)
    print("launch:", " ".join(cmd), flush=True)
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main()
