"""The report counts the values the statistics left out, and refuses bad evaluation CSVs in one
line naming the file."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from advmri.errors import DataError
from advmri.report import build_report
from advmri.report.missing import MISSING_COLUMNS, missing_value_blocks
from advmri.report.tables import load_evaluations


def test_report_shows_missing_values_per_reason_and_per_network(study, tmp_path):
    stats_dir = tmp_path / "stats"
    shutil.copytree(study.stats_dir, stats_dir)
    rows = [
        ("wper0.5_wadv0_lr0.001", 0.001, 0.5, 0.0, "sharpness", "no_profile_fitted", 3),
        ("wper0.5_wadv1_lr0.01", 0.01, 0.5, 1.0, "sharpness", "no_profile_fitted", 2),
        ("wper0.5_wadv1_lr0.01", 0.01, 0.5, 1.0, "ssim", "box_too_small", 1),
    ]
    pd.DataFrame(rows, columns=MISSING_COLUMNS).to_csv(stats_dir / "missing.csv", index=False)
    build_report(
        study.eval_csvs,
        references=study.references,
        examples=study.examples,
        dataset=study.dataset,
        config=study.config,
        html_path=tmp_path / "report.html",
        md_path=tmp_path / "report.md",
        stats_dir=stats_dir,
        figures_dir=tmp_path / "figures",
        compute_statistics=False,
    )
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "Values left out of the model, per response and reason" in md
    assert "| sharpness | no_profile_fitted | 5 | 2 |" in md
    assert "| wper0.5_wadv1_lr0.01 | ssim | box_too_small | 1 |" in md
    assert "box_too_small" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_missing_values_say_none_or_absent_in_one_line(tmp_path):
    (blocks,) = missing_value_blocks(tmp_path)
    assert "not recorded" in blocks.text
    pd.DataFrame(columns=MISSING_COLUMNS).to_csv(tmp_path / "missing.csv", index=False)
    (blocks,) = missing_value_blocks(tmp_path)
    assert "none" in blocks.text


def test_evaluations_with_text_in_a_response_are_refused_naming_file_and_line(study, tmp_path):
    paths = []
    for path in study.eval_csvs:
        paths.append(tmp_path / path.name)
        shutil.copy(path, paths[-1])
    frame = pd.read_csv(paths[2], dtype=str, keep_default_na=False)
    frame.loc[0, "ge"] = "abc"
    frame.to_csv(paths[2], index=False)
    with pytest.raises(DataError, match=rf"{paths[2].name}, line 2: ge = 'abc' is not a number"):
        load_evaluations(paths)
