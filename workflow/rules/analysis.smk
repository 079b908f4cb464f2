# Paper §3: minimum reconstruction error of the full fine-tuning updates (Figures 2–3), and our
# mechanism check (LoRA and RaSA students of a teacher with shared cross-layer structure).


if RECON:  # only with a study.recon entry

    rule recon:
        output:
            report(f"{R}/recon.csv", category="Reconstruction error", caption="../report/recon_csv.rst"),
        input:
            base=model_dir(RECON["model"]),
            finetuned=f"{W}/runs/{RECON['run']}/weights",
        params:
            finetuned=trained_weights(RECON["run"], RECON["epochs"]),
            modules=",".join(RECON["modules"]),
            s=config["study"]["recon"],
            ranks=",".join(map(str, config["study"]["recon"]["ranks"])),
            ks=",".join(map(str, config["study"]["recon"]["ks"])),
        resources:
            cpus_per_task=sizing.recon_job(config, RECON["model"]).cpus,
            mem_mb=sizing.recon_job(config, RECON["model"]).mem_mb,
            runtime=sizing.recon_job(config, RECON["model"]).runtime,
        log:
            f"{W}/logs/analysis/recon.log",
        conda:
            ENV
        shell:
            "python -m rasa.recon_analysis --base {input.base} --finetuned {params.finetuned} "
            "--model-name {params.s[model]} --modules {params.modules} "
            "--fig2-r {params.s[fig2_r]} --fig2-k {params.s[fig2_k]} --fig2-iters {params.s[fig2_iters]} "
            "--fig3-ranks {params.ranks} --fig3-ks {params.ks} --fig3-iters {params.s[iters]} "
            "--out {output} > {log} 2>&1"


if "mechanism" in config["study"]:

    rule mechanism:
        output:
            report(f"{R}/mechanism.csv", category="Mechanism check", caption="../report/mechanism_csv.rst"),
        input:
            model=model_dir(config["study"]["mechanism"]["model"]),
        params:
            s=config["study"]["mechanism"],
            seed=config["seed"],
        resources:
            mem_mb=sizing.cpu_job(config, config["study"]["mechanism"]["model"], "mechanism").mem_mb,
            runtime=sizing.cpu_job(config, config["study"]["mechanism"]["model"], "mechanism").runtime,
        log:
            f"{W}/logs/analysis/mechanism.log",
        conda:
            ENV
        shell:
            "python -m rasa.mechanism --model {input.model} --r {params.s[r]} --steps {params.s[steps]} "
            "--seed {params.seed} --out {output} > {log} 2>&1"
