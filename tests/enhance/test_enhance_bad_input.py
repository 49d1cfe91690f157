"""``advmri enhance`` on networks and scans that used to give a silently wrong volume, exit 0.

Before: a network whose weights hold NaN wrote a volume whose whole field of view was NaN; an
all-zero scan came back non-zero (the network's bias). Now a network or an output that is not
finite is one line and exit 2 with nothing written, and a scan without signal is written unchanged
with a warning. (Bad scans, settings and output paths are in tests/enhance/test_enhance.py's
``test_each_bad_input_is_refused_with_one_line``.)
"""

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from test_enhance import identity_unet, run_cli

from advmri.cli import build_parser
from advmri.enhance import enhance_volume
from advmri.models import UNet, save_generator


def write_scan(path: Path, data: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data.astype(np.float32), np.eye(4)), path)
    return path


def save(model: UNet, path: Path) -> Path:
    save_generator(model, path, {"stage": "test", "perceptual_weights": "imagenet (torchvision)"})
    return path


@pytest.fixture
def scan(tmp_path) -> Path:
    return write_scan(tmp_path / "scan.nii.gz", np.random.default_rng(0).random((176, 208, 4)))


@pytest.fixture
def network_dir(tmp_path) -> Path:
    folder = tmp_path / "networks" / "wper1_wadv0.1_lr0.001"
    save(identity_unet(), folder / "generator.pt")
    return folder


def enhance(network, scan, out, capsys, *options):
    argv = ["enhance", "--network", str(network), "--device", "cpu", *options, str(scan), str(out)]
    return run_cli(argv, capsys)


def test_a_network_with_nan_weights_is_refused_naming_the_file(tmp_path, scan, capsys):
    model = identity_unet()
    with torch.no_grad():
        model.encoders[0].block[0].weight[0, 0, 0, :2] = float("nan")
    network = save(model, tmp_path / "nan" / "generator.pt")
    out = tmp_path / "out.nii.gz"
    code, stdout, err = enhance(network.parent, scan, out, capsys)
    assert (code, stdout) == (2, "")
    assert err == (
        f"advmri enhance: --network: {network}: weights hold NaN or infinite values, 2 in "
        "'encoders.0.block.0.weight'; the network is unusable, retrain it\n"
    )
    assert not out.exists()


def test_a_network_whose_output_overflows_is_refused_and_nothing_is_written(tmp_path, scan, capsys):
    model = identity_unet()
    with torch.no_grad():  # finite weights, an output beyond float32 where the input is > 0.54
        model.head.weight.mul_(3e38)
        model.head.bias.fill_(1.8e38)
    network = save(model, tmp_path / "overflow" / "generator.pt")
    out = tmp_path / "out.nii.gz"
    code, _, err = enhance(network, scan, out, capsys, "--degrade")
    assert code == 2
    assert err.splitlines()[-1] + "\n" == (
        f"advmri enhance: {network} gave NaN or infinite values on 4 of 4 axial slices (the "
        "first: slice 0); nothing was written\n"
    )
    assert not out.exists() and not (tmp_path / "out_lq.nii.gz").exists()


@pytest.mark.parametrize(
    ("value", "nan_voxels"),
    [(0.0, False), (7.5, False), (7.5, True)],
    ids=["zero", "7.5", "7.5+nan"],
)
def test_a_scan_without_signal_is_written_unchanged_with_a_warning(
    tmp_path, network_dir, capsys, value, nan_voxels
):
    data = np.full((176, 208, 4), value, dtype=np.float32)
    if nan_voxels:
        data[0, 0, :] = np.nan
    scan = write_scan(tmp_path / "flat.nii.gz", data)
    out = tmp_path / "out.nii.gz"
    code, _, err = enhance(network_dir, scan, out, capsys)
    assert code == 0
    assert err.splitlines() == [
        f"advmri enhance: warning: {scan} has no signal (every finite voxel is {value:g}): it is "
        "written unchanged, not enhanced (a network would turn nothing into something)",
        f"advmri enhance: wrote {out} unchanged (the input has no signal; not enhanced)",
    ]
    np.testing.assert_array_equal(nib.load(out).get_fdata(dtype=np.float32), data)


def test_degrade_on_a_scan_without_signal_writes_both_volumes_unchanged(
    tmp_path, network_dir, capsys
):
    scan = write_scan(tmp_path / "zero.nii.gz", np.zeros((176, 208, 3)))
    out = tmp_path / "out.nii.gz"
    code, _, err = enhance(network_dir, scan, out, capsys, "--degrade")
    assert code == 0 and "it (and its LQ version) are written unchanged" in err
    for path in (out, tmp_path / "out_lq.nii.gz"):
        assert not nib.load(path).get_fdata().any()


def test_the_library_passes_a_scan_without_signal_through_with_a_warning():
    image = nib.Nifti1Image(np.zeros((176, 208, 2), dtype=np.float32), np.eye(4))
    biased = UNet(depth=2, base_features=4).eval()
    with torch.no_grad():
        biased.head.bias.fill_(0.3)  # what made an all-zero scan come back non-zero
    with pytest.warns(UserWarning, match="the volume has no signal"):
        result = enhance_volume(image, biased)
    assert not result.get_fdata().any()


def test_network_takes_the_folder_a_run_writes(tmp_path, scan, network_dir, capsys):
    out = tmp_path / "out.nii.gz"
    code, _, err = enhance(network_dir, scan, out, capsys)
    assert code == 0, err
    assert out.exists()


def test_a_network_folder_without_its_generator_is_named(tmp_path, scan, capsys):
    folder = tmp_path / "networks" / "wper1_wadv0.1_lr0.001"
    folder.mkdir(parents=True)
    code, _, err = enhance(folder, scan, tmp_path / "out.nii.gz", capsys)
    assert code == 2
    assert err == (
        f"advmri enhance: --network: {folder} is a folder without generator.pt (its training has "
        "not finished, or a failed rerun removed it); expected a network's folder, "
        "results/networks/<cell>/, holding generator.pt\n"
    )


def test_network_help_says_it_is_a_folder():
    enhance_parser = build_parser()._subparsers._group_actions[0].choices["enhance"]
    text = " ".join(enhance_parser.format_help().split())
    assert "--network DIR a trained network's folder, results/networks/<cell>/" in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "synthesis: {noise_stdd: 0.1}\n",
            "config: synthesis: unknown key 'noise_stdd' (allowed: ",
        ),
        (
            "synthesis: {noise_std: .nan}\n",
            "config: synthesis.noise_std = nan must be a finite number",
        ),
        ("synthesis: {noise_std: 2}\n", "config: synthesis.noise_std = 2 must be at most 1"),
        (
            "synthesiss: {noise_std: 0.1}\n",
            "config: (top level): unknown key 'synthesiss' (allowed: ",
        ),
        ("- noise_std\n", "holds a list, not a study config (a mapping with a synthesis section)"),
    ],
    ids=["unknown-key", "nan", "above-maximum", "unknown-section", "not-a-mapping"],
)
def test_a_bad_config_for_degrade_gives_the_configs_one_line_and_writes_nothing(
    tmp_path, scan, network_dir, capsys, text, expected
):
    mine = tmp_path / "my.yaml"
    mine.write_text(text)
    out = tmp_path / "out.nii.gz"
    code, stdout, err = enhance(network_dir, scan, out, capsys, "--degrade", "--config", str(mine))
    assert (code, stdout) == (2, "")
    assert err.startswith(f"advmri enhance: --config {mine}: {expected}"), err
    assert err.count("\n") == 1
    assert not out.exists()


def test_a_partial_config_for_degrade_needs_only_the_keys_it_sets(
    tmp_path, scan, network_dir, capsys
):
    """A config is checked as a --configfile overlay: what it has must be valid, nothing more."""
    mine = tmp_path / "my.yaml"
    mine.write_text("seed: 7\nsynthesis: {kspace_fraction: 0.25}\n")
    out = tmp_path / "out.nii.gz"
    code, _, err = enhance(network_dir, scan, out, capsys, "--degrade", "--config", str(mine))
    assert code == 0, err
    assert "--degrade uses noise_std 0.04, kspace_fraction 0.25 from " in err
    assert out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_device_cuda_without_a_gpu_is_the_shared_device_rules_one_line(
    tmp_path, scan, network_dir, capsys
):
    out = tmp_path / "out.nii.gz"
    argv = ["enhance", "--network", str(network_dir), "--device", "cuda", str(scan), str(out)]
    code, stdout, err = run_cli(argv, capsys)
    assert (code, stdout) == (2, "")
    assert err == "advmri enhance: --device = cuda but torch sees no CUDA GPU; use auto or cpu\n"
    assert not out.exists()
