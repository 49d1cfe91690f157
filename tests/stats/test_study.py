"""run_study_statistics end to end on simulated evaluation CSVs: the files the report reads."""

import numpy as np
import pandas as pd
import pytest

from advmri.cli import main as cli_main
from advmri.errors import ConfigError, DataError
from advmri.metrics.registry import PAPER_RESPONSES
from advmri.stats import OUTPUT_FILES, fit_response, read_eval_tables, run_study_statistics, table1
from advmri.stats.analysis import (
    ANOVA_COLUMNS,
    EMMEANS_COLUMNS,
    TUKEY_COLUMNS,
    VARIANCE_COLUMNS,
)
from advmri.stats.design import study_responses
from advmri.stats.diagnostics import DIAGNOSTICS_COLUMNS
from advmri.stats.simulate import SMALL_GRID, simulate_eval_table, write_simulated_eval_csvs
from advmri.stats.table1 import split_samples, table1_columns


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    paths = write_simulated_eval_csvs(
        root / "eval", n_images=24, seed=4, sharpness_missing=0.05, adversarial_gain=0.25
    )
    assert cli_main(["stats", *map(str, paths), "--out", str(root / "stats")]) == 0
    return paths, root / "stats"


def test_every_output_file_is_written_with_its_contracted_columns(study):
    _, out = study
    columns = {
        "anova.csv": ANOVA_COLUMNS,
        "variance.csv": VARIANCE_COLUMNS,
        "emmeans.csv": EMMEANS_COLUMNS,
        "tukey.csv": TUKEY_COLUMNS,
        "table1.csv": table1_columns(PAPER_RESPONSES),
        "diagnostics.csv": DIAGNOSTICS_COLUMNS,
    }
    for name in OUTPUT_FILES:
        assert (out / name).is_file(), name
    for name, expected in columns.items():
        assert list(pd.read_csv(out / name).columns) == expected, name
    assert (out / "diagnostics.png").stat().st_size > 10_000
    assert list(pd.read_csv(out / "anova.csv")["term"].unique()) == [
        "lr", "w_per", "w_adv", "lr:w_per", "lr:w_adv", "w_per:w_adv", "lr:w_per:w_adv",
    ]  # fmt: skip


def test_every_statistics_csv_orders_the_factors_w_per_w_adv_lr_as_the_evaluation_csvs(study):
    paths, out = study
    order = {"w_per": 0, "w_adv": 1, "lr": 2}
    evaluation = [c for c in pd.read_csv(paths[0]).columns if c in order]
    assert evaluation == ["w_per", "w_adv", "lr"]
    seen = set()
    for csv in sorted(out.glob("*.csv")):
        # factor columns grouped by what they belong to: "", "a_", "b_", "by_", "vgg_", "gan_"
        groups: dict[str, list[str]] = {}
        for column in pd.read_csv(csv).columns:
            for factor in order:
                prefix = column[: -len(factor)]
                if column.endswith(factor) and (prefix == "" or prefix.endswith("_")):
                    groups.setdefault(prefix, []).append(factor)
                    seen.add(csv.name)
        for prefix, factors in groups.items():
            assert factors == sorted(factors, key=order.get), (csv.name, prefix, factors)
    assert {"emmeans.csv", "tukey.csv", "table1.csv", "missing.csv"} <= seen


def test_tukey_families_hold_every_pair_of_levels_within_their_groups(study):
    _, out = study
    tukey = pd.read_csv(out / "tukey.csv")
    per_family = tukey[tukey["response"] == "ge"].groupby("family").size().to_dict()
    # 2 LR x 2 W_per x 3 W_adv: 4 groups x C(3,2); 2 W_per x C(6,2); C(3,2); C(2,2); C(2,2).
    assert per_family == {
        "w_adv|w_per,lr": 12,
        "lr:w_adv|w_per": 30,
        "w_adv": 3,
        "w_per": 1,
        "lr": 1,
    }
    main_w_adv = tukey[(tukey["family"] == "w_adv")]
    assert main_w_adv[["a_lr", "a_w_per", "by_w_per", "by_lr"]].isna().all().all()
    assert (main_w_adv["p_adj"].between(0, 1)).all()


def test_simulated_adversarial_gain_in_ge_is_found_by_anova_and_table1(study):
    _, out = study
    anova = pd.read_csv(out / "anova.csv").set_index(["response", "term"])
    assert anova.loc[("ge", "w_adv"), "p"] < 1e-6
    t1 = pd.read_csv(out / "table1.csv")
    assert (t1["vgg_w_adv"] == 0).all() and (t1["gan_w_adv"] > 0).all()
    assert (t1["ge_p"] < 1e-3).all()
    assert len(t1) == 2 + 4  # level I per W_per, level II per W_per x LR


def test_nan_sharpness_drops_rows_for_sharpness_only(study):
    _, out = study
    diag = pd.read_csv(out / "diagnostics.csv").set_index(["response", "scale"])
    assert diag.loc[("ge", "log"), "n"] == 12 * 24
    assert diag.loc[("sharpness", "log"), "n"] < 12 * 24
    assert bool(diag.loc[("ge", "log"), "model_scale"]) and not bool(
        diag.loc[("ssim", "log"), "model_scale"]
    )


def test_split_half_selection_picks_and_tests_on_disjoint_halves(study, tmp_path):
    paths, _ = study
    table = read_eval_tables(paths)
    pick, test = split_samples(table, seed=3)
    assert set(pick).isdisjoint(test) and len(pick) + len(test) == 24
    run_study_statistics(
        paths, tmp_path, table1_selection="split_half", table1_test="pooled", seed=3
    )
    md = (tmp_path / "table1.md").read_text()
    assert "split_half" in md and "seed 3" in md and "pooled" in md
    assert pd.read_csv(tmp_path / "table1.csv")["ge_F"].notna().all()


def test_table1_refuses_an_unknown_test():
    table = simulate_eval_table(SMALL_GRID, n_images=6, seed=0)
    with pytest.raises(ConfigError, match="table1.test"):
        table1(table, test="welch")


def test_a_missing_network_is_reported_as_an_incomplete_grid(study):
    paths, _ = study
    with pytest.raises(DataError, match="full .* grid"):
        read_and_fit = read_eval_tables(paths[1:])
        fit_response(read_and_fit, "ge")


def test_a_csv_without_a_metric_column_of_the_study_is_refused(tmp_path):
    frame = simulate_eval_table(SMALL_GRID, n_images=4, seed=0).drop(columns=["ece"])
    frame.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match="bad.csv: missing column.s. ece"):
        read_eval_tables([tmp_path / "bad.csv"], responses=PAPER_RESPONSES)


def test_a_csv_without_ge_is_refused_as_table_1_ranks_by_it(tmp_path):
    frame = simulate_eval_table(SMALL_GRID, n_images=4, seed=0).drop(columns=["ge"])
    frame.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match="bad.csv: missing column.s. ge"):
        read_eval_tables([tmp_path / "bad.csv"])


def test_the_study_responses_are_the_registered_columns_of_the_csvs(tmp_path):
    frame = simulate_eval_table(SMALL_GRID, n_images=4, seed=0).drop(columns=["ece", "mie"])
    frame.to_csv(tmp_path / "three.csv", index=False)
    table = read_eval_tables([tmp_path / "three.csv"])
    assert list(study_responses(table)) == ["ge", "sharpness", "ssim"]
    assert study_responses(table)["ssim"] == "identity"
    chosen = read_eval_tables([tmp_path / "three.csv"], responses=["ssim", "ge"])
    assert list(study_responses(chosen)) == ["ge", "ssim"]


def test_csvs_with_different_responses_are_refused(tmp_path):
    paths = write_simulated_eval_csvs(tmp_path / "eval", n_images=4, seed=0)
    frame = pd.read_csv(paths[2]).drop(columns=["mie"])
    frame.to_csv(paths[2], index=False)
    with pytest.raises(DataError, match=f"{paths[2].name}: its responses .* differ"):
        read_eval_tables(paths)


def test_cli_reports_a_missing_file_in_one_line(tmp_path, capsys):
    assert cli_main(["stats", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]


def test_a_network_with_no_usable_value_is_named_and_left_out_of_that_response_only(caplog):
    table = simulate_eval_table(SMALL_GRID, n_images=6, seed=0)
    table.loc[(table["w_adv"] == 3.0) & (table["lr"] == 0.01) & (table["w_per"] == 1.0), "mie"] = (
        0.0
    )
    with caplog.at_level("WARNING", logger="advmri"):
        mie = fit_response(table, "mie")
    assert "no usable value for network(s) lr=0.01 w_per=1 w_adv=3" in caplog.text
    assert mie.design.present.size == mie.design.n_cells - 1
    assert np.isnan(mie.cell_means).sum() == 1
    ge = fit_response(table, "ge")
    assert ge.design.present is None and np.isfinite(ge.fit.beta).all()
    table["mie"] = 0.0  # no network left: a one-line error naming the response
    with pytest.raises(DataError, match="stats: mie has a usable value in 0 network"):
        fit_response(table, "mie")
