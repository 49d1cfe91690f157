"""A metric registered from outside the package goes through evaluation, statistics and report.

The toy response is registered, selected with ``metrics.responses`` and computed by the library's
own evaluation on fabricated images of every grid network; the statistics fit it and the report
shows it, without any other code naming it.
"""

import numpy as np
import pandas as pd
import pytest

from advmri.grid import Cell
from advmri.metrics.evaluate import columns, evaluate_arrays
from advmri.metrics.lesion import EMPTY_MASK, MetricResult
from advmri.metrics.registry import Response, per_image, register, unregister
from advmri.report.build import build_report

from fabricate import metrics_settings

TOY = "lesion_brightness"
RESPONSES = ["ge", "mie", "ssim", TOY]
#: The repository's metrics settings (config.yaml) with the toy among the study's responses.
METRICS = metrics_settings(responses=RESPONSES)


def lesion_brightness(enhanced, truth, lesion, bbox, settings) -> MetricResult:
    """Mean enhanced intensity inside the lesion mask; NaN (``empty_mask``) without a lesion."""
    if not lesion.any():
        return MetricResult(np.nan, EMPTY_MASK)
    return MetricResult(float(enhanced[lesion].mean()))


@pytest.fixture
def toy_metric():
    response = register(
        Response(
            name=TOY,
            label="Brightness",
            unit="intensity",
            scale="log",
            better="higher",
            compute=per_image(lesion_brightness),
            summary="mean enhanced intensity inside the lesion",
        )
    )
    yield response
    unregister(TOY)


def test_a_registered_metric_runs_through_evaluation_statistics_and_report(
    study, toy_metric, tmp_path
):
    hq = np.load(study.dataset["hq"])
    lq = np.load(study.dataset["lq"])
    lesion = np.load(study.dataset["lesion"])
    samples = pd.read_csv(study.dataset["samples"])
    test_ids = np.sort(pd.read_csv(study.eval_csvs[0])["sample"].unique())
    test = samples.set_index("sample", drop=False).loc[test_ids].reset_index(drop=True)
    rng = np.random.default_rng(3)
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    eval_csvs = []
    for w_per in study.grid["w_per"]:
        for w_adv in study.grid["w_adv"]:
            for lr in study.grid["lr"]:
                cell = Cell(w_per, w_adv, lr)
                # adversarial training brightens the lesion a little, differently per image
                gain = 0.02 * np.log1p(w_adv) + rng.normal(0, 0.002, (len(test_ids), 1, 1))
                enhanced = hq[test_ids] + gain * lesion[test_ids]
                enhanced += rng.normal(0, 0.01, enhanced.shape)
                table = evaluate_arrays(enhanced, hq[test_ids], lesion[test_ids], test, METRICS)
                table = table.assign(w_per=w_per, w_adv=w_adv, lr=lr)[columns(METRICS)]
                path = eval_dir / f"{cell.name}.csv"
                table.to_csv(path, index=False)
                eval_csvs.append(path)
    assert TOY in pd.read_csv(eval_csvs[0]).columns
    assert f"{TOY}_reason" in pd.read_csv(eval_csvs[0]).columns
    reference = evaluate_arrays(lq[test_ids], hq[test_ids], lesion[test_ids], test, METRICS)
    reference = reference.assign(w_per=np.nan, w_adv=np.nan, lr=np.nan)[columns(METRICS)]
    reference.to_csv(tmp_path / "lq.csv", index=False)

    stats_dir = tmp_path / "stats"
    findings = build_report(
        eval_csvs,
        references={"LQ input": tmp_path / "lq.csv"},
        examples=study.examples,
        dataset=study.dataset,
        config={**study.config, "metrics": METRICS},
        html_path=tmp_path / "report.html",
        md_path=tmp_path / "report.md",
        stats_dir=stats_dir,
        figures_dir=tmp_path / "figures",
    )

    anova = pd.read_csv(stats_dir / "anova.csv")
    assert list(anova["response"].unique()) == RESPONSES
    w_adv = anova[(anova["response"] == TOY) & (anova["term"] == "w_adv")].iloc[0]
    assert w_adv["p"] < 0.05  # the brightening is found
    assert {f"{TOY}_F", f"{TOY}_p"} <= set(pd.read_csv(stats_dir / "table1.csv").columns)
    assert TOY in set(pd.read_csv(stats_dir / "emmeans.csv")["response"])
    assert "Brightness F (p)" in (stats_dir / "table1.md").read_text()
    assert TOY in set(pd.read_csv(tmp_path / "figures" / "fig3_distributions.csv")["response"])
    md = (tmp_path / "report.md").read_text()
    assert "ln(Brightness)" in md and "ln(Sharpness)" not in md
    assert "positive SSIM/Brightness favour VGG+GAN" in md
    sharpness = next(f for f in findings if f.claim.startswith("Sharpness"))
    assert sharpness.holds is None and "sharpness not among the study's responses" in (
        sharpness.evidence
    )
