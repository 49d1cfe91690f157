"""Synthesise the HQ/LQ lesion dataset from the configured anatomy (rule `synthesize`)."""

from advmri.data.dataset import build_dataset, write_dataset, write_preview
from advmri.logs import log_to

with log_to(snakemake.log[0]) as log:
    config = {
        "seed": snakemake.params.seed,
        "data": snakemake.params.data,
        "synthesis": snakemake.params.synthesis,
    }
    dataset = build_dataset(config, workers=snakemake.threads)
    out = snakemake.output
    write_dataset(dataset, hq=out.hq, lq=out.lq, lesion=out.lesion, samples=out.samples)
    write_preview(dataset, out.preview, snakemake.params.synthesis["preview_samples"])
    log.info(
        "synthesised %d samples of %d subjects (%s)",
        len(dataset.samples),
        dataset.samples["subject"].nunique(),
        config["data"]["source"],
    )
