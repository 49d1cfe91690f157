"""The report: Table 1, every figure, the findings and the random-VGG flag, in HTML and Markdown."""

from __future__ import annotations

import base64
import re
import shutil

import pandas as pd
import pytest

from advmri.errors import DataError
from advmri.grid import format_number
from advmri.report import build_report
from advmri.report.document import format_p, markdown_table
from advmri.report.sections import RANDOM_VGG_FLAG, flatten
from advmri.report.tables import load_evaluations

FIGURES = ("fig3", "fig4", "fig5", "fig6", "fig7")


def build(study, tmp_path, config):
    """Build the report from a copy of the study's statistics folder; returns (findings, html, md)."""
    stats_dir = tmp_path / "stats"
    shutil.copytree(study.stats_dir, stats_dir)
    findings = build_report(
        study.eval_csvs,
        references=study.references,
        examples=study.examples,
        dataset=study.dataset,
        config=config,
        html_path=tmp_path / "report.html",
        md_path=tmp_path / "report.md",
        stats_dir=stats_dir,
        figures_dir=tmp_path / "figures",
        compute_statistics=False,
    )
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    return findings, html, md


@pytest.fixture(scope="module")
def report_folder(study, tmp_path_factory):
    return tmp_path_factory.mktemp("imagenet")


@pytest.fixture(scope="module")
def imagenet_report(study, report_folder):
    return build(study, report_folder, study.config)


def test_report_writes_figures_3_to_7_with_their_csvs(imagenet_report, report_folder):
    for key in FIGURES:
        (png,) = (report_folder / "figures").glob(f"{key}_*.png")
        assert png.read_bytes()[:4] == b"\x89PNG" and png.with_suffix(".csv").is_file()


def test_report_draws_figures_3_4_at_every_other_w_per_and_5_at_every_other_lr(
    imagenet_report, report_folder, study
):
    shown_w_per, shown_lr = (study.config["stats"]["figures"][k] for k in ("w_per", "lr"))
    other_w_per = [w for w in study.grid["w_per"] if w != shown_w_per]
    other_lr = [lr for lr in study.grid["lr"] if lr != shown_lr]
    expected = (
        [f"fig3_wper{format_number(w)}" for w in other_w_per]
        + [f"fig4_wper{format_number(w)}" for w in other_w_per]
        + [f"fig5_lr{format_number(lr)}" for lr in other_lr]
    )
    expected = [f"supp{n:02d}_{name}" for n, name in enumerate(expected, start=1)]
    pngs = sorted(p.stem for p in (report_folder / "figures").glob("supp*.png"))
    assert pngs == expected
    for name in expected:
        assert (report_folder / "figures" / f"{name}.csv").is_file()
    _, html, md = imagenet_report
    assert "<h2>Supplementary figures</h2>" in html and "## Supplementary figures" in md
    for number, name in enumerate(expected, start=1):
        assert f'alt="{name}.png"' in html and f"(figures/{name}.png)" in md
        assert f"Supplementary Fig {number}. " in md
    # the supplementary Fig 3 shows the other W_per
    (fig3,) = (report_folder / "figures").glob("supp01_fig3_*.csv")
    assert set(pd.read_csv(fig3)["w_per"]) == {other_w_per[0]}


def test_report_html_embeds_every_figure_as_a_png(imagenet_report, study):
    _, html, _ = imagenet_report
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"', html)
    names = [alt for alt, _ in images]
    for key in FIGURES:
        assert any(name.startswith(key) for name in names), key
    for _, data in images:
        assert base64.b64decode(data)[:4] == b"\x89PNG"


def test_report_shows_table1_with_every_group(imagenet_report, study):
    _, html, md = imagenet_report
    assert "Table 1: best VGG-Enhanced versus best VGG+GAN-Enhanced" in html
    table1 = pd.read_csv(study.stats_dir / "table1.csv")
    md_rows = [line for line in md.splitlines() if re.match(r"\| (I|II) \| ", line)]
    # Table 1 and the table of differences both list every group
    assert len(md_rows) == 2 * len(table1)
    assert "ge_F" in html and "ssim_p" in html


def test_report_gives_each_finding_a_verdict(imagenet_report):
    findings, html, md = imagenet_report
    assert len(findings) == 7
    for finding in findings:
        assert finding.claim in md
    assert html.count(">YES<") == sum(f.holds is True for f in findings)


def test_report_carries_references_anova_settings_and_no_random_flag(imagenet_report):
    _, html, md = imagenet_report
    assert "LQ input" in html and "pretrained generator" in html
    assert "Mixed-model ANOVA" in html and "lr:w_per:w_adv" in html
    assert "perceptual.weights" in html
    assert RANDOM_VGG_FLAG not in html and "WARNING" not in md


def test_markdown_links_figures_that_exist(imagenet_report, tmp_path_factory):
    _, _, md = imagenet_report
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) >= len(FIGURES)
    assert all(link.startswith("figures/") for link in links)


def test_report_runs_the_statistics_and_flags_a_random_vgg_loudly(study, tmp_path):
    config = {**study.config, "perceptual": {"weights": "random", "weights_path": None}}
    build_report(
        study.eval_csvs,
        references=study.references,
        examples=study.examples,
        dataset=study.dataset,
        config=config,
        html_path=tmp_path / "report.html",
        md_path=tmp_path / "report.md",
        stats_dir=tmp_path / "stats",
        figures_dir=tmp_path / "figures",
    )
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert '<div class="warning">' in html and RANDOM_VGG_FLAG in html
    assert f"WARNING: The perceptual loss of this run used a {RANDOM_VGG_FLAG}" in md
    # advmri.stats wrote the folder the report reads
    for name in ("anova.csv", "emmeans.csv", "table1.csv", "tukey.csv", "variance.csv"):
        assert (tmp_path / "stats" / name).is_file(), name


def test_report_refuses_a_figure_w_per_outside_the_grid(study, tmp_path):
    config = {**study.config, "stats": {"figures": {"w_per": 0.7, "lr": 0.001}}}
    with pytest.raises(DataError, match="stats.figures.w_per"):
        build(study, tmp_path, config)


def test_report_refuses_a_statistics_folder_without_table1(study, tmp_path):
    stats_dir = tmp_path / "stats"
    shutil.copytree(study.stats_dir, stats_dir)
    (stats_dir / "table1.csv").unlink()
    with pytest.raises(DataError, match="table1.csv: file not found"):
        build_report(
            study.eval_csvs,
            references=study.references,
            examples=study.examples,
            dataset=study.dataset,
            config=study.config,
            html_path=tmp_path / "r.html",
            md_path=tmp_path / "r.md",
            stats_dir=stats_dir,
            figures_dir=tmp_path / "figures",
            compute_statistics=False,
        )


def test_evaluations_without_a_response_column_of_the_study_are_refused(study, tmp_path):
    broken = tmp_path / "broken.csv"
    pd.read_csv(study.eval_csvs[0]).drop(columns="ece").to_csv(broken, index=False)
    with pytest.raises(DataError, match="broken.csv: missing column.s. ece"):
        load_evaluations([broken], responses=["ge", "sharpness", "ece", "mie", "ssim"])


def test_evaluations_whose_responses_differ_between_files_are_refused(study, tmp_path):
    broken = tmp_path / "broken.csv"
    pd.read_csv(study.eval_csvs[1]).drop(columns="ece").to_csv(broken, index=False)
    with pytest.raises(DataError, match="broken.csv: its responses .* differ"):
        load_evaluations([study.eval_csvs[0], broken, *study.eval_csvs[2:]])


def test_a_reference_csv_is_not_taken_for_a_network(study):
    with pytest.raises(DataError, match="empty w_per/w_adv/lr"):
        load_evaluations([study.references["LQ input"]])


def test_p_values_and_tables_format_for_reading():
    assert format_p(3.2e-20) == "<1e-16"
    assert format_p(0.01234) == "0.012"
    table = pd.DataFrame({"term": ["w_adv"], "F": [12.3456], "p": [1e-5]})
    assert markdown_table(table).splitlines()[2] == "| w_adv | 12.35 | 1e-05 |"


def test_flatten_writes_nested_settings_as_dotted_keys():
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": "x"}) == [
        ("a.b", "1"),
        ("a.c", "[1, 2]"),
        ("d", "x"),
    ]
