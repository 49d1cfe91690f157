"""Training health and the mixed-model statistics of every network (rule `stats`)."""

from pathlib import Path

from advmri.logs import log_to
from advmri.report import write_statistics

with log_to(snakemake.log[0]):
    write_statistics(
        list(snakemake.input.evaluations),
        snakemake.output.stats,
        settings=snakemake.params.settings,
        lq_reference=snakemake.input.lq_reference,
        # results/networks/<cell>/train_log.csv: the folder names the cell
        train_logs={Path(p).parent.name: p for p in snakemake.input.train_logs},
        pretrain_log=snakemake.input.pretrain_log,
    )
