"""Bad evaluation CSVs are refused in one line naming the file (and line), by the library and by
``advmri stats`` (exit 2); legitimately missing values stay NaN and are counted, never dropped
silently."""

import re

import numpy as np
import pandas as pd
import pytest

from advmri.cli import main as cli_main
from advmri.errors import DataError
from advmri.stats import read_eval_tables, run_study_statistics
from advmri.stats.design import MISSING_COLUMNS
from advmri.stats.simulate import SMALL_GRID, simulate_eval_table, write_eval_csvs

N_IMAGES = 6


@pytest.fixture
def study(tmp_path):
    """Evaluation CSVs of the small grid (12 networks x 6 images), one per network."""
    table = simulate_eval_table(SMALL_GRID, n_images=N_IMAGES, seed=2, adversarial_gain=0.25)
    return write_eval_csvs(table, tmp_path / "eval")


def refused(paths, tmp_path, capsys, pattern: str) -> str:
    """Assert the library raises DataError and the CLI exits 2 with one line, both matching."""
    with pytest.raises(DataError, match=pattern):
        run_study_statistics(paths, tmp_path / "lib")
    capsys.readouterr()
    code = cli_main(["stats", *map(str, paths), "--out", str(tmp_path / "cli")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1, err
    assert err[0].startswith("advmri stats: ") and "advmri stats: stats:" not in err[0]
    assert re.search(pattern, err[0]), err[0]
    return err[0]


def edit_cell(path, row: int, column: str, text: str) -> None:
    """Rewrite one cell of a CSV as raw text (quoted by the CSV writer when it needs it)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[row, column] = text
    frame.to_csv(path, index=False)


def test_text_in_a_response_cell_is_named_with_its_file_and_line(study, tmp_path, capsys):
    edit_cell(study[3], 2, "ge", "abc")
    refused(
        study, tmp_path, capsys, rf"{re.escape(study[3].name)}, line 4: ge = 'abc' is not a number"
    )


def test_a_decimal_comma_is_refused_quoted_or_not(study, tmp_path, capsys):
    edit_cell(study[1], 0, "mie", "1,5")  # quoted: "1,5"
    message = refused(study, tmp_path, capsys, r", line 2: mie = '1,5' is not a number")
    assert "decimal comma" in message and study[1].name in message
    edit_cell(study[1], 0, "mie", "0.5")
    text = study[2].read_text().splitlines()
    fields = text[2].split(",")
    fields[8] = "1,5"  # unquoted: one field too many on line 3
    text[2] = ",".join(fields)
    study[2].write_text("\n".join(text) + "\n")
    refused(study, tmp_path, capsys, rf"{re.escape(study[2].name)} is not a readable CSV: .*line 3")


def test_an_empty_response_without_a_reason_is_refused(study, tmp_path, capsys):
    edit_cell(study[5], 4, "ssim", "")
    refused(
        study,
        tmp_path,
        capsys,
        rf"{re.escape(study[5].name)}, line 6: ssim is empty and no reason is recorded",
    )


def test_an_empty_sharpness_whose_profiles_were_fitted_is_refused(study, tmp_path, capsys):
    edit_cell(study[0], 1, "sharpness", "")
    refused(
        study,
        tmp_path,
        capsys,
        r"line 3: sharpness is empty although sharpness_profiles_fitted = 8 says it was fitted",
    )


def test_a_negative_log_scale_response_is_refused(study, tmp_path, capsys):
    edit_cell(study[0], 0, "ece", "-0.25")
    refused(study, tmp_path, capsys, r"line 2: ece = -0.25 is negative")


def test_a_zero_byte_csv_is_named(study, tmp_path, capsys):
    study[4].write_bytes(b"")
    refused(study, tmp_path, capsys, rf"{re.escape(study[4].name)} is empty \(0 bytes\)")


def test_a_header_only_csv_is_named(study, tmp_path, capsys):
    study[4].write_text(study[4].read_text().splitlines()[0] + "\n")
    refused(study, tmp_path, capsys, rf"{re.escape(study[4].name)} has a header but no rows")


def test_a_non_numeric_sample_is_named(study, tmp_path, capsys):
    edit_cell(study[7], 3, "sample", "img_3")
    refused(
        study, tmp_path, capsys, rf"{re.escape(study[7].name)}, line 5: sample = 'img_3' is not a"
    )


def test_a_csv_from_another_test_set_is_refused(study, tmp_path, capsys):
    frame = pd.read_csv(study[6])
    frame["sample"] += 1000
    frame.to_csv(study[6], index=False)
    message = refused(
        study,
        tmp_path,
        capsys,
        rf"{re.escape(study[6].name)}: its test samples differ from those of the 11 other",
    )
    assert "6 (1000, 1001, 1002, ...) not among theirs" in message


def test_a_single_network_is_refused(study, tmp_path, capsys):
    refused(study[:1], tmp_path, capsys, rf"{re.escape(study[0].name)}: only one network")


def test_an_empty_sharpness_with_no_fitted_profile_is_counted_not_dropped(study, tmp_path):
    frame = pd.read_csv(study[2])
    frame.loc[[1, 4], "sharpness"] = np.nan
    frame.loc[[1, 4], "sharpness_profiles_fitted"] = 0
    frame.to_csv(study[2], index=False)
    other = pd.read_csv(study[8])
    other.loc[0, "ssim"] = np.nan
    other["ssim_reason"] = ""
    other.loc[0, "ssim_reason"] = "box_too_small"
    other.to_csv(study[8], index=False)
    table = read_eval_tables(study)
    assert table["sharpness"].isna().sum() == 2  # kept as NaN, not dropped
    out = tmp_path / "stats"
    run_study_statistics(study, out)
    missing = pd.read_csv(out / "missing.csv")
    assert list(missing.columns) == MISSING_COLUMNS
    rows = missing.to_dict("records")
    assert [(r["network"], r["response"], r["reason"], r["count"]) for r in rows] == [
        (study[2].stem, "sharpness", "no_profile_fitted", 2),
        (study[8].stem, "ssim", "box_too_small", 1),
    ]
    diag = pd.read_csv(out / "diagnostics.csv").set_index(["response", "scale"])
    assert diag.loc[("sharpness", "log"), "n"] == 12 * N_IMAGES - 2
    assert diag.loc[("ssim", "identity"), "n"] == 12 * N_IMAGES - 1


def test_nothing_missing_writes_a_header_only_missing_table(study, tmp_path):
    run_study_statistics(study, tmp_path / "stats")
    missing = pd.read_csv(tmp_path / "stats" / "missing.csv")
    assert missing.empty and list(missing.columns) == MISSING_COLUMNS
