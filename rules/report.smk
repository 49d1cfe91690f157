# The study's answer in two jobs: `stats` fits the mixed models (and classifies every network's
# training health), `report` draws Table 1, Figures 3-7 and the verdict on the paper's findings
# from the statistics folder into one HTML page (also marked for `snakemake --report`).
# Each rule's params hold what changes its output and nothing else, so Snakemake's params rerun
# trigger refits the statistics only when a statistics setting changes, and a resources-only or
# speed-only edit replans neither job.


rule stats:
    input:
        evaluations=expand(
            "results/eval/{cell}.csv", cell=[cell.name for cell in CELLS]
        ),
        train_logs=expand(
            "results/networks/{cell}/train_log.csv", cell=[cell.name for cell in CELLS]
        ),
        pretrain_log="results/networks/pretrain/train_log.csv",
        lq_reference=rules.evaluate_reference.output.lq,
    output:
        stats=directory("results/report/stats"),
    log:
        "results/logs/stats.log",
    benchmark:
        "results/benchmarks/stats.tsv"
    conda:
        "../envs/advmri.yaml"
    # the statistics were the report job's heaviest part: resources.report sizes both jobs
    threads: resources_of("report")["cpus"]
    resources:
        mem_mb=resources_of("report")["mem_mb"],
        runtime=resources_of("report")["runtime"],
        gpu=resources_of("report")["gpu"],
    params:
        settings=statistics_settings(config),
    script:
        "../workflow/scripts/stats.py"


rule report:
    input:
        stats=rules.stats.output.stats,
        evaluations=rules.stats.input.evaluations,
        examples=expand(
            "results/examples/{cell}.npz", cell=[cell.name for cell in CELLS]
        ),
        train_logs=rules.stats.input.train_logs,
        pretrain_log=rules.stats.input.pretrain_log,
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
        # the report prints the study settings, so a printed setting's change rebuilds it
        settings=report_settings(config),
    script:
        "../workflow/scripts/report.py"
