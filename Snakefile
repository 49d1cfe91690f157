# advmri: adversarial training in low-resolution MRI enhancement (Javadi et al. 2024), as a study.
# Stages: synthesize -> split -> pretrain -> finetune (one job per grid cell) -> evaluate -> report.


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/cluster.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        study_targets(),
