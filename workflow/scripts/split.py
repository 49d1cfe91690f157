"""Assign each patient to train, val or test (rule `split`)."""

from advmri.data.dataset import read_samples
from advmri.data.split import split_subjects
from advmri.logs import log_to

with log_to(snakemake.log[0]) as log:
    samples = read_samples(snakemake.input.samples)
    settings = snakemake.params.split
    table = split_subjects(
        samples["subject"],
        settings["test_fraction"],
        settings["val_fraction"],
        snakemake.params.seed,
    )
    table.to_csv(snakemake.output.table, index=False)
    log.info("split: %s", table["split"].value_counts().to_dict())
