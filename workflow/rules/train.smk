# One job per training run. Checkpoints live under {W}/checkpoints/<run>, which is not an output:
# Snakemake deletes a failed job's outputs, and a preempted run must keep what it saved.


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
        procs=procs_per_node,
    wildcard_constraints:
        run=alternatives(RUNS),
    resources:
        nodes=nodes_of_run,
        tasks_per_node=1,
        gpu=gpus_of_run,
        gres=gres_of_run,
        cpus_per_task=cpus_of_run,
        mem_mb=train_mem_mb,
        runtime=train_minutes,
    log:
        f"{W}/logs/train/{{run}}.log",
    conda:
        ENV
    shell:
        "python -m rasa.launch --procs-per-node {params.procs} rasa.train "
        "--settings {params.settings:q} --data {input.data} "
        "--checkpoints {params.checkpoints} --out {params.out} > {log} 2>&1"
