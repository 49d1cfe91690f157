"""The study report (study §7-§9): Figures 3-7, Table 1, the ANOVA and the paper's findings.

The report reads only the files of the evaluation and statistics stages, so it can be rebuilt from
an existing statistics folder.
"""

from advmri.report.build import build_report, make_figures
from advmri.report.findings import Finding, evaluate_findings
from advmri.report.statistics import read_stats, write_statistics

__all__ = [
    "Finding",
    "build_report",
    "evaluate_findings",
    "make_figures",
    "read_stats",
    "write_statistics",
]
