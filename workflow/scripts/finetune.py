"""Fine-tune the pretrained generator for one grid cell (rule `finetune`)."""

from advmri.grid import Cell
from advmri.logs import log_to
from advmri.train import checkpoint_every, load_training_data, speed_options, train_network

with log_to(snakemake.log[0]):
    cell = Cell.parse(snakemake.wildcards.cell)
    data = load_training_data(
        hq=snakemake.input.hq,
        lq=snakemake.input.lq,
        samples=snakemake.input.samples,
        split=snakemake.input.split,
    )
    train_network(
        snakemake.params.settings,
        data,
        generator_path=snakemake.output.network,
        log_path=snakemake.output.train_log,
        checkpoint_dir=snakemake.params.checkpoint_dir,
        initial_generator=snakemake.input.pretrained,
        checkpoint_every=checkpoint_every(snakemake.config, cell),
        threads=snakemake.threads,
        speed=speed_options(snakemake.config),
        synthesis=snakemake.config["synthesis"],
    )
