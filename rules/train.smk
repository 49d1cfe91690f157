from advmri.train import effective_pretrain_settings, finetune_settings_of

# Networks: results/networks/{pretrain,<cell>}/. Checkpoints live in results/checkpoints/, which no
# rule declares, so Snakemake never deletes them and a rerun of a killed job resumes from them.
# params.settings holds everything that determines a network and nothing else, so Snakemake's
# params rerun trigger retrains exactly the networks whose settings changed.


rule pretrain:
    input:
        hq=rules.synthesize.output.hq,
        lq=rules.synthesize.output.lq,
        samples=rules.synthesize.output.samples,
        split=rules.split.output.table,
    output:
        network="results/networks/pretrain/generator.pt",
        train_log="results/networks/pretrain/train_log.csv",
    log:
        "results/logs/pretrain.log",
    benchmark:
        "results/benchmarks/pretrain.tsv"
    conda:
        "../envs/advmri.yaml"
    threads: resources_of("pretrain")["cpus"]
    resources:
        mem_mb=resources_of("pretrain")["mem_mb"],
        runtime=runtime_of("pretrain"),
        gpu=resources_of("pretrain")["gpu"],
    params:
        settings=effective_pretrain_settings(config),
        checkpoint_dir="results/checkpoints/pretrain",
    script:
        "../workflow/scripts/pretrain.py"


rule finetune:
    input:
        pretrained=rules.pretrain.output.network,
        hq=rules.synthesize.output.hq,
        lq=rules.synthesize.output.lq,
        samples=rules.synthesize.output.samples,
        split=rules.split.output.table,
    output:
        network="results/networks/{cell}/generator.pt",
        train_log="results/networks/{cell}/train_log.csv",
    log:
        "results/logs/finetune/{cell}.log",
    benchmark:
        "results/benchmarks/finetune/{cell}.tsv"
    conda:
        "../envs/advmri.yaml"
    threads: resources_of("finetune")["cpus"]
    resources:
        mem_mb=resources_of("finetune")["mem_mb"],
        runtime=runtime_of("finetune"),
        gpu=resources_of("finetune")["gpu"],
    params:
        settings=lambda wildcards: finetune_settings_of(config, wildcards.cell),
        checkpoint_dir="results/checkpoints/{cell}",
    script:
        "../workflow/scripts/finetune.py"


rule train:
    """Target: the pretrained network and every fine-tuned cell of the grid."""
    input:
        expand(
            "results/networks/{cell}/generator.pt", cell=[cell.name for cell in CELLS]
        ),
