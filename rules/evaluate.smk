rule evaluate:
    input:
        network="results/networks/{cell}/generator.pt",
        hq=rules.synthesize.output.hq,
        lq=rules.synthesize.output.lq,
        lesion=rules.synthesize.output.lesion,
        samples=rules.synthesize.output.samples,
        split=rules.split.output.table,
    output:
        table="results/eval/{cell}.csv",
        examples="results/examples/{cell}.npz",
    log:
        "results/logs/evaluate/{cell}.log",
    benchmark:
        "results/benchmarks/evaluate/{cell}.tsv"
    conda:
        "../envs/advmri.yaml"
    threads: resources_of("evaluate")["cpus"]
    resources:
        mem_mb=resources_of("evaluate")["mem_mb"],
        runtime=resources_of("evaluate")["runtime"],
        gpu=resources_of("evaluate")["gpu"],
    params:
        metrics=config["metrics"],
        device=evaluate_device(),
    script:
        "../workflow/scripts/evaluate.py"


rule evaluate_reference:
    input:
        pretrain="results/networks/pretrain/generator.pt",
        hq=rules.synthesize.output.hq,
        lq=rules.synthesize.output.lq,
        lesion=rules.synthesize.output.lesion,
        samples=rules.synthesize.output.samples,
        split=rules.split.output.table,
    output:
        lq="results/reference/lq.csv",
        truth="results/reference/hq.csv",
        pretrain="results/reference/pretrain.csv",
        examples="results/examples/pretrain.npz",
    log:
        "results/logs/evaluate_reference.log",
    benchmark:
        "results/benchmarks/evaluate_reference.tsv"
    conda:
        "../envs/advmri.yaml"
    threads: resources_of("evaluate")["cpus"]
    resources:
        mem_mb=resources_of("evaluate")["mem_mb"],
        runtime=resources_of("evaluate")["runtime"],
        gpu=resources_of("evaluate")["gpu"],
    params:
        metrics=config["metrics"],
        device=evaluate_device(),
    script:
        "../workflow/scripts/evaluate_reference.py"
