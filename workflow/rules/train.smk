# One job per training run. Checkpoints live under {W}/checkpoints/<run>, which is not an output:
# Snakemake deletes a failed job's outputs, and a preempted run must keep what it saved.
# A run of several processes is an "MPI" job for the Slurm executor (the `mpi` resource, one Slurm
# task per process): the job's command runs in the batch step, not inside an `srun -n1` that would
# shrink it to one node, and rasa.launch starts the processes with its own `srun`.


rule train:
    output:
        weights=directory(f"{W}/runs/{{run}}/weights"),
        losses=f"{W}/runs/{{run}}/losses.csv",
        manifest=f"{W}/runs/{{run}}/manifest.json",
    input:
        unpack(train_input),
    params:
        settings=run_settings,
        checkpoints=f"{W}/checkpoints/{{run}}",
        out=f"{W}/runs/{{run}}",
        procs=train_layout("procs_per_node"),
        nodes=train_layout("nodes"),
    resources:
        nodes=train_layout("nodes"),
        mpi=train_layout("mpi"),
        tasks=train_layout("tasks"),
        tasks_per_node=train_layout("tasks_per_node"),
        tasks_per_gpu=train_layout("tasks_per_gpu"),
        gpu=train_layout("gpu"),
        gres=train_layout("gres"),
        cpus_per_task=train_cpus_per_task,
        mem_mb=train_job("mem_mb"),
        runtime=train_job("runtime"),
    log:
        f"{W}/logs/train/{{run}}.log",
    conda:
        ENV
    shell:
        "python -m rasa.launch --nodes {params.nodes} --procs-per-node {params.procs} rasa.train "
        "--settings {params.settings:q} --data {input.data} "
        "--checkpoints {params.checkpoints} --out {params.out} > {log} 2>&1"
