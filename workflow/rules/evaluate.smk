# One job per (run, epoch, benchmark): every epoch is scored, so BEST and LAST are derived later.
# Epoch 0 is the base model: run `{model}__base` of the same rules (Tables 1-2 with
# `study.<table>.base`, and Figure 5's forgetting).


rule humanevalplus_generate:
    output:
        samples=f"{W}/eval/{{run}}/epoch-{{epoch}}/humanevalplus_samples.jsonl",
    input:
        unpack(eval_input),
        problems=benchmark_file("humanevalplus"),
    params:
        model=eval_model_dir,
        trained=eval_trained,
        b=config["benchmarks"]["humanevalplus"],
        max_length=humaneval_max_length,
        dtype=eval_dtype,
        engine=engine_flags("humanevalplus"),
        prompt=humaneval_prompt,
    resources:
        gpu=gen_gpus("humanevalplus"),
        cpus_per_task=gen_cpus("humanevalplus"),
        mem_mb=gen_mem_mb("humanevalplus"),
        runtime=gen_runtime("humanevalplus"),
    log:
        f"{W}/logs/eval/{{run}}/epoch-{{epoch}}/humanevalplus_generate.log",
    conda:
        ENV
    shell:
        "python -m rasa.evaluation.humaneval generate --model {params.model} {params.trained} "
        "--problems {input.problems} --n-samples {params.b[n_samples]} "
        "--temperature {params.b[temperature]} --top-p {params.b[top_p]} "
        "--max-new-tokens {params.b[max_new_tokens]} {params.max_length} "
        "--batch-size {params.b[batch_size]} --seed {params.b[seed]} --dtype {params.dtype} "
        "{params.engine} {params.prompt} --samples {output.samples} > {log} 2>&1"


rule humanevalplus:
    output:
        metrics=f"{W}/eval/{{run}}/epoch-{{epoch}}/humanevalplus.csv",
        details=f"{W}/eval/{{run}}/epoch-{{epoch}}/humanevalplus_details.csv",
    input:
        samples=f"{W}/eval/{{run}}/epoch-{{epoch}}/humanevalplus_samples.jsonl",
        problems=benchmark_file("humanevalplus"),
    params:
        b=config["benchmarks"]["humanevalplus"],
        scorers=",".join(config["benchmarks"]["humanevalplus"]["scorers"]),
    resources:
        cpus_per_task=score_cpus("humanevalplus"),
        mem_mb=score_mem_mb("humanevalplus"),
        runtime=score_runtime("humanevalplus"),
    log:
        f"{W}/logs/eval/{{run}}/epoch-{{epoch}}/humanevalplus.log",
    conda:
        ENV
    shell:
        "python -m rasa.evaluation.humaneval score --samples {input.samples} "
        "--problems {input.problems} --run-id {wildcards.run} --epoch {wildcards.epoch} "
        "--timeout {params.b[timeout]} --workers {resources.cpus_per_task} --scorers {params.scorers} "
        "--out {output.metrics} --details {output.details} > {log} 2>&1"


rule math_generate:
    output:
        samples=f"{W}/eval/{{run}}/epoch-{{epoch}}/math_samples.jsonl",
    input:
        unpack(eval_input),
        problems=benchmark_file("math"),
    params:
        model=eval_model_dir,
        trained=eval_trained,
        b=config["benchmarks"]["math"],
        dtype=eval_dtype,
        engine=engine_flags("math"),
    resources:
        gpu=gen_gpus("math"),
        cpus_per_task=gen_cpus("math"),
        mem_mb=gen_mem_mb("math"),
        runtime=gen_runtime("math"),
    log:
        f"{W}/logs/eval/{{run}}/epoch-{{epoch}}/math_generate.log",
    conda:
        ENV
    shell:
        "python -m rasa.evaluation.math generate --model {params.model} {params.trained} "
        "--problems {input.problems} --max-new-tokens {params.b[max_new_tokens]} "
        "--batch-size {params.b[batch_size]} --extract {params.b[extract]} --dtype {params.dtype} "
        "{params.engine} --samples {output.samples} > {log} 2>&1"


rule math:
    output:
        metrics=f"{W}/eval/{{run}}/epoch-{{epoch}}/math.csv",
        details=f"{W}/eval/{{run}}/epoch-{{epoch}}/math_details.csv",
    input:
        samples=f"{W}/eval/{{run}}/epoch-{{epoch}}/math_samples.jsonl",
        problems=benchmark_file("math"),
    params:
        b=config["benchmarks"]["math"],
    resources:
        cpus_per_task=score_cpus("math"),
        mem_mb=score_mem_mb("math"),
        runtime=score_runtime("math"),
    log:
        f"{W}/logs/eval/{{run}}/epoch-{{epoch}}/math.log",
    conda:
        ENV
    shell:
        "python -m rasa.evaluation.math score --samples {input.samples} "
        "--problems {input.problems} --run-id {wildcards.run} --epoch {wildcards.epoch} "
        "--timeout {params.b[timeout]} --workers {resources.cpus_per_task} "
        "--out {output.metrics} --details {output.details} > {log} 2>&1"


rule forgetting:
    output:
        metrics=f"{W}/eval/{{run}}/epoch-{{epoch}}/forgetting.csv",
        details=f"{W}/eval/{{run}}/epoch-{{epoch}}/forgetting_details.csv",
    input:
        unpack(eval_input),
        data=forgetting_data,
    params:
        model=eval_model_dir,
        trained=eval_trained,
        b=config["benchmarks"]["forgetting"],
        data=FORGETTING_DIR,
        dtype=eval_dtype,
        device_map=device_map_flag,
    resources:
        gpu=gen_gpus("forgetting"),
        cpus_per_task=gen_cpus("forgetting"),
        mem_mb=gen_mem_mb("forgetting"),
        runtime=gen_runtime("forgetting"),
    log:
        f"{W}/logs/eval/{{run}}/epoch-{{epoch}}/forgetting.log",
    conda:
        ENV
    shell:
        "python -m rasa.evaluation.forgetting --model {params.model} {params.trained} "
        "--data-dir {params.data} --dtype {params.dtype} {params.device_map} --run-id {wildcards.run} --epoch {wildcards.epoch} "
        "--num-fewshot {params.b[num_fewshot]} --batch-size {params.b[batch_size]} "
        "--out {output.metrics} --details {output.details} > {log} 2>&1"
