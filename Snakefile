# RaSA reproduction: one DAG from configs to the paper's tables and figures.
#   snakemake --cores 2 all                      the tiny, offline default (configs/config.yaml)
#   snakemake --profile slurm --configfile configs/paper.yaml all     the paper, on Slurm
#   snakemake results/tables/table1.md           one table (only the jobs it needs)
from snakemake.utils import min_version, validate

from rasa.study import check_config

min_version("9.0")


# The tiny default, unless --configfile names another study: then that file alone (not merged
# into the default, so a tiny-only key can never leak into the paper's grid).
if not workflow.overwrite_configfiles:

    configfile: "configs/config.yaml"



validate(config, "workflow/schemas/config.schema.yaml")
check_config(config)


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    localrule: True
    input:
        report_targets(),
