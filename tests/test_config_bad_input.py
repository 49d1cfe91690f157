"""Every bad config value we know of, and the one line that now stops the run before any job.

Each case is a change merged over the repository's config.yaml and the exact message it gives. A
case that used to pass silently (NaN beats JSON Schema's minimum/maximum, a typo in a cell name)
or end in a traceback (all-zero probabilities, a k-space fraction of part lines) is listed here.
"""

import copy
import os
import subprocess
import sys

import pytest
import yaml

from advmri.config import deep_update, validate_config
from advmri.errors import ConfigError
from advmri.metrics.registry import registered

from fabricate import REPO

NAN, INF = float("nan"), float("inf")

CASES = [
    # numbers that are not finite, anywhere (the check walks the whole config)
    (
        {"synthesis": {"noise_std": NAN}},
        "config: synthesis.noise_std = nan must be a finite number",
    ),
    ({"grid": {"w_adv": [0, NAN]}}, "config: grid.w_adv[1] = nan must be a finite number"),
    ({"pretrain": {"lr": NAN}}, "config: pretrain.lr = nan must be a finite number"),
    ({"pretrain": {"lr": INF}}, "config: pretrain.lr = inf must be a finite number"),
    ({"seed": NAN}, "config: seed = nan must be a finite number"),
    (
        {"resources": {"finetune": {"runtime": -INF}}},
        "config: resources.finetune.runtime = -inf must be a finite number",
    ),
    (
        {"finetune": {"cell_overrides": {"wper1_wadv0.5_lr0.01": {"betas": [0.9, NAN]}}}},
        "config: finetune.cell_overrides.wper1_wadv0.5_lr0.01.betas[1] = nan must be a "
        "finite number",
    ),
    # [low, high] ranges
    (
        {"synthesis": {"lesion": {"radius_px": [14.0, 6.0]}}},
        "config: synthesis.lesion.radius_px = [14.0, 6.0] must be [low, high] with low <= high",
    ),
    (
        {"synthesis": {"tissue_weights": {"wm": [0.9, 0.7]}}},
        "config: synthesis.tissue_weights.wm = [0.9, 0.7] must be [low, high] with low <= high",
    ),
    (
        {"synthesis": {"lesion": {"aspect": [1.0, 0.6]}}},
        "config: synthesis.lesion.aspect = [1.0, 0.6] must be [low, high] with low <= high",
    ),
    # probabilities that cannot all be zero
    (
        {"synthesis": {"lesion": {"tissue_probabilities": {"wm": 0, "gm": 0.0}}}},
        "config: synthesis.lesion.tissue_probabilities = {'wm': 0, 'gm': 0.0} must not be all "
        "zero (nothing could be drawn)",
    ),
    # k-space bands of whole lines that tile the 208 x 176 grid
    (
        {"synthesis": {"kspace_fraction": 0.1}},
        "config: synthesis.kspace_fraction = 0.1 keeps 20.8 x 17.6 k-space lines; it must keep "
        "whole lines that divide the grid (for 208 x 176 use 1/n with n one of 1, 2, 4, 8, 16)",
    ),
    (
        {"synthesis": {"kspace_fraction": 0.375}},
        "config: synthesis.kspace_fraction = 0.375 keeps 78 x 66 k-space lines; it must keep "
        "whole lines that divide the grid (for 208 x 176 use 1/n with n one of 1, 2, 4, 8, 16)",
    ),
    # per-cell overrides of cells the grid does not have
    (
        {"finetune": {"cell_overrides": {"wper1_wadv0.5_lr0.1": {"epochs": 600}}}},
        "config: finetune.cell_overrides.wper1_wadv0.5_lr0.1 is not a cell of the grid "
        "(grid.lr = [0.001, 0.01] has no 0.1); the override would be ignored",
    ),
    (
        {"finetune": {"cell_overrides": {"wper9_wadv7_lr0.01": {"epochs": 600}}}},
        "config: finetune.cell_overrides.wper9_wadv7_lr0.01 is not a cell of the grid "
        "(grid.w_per = [0.5, 0.7, 1, 1.2, 1.5, 2] has no 9; grid.w_adv = [0, 0.0001, 0.001, "
        "0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 1, 1.2, 1.5, 2, 3] has no 7); "
        "the override would be ignored",
    ),
    # the networks' width keys before they became one key, `width`
    (
        {"model": {"generator": {"base_features": 32}}},
        "config: model.generator.base_features = 32: the key is now model.generator.width (same "
        "meaning); rename it in your config",
    ),
    (
        {"model": {"discriminator": {"num_feat": 32}}},
        "config: model.discriminator.num_feat = 32: the key is now model.discriminator.width "
        "(same meaning); rename it in your config",
    ),
    # responses that are not registered, or a study without GE (Table 1 ranks by it)
    (
        {"metrics": {"responses": ["ge", "psnrr"]}},
        "config: metrics.responses[1] = 'psnrr' is not a registered response (known: "
        + ", ".join(r.name for r in registered())
        + ")",
    ),
    (
        {"metrics": {"responses": ["sharpness", "ssim"]}},
        "config: metrics.responses = ['sharpness', 'ssim'] lacks 'ge'; Table 1 ranks the "
        "networks by ln(GE), so every study has it",
    ),
    (
        {"metrics": {"responses": ["ge", "sharpness", "ssim"]}},
        "config: metrics.responses = ['ge', 'sharpness', 'ssim'] lacks 'mie'; the "
        "training-health check compares each network's MIE and SSIM with the LQ input's, so "
        "every study has it",
    ),
    (
        {"metrics": {"responses": []}},
        "config: metrics.responses = []: [] should be non-empty",
    ),
]


def _ids(case):
    return yaml.safe_dump(case, default_flow_style=True, width=1000).strip()


@pytest.mark.parametrize(("change", "message"), CASES, ids=[_ids(c) for c, _ in CASES])
def test_bad_value_is_stopped_with_one_line_naming_the_key(study_config, change, message):
    with pytest.raises(ConfigError) as raised:
        validate_config(deep_update(copy.deepcopy(study_config), change))
    assert str(raised.value) == message
    assert "\n" not in str(raised.value)


def test_an_override_of_a_grid_cell_written_another_way_is_accepted(study_config):
    # wper1.0 is the canonical wper1: the same cell, not a typo
    change = {"finetune": {"cell_overrides": {"wper1.0_wadv0.50_lr0.010": {"epochs": 600}}}}
    validate_config(deep_update(copy.deepcopy(study_config), change))


def test_equal_ends_of_a_range_are_a_fixed_value_not_an_error(study_config):
    change = {"synthesis": {"lesion": {"radius_px": [8.0, 8.0], "tissue_probabilities": {"gm": 0}}}}
    validate_config(deep_update(copy.deepcopy(study_config), change))


def test_a_key_the_schema_does_not_know_yet_is_still_checked_for_finite_numbers(study_config):
    # the finite check walks the config, not a list of keys: an unknown key holding NaN is named
    # for its NaN before the schema refuses the key itself
    study_config["metrics"]["new_setting"] = {"scale": [1.0, NAN]}
    with pytest.raises(ConfigError, match=r"^config: metrics\.new_setting\.scale\[1\] = nan must"):
        validate_config(study_config)


def test_a_config_written_with_the_old_width_keys_only_is_told_the_new_key(study_config):
    # a whole config of before the rename: `width` is missing too, but the hint is the line shown
    study_config["model"]["generator"] = {"depth": 4, "base_features": 64}
    with pytest.raises(ConfigError) as raised:
        validate_config(study_config)
    assert str(raised.value) == (
        "config: model.generator.base_features = 64: the key is now model.generator.width (same "
        "meaning); rename it in your config"
    )


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("synthesis:\n  noise_std: .nan\n", "config: synthesis.noise_std = nan must be a finite"),
        (
            "finetune:\n  cell_overrides:\n    wper1_wadv0.5_lr0.1: {epochs: 600}\n",
            "config: finetune.cell_overrides.wper1_wadv0.5_lr0.1 is not a cell of the grid",
        ),
    ],
    ids=["nan", "cell-typo"],
)
def test_snakemake_stops_before_any_job_with_the_line(tmp_path, yaml_text, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml_text)
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(tmp_path),
    ]
    result = subprocess.run(
        [*command, "--cores", "1", "-n", "--configfile", str(REPO / "config.yaml"), str(bad)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        # this checkout's advmri, whatever the environment's editable install points at
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert result.returncode != 0
    # one line, the message, no traceback frames
    assert result.stderr.strip().startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "results").exists()
