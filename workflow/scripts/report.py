"""Figures 3-7, training curves and the study report, from the statistics folder (rule `report`)."""

from pathlib import Path

from advmri.logs import log_to
from advmri.report import build_report

with log_to(snakemake.log[0]):
    build_report(
        list(snakemake.input.evaluations),
        references={
            "LQ input": snakemake.input.lq_reference,
            "HQ truth": snakemake.input.truth_reference,
            "pretrained generator": snakemake.input.pretrain_reference,
        },
        examples=list(snakemake.input.examples),
        dataset={
            "hq": snakemake.input.hq,
            "lq": snakemake.input.lq,
            "samples": snakemake.input.samples,
        },
        config=snakemake.params.settings,
        html_path=snakemake.output.html,
        md_path=snakemake.output.md,
        stats_dir=snakemake.input.stats,
        compute_statistics=False,
        figures_dir=snakemake.output.figures,
        # results/networks/<cell>/train_log.csv: the folder names the cell
        train_logs={Path(p).parent.name: p for p in snakemake.input.train_logs},
        pretrain_log=snakemake.input.pretrain_log,
    )
