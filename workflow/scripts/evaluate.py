"""Evaluate one grid network on the test split (rule `evaluate`)."""

from advmri.data.dataset import DatasetFiles
from advmri.evaluation import evaluate_network
from advmri.logs import log_to

with log_to(snakemake.log[0]):
    table = evaluate_network(
        snakemake.input.network,
        dataset=DatasetFiles(
            hq=snakemake.input.hq,
            lq=snakemake.input.lq,
            samples=snakemake.input.samples,
            lesion=snakemake.input.lesion,
        ),
        split_csv=snakemake.input.split,
        settings=snakemake.params.metrics,
        device=snakemake.params.device,
        threads=snakemake.threads,
        examples_path=snakemake.output.examples,
    )
    table.to_csv(snakemake.output.table, index=False)
