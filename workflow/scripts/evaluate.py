"""Evaluate one grid network on the test split (rule `evaluate`)."""

from pathlib import Path

from advmri.evaluation import evaluate_network
from advmri.logs import log_to

with log_to(snakemake.log[0]):
    table = evaluate_network(
        snakemake.input.network,
        dataset_dir=Path(snakemake.input.hq).parent,
        split_csv=snakemake.input.split,
        settings=snakemake.params.metrics,
        device=snakemake.params.device,
        threads=snakemake.threads,
        examples_path=snakemake.output.examples,
    )
    table.to_csv(snakemake.output.table, index=False)
