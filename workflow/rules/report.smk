# Tidy results and the paper's tables and figures. Each table and figure has its own rule whose
# inputs are only the evaluations it needs, so `snakemake results/tables/table1.md` trains and
# scores only Table 1's runs. The report code reads the tidy CSVs; for a single target they are
# gathered into {W}/report/<target>/ first, for the whole study into results/. All of it runs on
# the submit host: small files, seconds of work.

localrules:
    runs_csv,
    metrics_csv,
    losses_csv,

rule runs_csv:
    output:
        report(f"{R}/runs.csv", category="Tidy results", caption="../report/runs_csv.rst"),
    input:
        [f"{W}/runs/{run}/manifest.json" for run in RUNS],
    log:
        f"{W}/logs/report/runs_csv.log",
    conda:
        ENV
    shell:
        "python -m rasa.collect runs --inputs {input} --out {output} > {log} 2>&1"


rule metrics_csv:
    output:
        report(f"{R}/metrics.csv", category="Tidy results", caption="../report/metrics_csv.rst"),
    input:
        [eval_csv(*e) for e in EVALUATIONS],
    log:
        f"{W}/logs/report/metrics_csv.log",
    conda:
        ENV
    shell:
        "python -m rasa.collect metrics --inputs {input} --out {output} > {log} 2>&1"


rule losses_csv:
    output:
        report(f"{R}/losses.csv", category="Tidy results", caption="../report/losses_csv.rst"),
    input:
        [f"{W}/runs/{run}/losses.csv" for run in RUNS],
    log:
        f"{W}/logs/report/losses_csv.log",
    conda:
        ENV
    shell:
        "python -m rasa.collect losses --inputs {input} --out {output} > {log} 2>&1"


# One rule per table and figure, named after it; outputs come from rasa.report.TARGETS.
for target, spec in REPORT_TARGETS.items():

    rule:
        name:
            f"report_{target}"
        localrule: True
        output:
            report_outputs(spec),
        input:
            metrics=target_metric_inputs(target),
            manifests=target_manifest_inputs(target),
            losses=target_loss_inputs(target),
            analysis=target_analysis_inputs(target),
        params:
            staging=f"{W}/report/{target}",
            results=results_root,
            config=config_json,
            target=target,
        log:
            f"{W}/logs/report/{target}.log",
        conda:
            ENV
        shell:
            "(python -m rasa.collect metrics --inputs {input.metrics} --out {params.staging}/metrics.csv && "
            "python -m rasa.collect runs --inputs {input.manifests} --out {params.staging}/runs.csv && "
            "python -m rasa.collect losses --inputs {input.losses} --out {params.staging}/losses.csv && "
            "python -m rasa.report --config-json {params.config:q} --results {params.staging} "
            "--analysis-dir {params.results} --out {params.results} --only {params.target}) > {log} 2>&1"
