"""Reference rows for the report: the LQ input itself, the HQ truth itself and the pretrained
generator (rule `evaluate_reference`)."""

from advmri.data.dataset import DatasetFiles
from advmri.evaluation import evaluate_lq, evaluate_network, evaluate_truth
from advmri.logs import log_to

with log_to(snakemake.log[0]):
    dataset = DatasetFiles(
        hq=snakemake.input.hq,
        lq=snakemake.input.lq,
        samples=snakemake.input.samples,
        lesion=snakemake.input.lesion,
    )
    settings = snakemake.params.metrics
    evaluate_lq(dataset, snakemake.input.split, settings).to_csv(snakemake.output.lq, index=False)
    evaluate_truth(dataset, snakemake.input.split, settings).to_csv(
        snakemake.output.truth, index=False
    )
    evaluate_network(
        snakemake.input.pretrain,
        dataset=dataset,
        split_csv=snakemake.input.split,
        settings=settings,
        device=snakemake.params.device,
        threads=snakemake.threads,
        examples_path=snakemake.output.examples,
    ).to_csv(snakemake.output.pretrain, index=False)
