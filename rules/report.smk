# The study's answer: mixed-model statistics, Table 1, Figures 3-7 and the verdict on the paper's
# findings, in one HTML page (also marked for `snakemake --report`).


rule report:
    input:
        evaluations=expand(
            "results/eval/{cell}.csv", cell=[cell.name for cell in CELLS]
        ),
        examples=expand(
            "results/examples/{cell}.npz", cell=[cell.name for cell in CELLS]
        ),
        train_logs=expand(
            "results/networks/{cell}/train_log.csv", cell=[cell.name for cell in CELLS]
        ),
        pretrain_log="results/networks/pretrain/train_log.csv",
        lq_reference=rules.evaluate_reference.output.lq,
        truth_reference=rules.evaluate_reference.output.truth,
        pretrain_reference=rules.evaluate_reference.output.pretrain,
        hq=rules.synthesize.output.hq,
        lq=rules.synthesize.output.lq,
        samples=rules.synthesize.output.samples,
    output:
        html=report(
            "results/report/report.html",
            caption="../workflow/report/report.rst",
            category="Study report",
        ),
        md=report(
            "results/report/report.md",
            caption="../workflow/report/report.rst",
            category="Study report",
        ),
        stats=directory("results/report/stats"),
        figures=report(
            directory("results/report/figures"),
            patterns=["{name}.png"],
            caption="../workflow/report/figures.rst",
            category="Figures",
        ),
    log:
        "results/logs/report.log",
    benchmark:
        "results/benchmarks/report.tsv"
    conda:
        "../envs/advmri.yaml"
    threads: resources_of("report")["cpus"]
    resources:
        mem_mb=resources_of("report")["mem_mb"],
        runtime=resources_of("report")["runtime"],
        gpu=resources_of("report")["gpu"],
    params:
        # the report prints every setting, so any setting change rebuilds it
        settings=config,
    script:
        "../workflow/scripts/report.py"
