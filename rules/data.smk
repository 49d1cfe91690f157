rule synthesize:
    input:
        unpack(anatomy_files),
    output:
        hq="results/dataset/hq.npy",
        lq="results/dataset/lq.npy",
        lesion="results/dataset/lesion.npy",
        samples="results/dataset/samples.csv",
        preview="results/dataset/preview.png",
    log:
        "results/logs/synthesize.log",
    benchmark:
        "results/benchmarks/synthesize.tsv"
    conda:
        "../envs/advmri.yaml"
    threads: resources_of("synthesize")["cpus"]
    resources:
        mem_mb=resources_of("synthesize")["mem_mb"],
        runtime=resources_of("synthesize")["runtime"],
    params:
        seed=config["seed"],
        data=config["data"],
        synthesis=config["synthesis"],
    script:
        "../workflow/scripts/synthesize.py"


rule split:
    input:
        samples=rules.synthesize.output.samples,
    output:
        table="results/split/split.csv",
    log:
        "results/logs/split.log",
    benchmark:
        "results/benchmarks/split.tsv"
    conda:
        "../envs/advmri.yaml"
    threads: resources_of("split")["cpus"]
    resources:
        mem_mb=resources_of("split")["mem_mb"],
        runtime=resources_of("split")["runtime"],
    params:
        seed=config["seed"],
        split=config["split"],
    script:
        "../workflow/scripts/split.py"
