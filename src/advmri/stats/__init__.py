"""Statistics of the study: mixed-effects ANOVA, EMMs, Tukey HSD, Table 1, diagnostics.

Per response of the study (the paper's: ln GE, ln sharpness, ln ECE, ln MIE, SSIM; each
response's scale is registered in :mod:`advmri.metrics.registry`) the model
``y ~ lr * w_per * w_adv + (1 | sample)`` is fitted by REML (closed form when every network has
every image) and tested as lmerTest + emmeans do (type-III Wald F, Satterthwaite df, Tukey).
Entry point: :func:`run_study_statistics`.
"""

from advmri.stats.analysis import (
    ResponseFit,
    anova_table,
    emmeans_table,
    fit_response,
    tukey_table,
    variance_table,
)
from advmri.stats.design import read_eval_tables, study_responses
from advmri.stats.diagnostics import diagnostics
from advmri.stats.mixed import MixedFit, fit_complete, fit_mixed, fit_reml
from advmri.stats.study import OUTPUT_FILES, fit_all, run_study_statistics
from advmri.stats.table1 import table1, table1_markdown

__all__ = [
    "OUTPUT_FILES",
    "MixedFit",
    "ResponseFit",
    "anova_table",
    "diagnostics",
    "emmeans_table",
    "fit_all",
    "fit_complete",
    "fit_mixed",
    "fit_reml",
    "fit_response",
    "read_eval_tables",
    "run_study_statistics",
    "study_responses",
    "table1",
    "table1_markdown",
    "tukey_table",
    "variance_table",
]
