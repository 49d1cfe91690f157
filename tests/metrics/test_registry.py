"""The metric registry: one definition per response, read by the evaluation, the config and the
README's column lists."""

import re

import numpy as np
import pandas as pd
import pytest

from advmri.errors import ConfigError, DataError
from advmri.metrics.evaluate import columns, evaluate_arrays
from advmri.metrics.lesion import MetricResult, mie
from advmri.metrics.registry import (
    PAPER_RESPONSES,
    Response,
    get_response,
    per_image,
    register,
    registered,
    select_responses,
    table_columns,
    unregister,
)
from advmri.metrics.settings import MetricSettings

from fabricate import REPO, metrics_settings

#: The repository's metrics settings (config.yaml): the paper's five responses.
SETTINGS = metrics_settings()


def disc_stack(n: int = 3, size: int = 40) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    rows, cols = np.mgrid[0:size, 0:size]
    lesion = np.stack([np.hypot(rows - 20, cols - 19 - i) < 6 + i for i in range(n)])
    truth = 0.3 + 0.5 * lesion
    samples = pd.DataFrame(
        {
            "sample": np.arange(n),
            "subject": "s0",
            "bbox_r0": [np.nonzero(m)[0].min() for m in lesion],
            "bbox_c0": [np.nonzero(m)[1].min() for m in lesion],
            "bbox_r1": [np.nonzero(m)[0].max() + 1 for m in lesion],
            "bbox_c1": [np.nonzero(m)[1].max() + 1 for m in lesion],
        }
    )
    return truth, lesion, samples


def test_the_paper_five_are_registered_with_their_scales_and_directions():
    assert [r.name for r in registered()[:5]] == list(PAPER_RESPONSES)
    scales = {r: get_response(r).scale for r in PAPER_RESPONSES}
    assert scales == {
        "ge": "log",
        "sharpness": "log",
        "ece": "log",
        "mie": "log",
        "ssim": "identity",
    }
    better = {r: get_response(r).better for r in PAPER_RESPONSES}
    assert better == {
        "ge": "lower",
        "sharpness": "higher",
        "ece": "lower",
        "mie": "lower",
        "ssim": "higher",
    }
    assert get_response("ge").model_label == "ln(GE)" and get_response("ssim").model_label == "SSIM"


def test_the_paper_study_writes_the_columns_it_always_wrote():
    assert columns() == [
        "sample", "subject", "w_per", "w_adv", "lr",
        "ge", "sharpness", "ece", "mie", "ssim", "sharpness_profiles_fitted", "sharpness_method",
        "ge_reason", "sharpness_reason", "ece_reason", "mie_reason", "ssim_reason",
    ]  # fmt: skip


def test_selection_follows_the_registry_order_not_the_config_order():
    names = [r.name for r in select_responses(["ssim", "ge", "mie"])]
    assert names == ["ge", "mie", "ssim"]
    assert MetricSettings.from_config({**SETTINGS, "responses": ["ssim", "ge"]}).responses == (
        "ge",
        "ssim",
    )


def test_an_unknown_response_is_one_config_line_listing_the_known_ones():
    with pytest.raises(ConfigError) as raised:
        MetricSettings.from_config({**SETTINGS, "responses": ["ge", "psnrr"]})
    known = ", ".join(r.name for r in registered())
    assert str(raised.value) == (
        f"config: metrics.responses[1] = 'psnrr' is not a registered response (known: {known})"
    )


def test_a_name_or_column_taken_by_another_response_cannot_be_registered():
    base = dict(label="X", unit="", scale="identity", better="higher", summary="x")
    with pytest.raises(ValueError, match="'mie' is already registered"):
        register(Response(name="mie", compute=per_image(lambda *a: MetricResult(0.0)), **base))
    with pytest.raises(ValueError, match="column 'sharpness_method' is another response's"):
        register(
            Response(
                name="other",
                compute=per_image(lambda *a: MetricResult(0.0)),
                extra_columns=("sharpness_method",),
                **base,
            )
        )
    with pytest.raises(ValueError, match="scale 'ln' not in"):
        register(Response(name="ln_one", compute=per_image(lambda *a: MetricResult(0.0)),
                          **{**base, "scale": "ln"}))  # fmt: skip
    assert "other" not in {r.name for r in registered()}


def test_a_selected_subset_computes_only_its_responses_with_the_same_values():
    truth, lesion, samples = disc_stack()
    enhanced = np.clip(truth + 0.05 * np.random.default_rng(0).normal(size=truth.shape), 0, 1)
    full = evaluate_arrays(enhanced, truth, lesion, samples, SETTINGS)
    subset = evaluate_arrays(
        enhanced, truth, lesion, samples, {**SETTINGS, "responses": ["mie", "ge"]}
    )
    assert list(subset.columns) == ["sample", "subject", "ge", "mie", "ge_reason", "mie_reason"]
    pd.testing.assert_frame_equal(subset[["ge", "mie"]], full[["ge", "mie"]])
    box = tuple(samples.iloc[1][["bbox_r0", "bbox_c0", "bbox_r1", "bbox_c1"]])
    assert subset["mie"].iloc[1] == mie(enhanced[1], truth[1], box)


def test_a_compute_that_returns_the_wrong_number_of_values_is_named():
    def broken(stack, settings):
        from advmri.metrics.registry import ResponseValues

        return ResponseValues(np.zeros(1), np.full(1, "", dtype=object))

    register(Response(name="broken", label="B", unit="", scale="identity", better="higher",
                      compute=broken, summary="x"))  # fmt: skip
    try:
        truth, lesion, samples = disc_stack()
        with pytest.raises(DataError, match="metric 'broken' gave \\(1,\\) values for 3 images"):
            evaluate_arrays(truth, truth, lesion, samples, {**SETTINGS, "responses": ["broken"]})
    finally:
        unregister("broken")


def readme_table(text: str, heading: str) -> list[list[str]]:
    """The rows of the first Markdown table after ``heading``, as lists of stripped cells."""
    after = text[text.index(heading) :]
    lines = [line for line in after.splitlines() if line.startswith("|")]
    start = after.splitlines().index(lines[0])
    rows = []
    for line in after.splitlines()[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows[2:]  # header and rule


def test_readme_lists_every_registered_response_as_the_registry_defines_it():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    rows = readme_table(text, "### Responses (`metrics.responses`)")
    expected = [
        [
            f"`{r.name}`",
            r.label,
            r.unit,
            "ln" if r.scale == "log" else "as is",
            r.better,
            f"`{', '.join(r.extra_columns)}`" if r.extra_columns else "",
            r.summary,
        ]
        for r in registered()
    ]
    assert rows == expected


def test_readme_column_list_of_the_evaluation_csv_is_the_registrys():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(r"With the paper's five \(the default\): `([^`]*)`", text)
    assert match is not None
    assert match.group(1).split(", ") == columns()
    assert columns() == ["sample", "subject", "w_per", "w_adv", "lr"] + table_columns(
        select_responses(PAPER_RESPONSES)
    )
