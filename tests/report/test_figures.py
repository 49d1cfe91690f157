"""Figures 3-7 each write a PNG and the CSV of exactly what they show."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from advmri.errors import DataError
from advmri.grid import Cell
from advmri.report.build import figure_winners
from advmri.report.examples import example_images
from advmri.report.figures import (
    ge_optimal_gan,
    plot_distributions,
    plot_examples,
    plot_interaction_lr,
    plot_interaction_wper,
    zoom_window,
)
from advmri.report.statistics import read_stats
from advmri.report.tables import load_evaluations

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def is_png(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5000


def test_fig3_summarises_every_response_and_network_at_the_chosen_w_per(study, tmp_path):
    evals = load_evaluations(study.eval_csvs)
    summary = plot_distributions(evals, 1.0, tmp_path / "f3.png", tmp_path / "f3.csv")
    assert is_png(tmp_path / "f3.png")
    written = pd.read_csv(tmp_path / "f3.csv")
    n_networks = len(study.grid["w_adv"]) * len(study.grid["lr"])
    assert len(written) == len(summary) == 5 * n_networks
    assert set(written["w_per"]) == {1.0}
    assert list(written.columns[:4]) == ["response", "w_per", "w_adv", "lr"]
    # means on the model scale: ln for GE
    at = evals[(evals["w_per"] == 1.0) & (evals["w_adv"] == 0.5) & (evals["lr"] == 0.01)]
    row = written[
        (written["response"] == "ge") & (written["w_adv"] == 0.5) & (written["lr"] == 0.01)
    ]
    assert row["mean"].item() == pytest.approx(np.log(at["ge"]).mean())
    assert row["n"].item() == len(at)


def test_fig3_refuses_a_w_per_outside_the_grid(study, tmp_path):
    evals = load_evaluations(study.eval_csvs)
    with pytest.raises(DataError, match=r"W_per = 0.7 \(stats.figures.w_per\)"):
        plot_distributions(evals, 0.7, tmp_path / "f3.png", tmp_path / "f3.csv")


def test_fig4_marks_exactly_the_two_table1_winners(study, tmp_path):
    stats = read_stats(study.stats_dir)
    vgg, gan = figure_winners(stats, 1.0)
    rows = plot_interaction_lr(
        stats.emmeans, 1.0, vgg, gan, tmp_path / "f4.png", tmp_path / "f4.csv"
    )
    assert is_png(tmp_path / "f4.png")
    written = pd.read_csv(tmp_path / "f4.csv")
    assert len(written) == len(rows) == 5 * len(study.grid["w_adv"]) * len(study.grid["lr"])
    for column, cell in (("best_vgg", vgg), ("best_gan", gan)):
        marked = written[written[column]]
        assert len(marked) == 5  # one per response panel
        assert set(marked["w_adv"]) == {cell.w_adv} and set(marked["lr"]) == {cell.lr}
    assert vgg.w_adv == 0 and gan.w_adv > 0


def test_fig4_refuses_a_marked_network_without_estimates(study, tmp_path):
    stats = read_stats(study.stats_dir)
    vgg, _ = figure_winners(stats, 1.0)
    with pytest.raises(DataError, match="wper1_wadv7_lr0.01"):
        plot_interaction_lr(
            stats.emmeans, 1.0, vgg, Cell(1.0, 7.0, 0.01), tmp_path / "f4.png", tmp_path / "f4.csv"
        )


def test_fig5_marks_each_w_pers_ge_optimal_adversarial_network_in_every_panel(study, tmp_path):
    stats = read_stats(study.stats_dir)
    rows = plot_interaction_wper(stats.emmeans, 0.001, tmp_path / "f5.png", tmp_path / "f5.csv")
    assert is_png(tmp_path / "f5.png")
    written = pd.read_csv(tmp_path / "f5.csv")
    assert len(written) == len(rows) == 5 * len(study.grid["w_per"]) * len(study.grid["w_adv"])
    # one marked network per W_per, the same one in all five response panels
    assert (written.groupby(["response", "w_per"])["marked"].sum() == 1).all()
    ge = written[written["response"] == "ge"]
    for w_per, group in ge.groupby("w_per"):
        gan = group[group["w_adv"] > 0]
        best = gan.loc[gan["estimate"].idxmin(), "w_adv"]
        marked = written[written["marked"] & (written["w_per"] == w_per)]
        assert set(marked["w_adv"]) == {best} and best > 0
    assert ge_optimal_gan(stats.emmeans, 0.001) == {
        w: float(g.loc[g["estimate"].idxmin(), "w_adv"])
        for w, g in ge[ge["w_adv"] > 0].groupby("w_per")
    }


def test_fig5_never_marks_a_vgg_enhanced_network_even_where_it_has_the_smallest_ge(tmp_path):
    rows = []
    for response in ("ge", "sharpness", "ece", "mie", "ssim"):
        for w_adv, estimate in ((0.0, -3.0), (0.1, -2.0), (1.0, -2.5)):
            rows.append(
                {
                    "response": response,
                    "lr": 0.01,
                    "w_per": 1.0,
                    "w_adv": w_adv,
                    "estimate": estimate,
                    "se": 0.1,
                    "df": 10.0,
                    "ci_low": estimate - 0.2,
                    "ci_high": estimate + 0.2,
                }
            )
    written = plot_interaction_wper(
        pd.DataFrame(rows), 0.01, tmp_path / "f5.png", tmp_path / "f5.csv"
    )
    assert set(written.loc[written["marked"], "w_adv"]) == {1.0}


@pytest.mark.parametrize(
    ("bbox", "shape"),
    [
        ((60, 50, 74, 60), (208, 176)),
        ((0, 0, 5, 5), (208, 176)),
        ((180, 150, 208, 176), (208, 176)),
    ],
)
def test_zoom_window_is_square_inside_the_image_and_holds_the_box(bbox, shape):
    r0, c0, r1, c1 = zoom_window(bbox, shape)
    assert 0 <= r0 < r1 <= shape[0] and 0 <= c0 < c1 <= shape[1]
    assert r1 - r0 == c1 - c0 >= 24
    assert r0 <= bbox[0] and c0 <= bbox[1] and r1 >= bbox[2] and c1 >= bbox[3]


def test_examples_figure_shows_four_columns_per_sample_with_the_images_scores(study, tmp_path):
    stats = read_stats(study.stats_dir)
    vgg, gan = figure_winners(stats, 1.0)
    examples = {p.stem: p for p in study.examples}
    samples, images, networks = example_images(vgg, gan, examples, study.dataset)
    assert list(samples["sample"]) == study.example_samples
    # LQ and ground truth are the dataset's rows of those samples
    hq = np.load(study.dataset["hq"])
    np.testing.assert_array_equal(images["Ground truth"], hq[study.example_samples])
    evals = load_evaluations(study.eval_csvs)
    scores = evals[(evals["w_per"] == vgg.w_per) & (evals["w_adv"] == gan.w_adv)]
    scores = scores[scores["lr"] == gan.lr].assign(network=gan.name)
    table = plot_examples(
        samples, images, networks, scores, "t", tmp_path / "f6.png", tmp_path / "f6.csv"
    )
    assert is_png(tmp_path / "f6.png")
    written = pd.read_csv(tmp_path / "f6.csv")
    assert len(written) == len(table) == 4 * len(study.example_samples)
    assert list(written["column"][:4]) == [
        "LQ input",
        "VGG-Enhanced",
        "VGG+GAN-Enhanced",
        "Ground truth",
    ]
    gan_rows = written[written["network"] == gan.name]
    assert gan_rows["ge"].notna().all()
    assert written[written["network"] == "input"]["ge"].isna().all()


def test_examples_refuse_a_network_without_an_examples_file(study):
    with pytest.raises(DataError, match="no examples file for wper9_wadv0_lr0.01"):
        example_images(Cell(9, 0, 0.01), Cell(9, 1, 0.01), {}, study.dataset)
