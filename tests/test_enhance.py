"""``advmri enhance``: users' own volumes through a generator file, and back in their geometry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
import yaml
from nibabel.orientations import axcodes2ornt, ornt_transform
from scipy import ndimage

from advmri.cli import main
from advmri.data.anatomy import axial_slab, center_crop_or_pad
from advmri.enhance import (
    DEFAULT_CONFIG,
    EnhanceError,
    SliceMap,
    degradation_settings,
    degrade_volume,
    enhance_file,
    enhance_volume,
    load_network,
    volume_to_grid,
)
from advmri.models import RANDOM_FLAG, UNet, save_generator

#: Largest error of a shrink-to-the-grid-and-enlarge-back round trip, as a fraction of the volume's
#: intensity range, for the smooth test anatomy below (blobs of 6-12 pixel sigma; below 0.01 is
#: seen): bilinear interpolation twice plus the anti-aliasing blur of a x0.73 shrink.
RESAMPLING_TOLERANCE = 0.02


def identity_unet(depth: int = 2, base_features: int = 4) -> UNet:
    """A UNet whose output is its input (for inputs >= 0, as [0, 1] images are).

    Zero weights except one path: the first encoder's channel 0 and the last decoder's channel 0
    (fed by that skip connection) copy the centre pixel, batch norms are exact identities
    (running variance 1 - eps), the 1x1 head copies channel 0; ReLU passes non-negative values.
    """
    model = UNet(depth=depth, base_features=base_features)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.fill_(1.0)
                module.running_mean.zero_()
                module.running_var.fill_(1.0 - module.eps)
        for block in (model.encoders[0].block, model.decoders[-1].block):
            block[0].weight[0, 0, 1, 1] = 1.0
            block[3].weight[0, 0, 1, 1] = 1.0
        model.head.weight[0, 0, 0, 0] = 1.0
    return model.eval()


@pytest.fixture
def identity_network(tmp_path) -> Path:
    path = tmp_path / "networks" / "identity" / "generator.pt"
    save_generator(
        identity_unet(), path, {"stage": "test", "perceptual_weights": "imagenet (torchvision)"}
    )
    return path


def smooth_anatomy(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """A RAS volume of smooth, asymmetric blobs in [0, 1000] (so a flip or transpose shows)."""
    rng = np.random.default_rng(seed)
    volume = np.zeros(shape)
    for _ in range(12):
        center = tuple(rng.integers(0, side) for side in shape)
        volume[center] += rng.uniform(0.5, 1.0)
    sigma = (rng.uniform(6, 12), rng.uniform(6, 12), 2.0)
    volume = ndimage.gaussian_filter(volume, sigma)
    volume += np.linspace(0, 0.2 * volume.max(), shape[0])[:, None, None]  # left -> right ramp
    return 1000 * volume / volume.max()


def fabricated_image(
    data_ras: np.ndarray, axcodes: tuple[str, str, str] = ("R", "A", "S"), degrees: float = 4.0
) -> nib.Nifti1Image:
    """``data_ras`` (RAS voxel order) stored in ``axcodes`` voxel order under a rotated, scaled,
    shifted affine, with a description, units and codes set in the header."""
    theta = np.deg2rad(degrees)
    rotation = np.array(
        [[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]]
    )
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.9, 1.1, 2.5])
    affine[:3, 3] = [-80.0, -110.0, 12.5]
    ras = nib.Nifti1Image(data_ras.astype(np.float32), affine)
    image = ras.as_reoriented(ornt_transform(axcodes2ornt("RAS"), axcodes2ornt(axcodes)))
    image.header["descrip"] = b"advmri enhance test volume"
    image.header.set_xyzt_units("mm", "sec")
    image.set_qform(image.affine, code=1)
    image.set_sform(image.affine, code=4)
    assert nib.aff2axcodes(image.affine) == axcodes
    return image


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- orientation and the grid ---------------------------------------------------------------------


@pytest.mark.parametrize("axcodes", [("R", "A", "S"), ("L", "P", "S"), ("S", "P", "L")])
def test_grid_slices_of_any_voxel_order_are_the_slices_training_saw(axcodes):
    data = smooth_anatomy((176, 208, 6))
    canonical = nib.Nifti1Image(data, np.diag([1.0, 1.0, 1.0, 1.0]))
    grid = volume_to_grid(fabricated_image(data, axcodes))
    assert grid.slices.shape == (6, 208, 176)
    assert not grid.slice_map.resampled
    for k in range(6):
        training = (center_crop_or_pad(axial_slab(canonical, k)) - data.min()) / np.ptp(data)
        np.testing.assert_allclose(grid.slices[k], training, atol=1e-6)


def test_identity_network_returns_a_permuted_lps_volume_with_its_shape_affine_and_header(
    tmp_path, identity_network
):
    image = fabricated_image(smooth_anatomy((176, 208, 12)), ("S", "P", "L"))
    source = tmp_path / "scan.nii.gz"
    nib.save(image, source)
    out = tmp_path / "enhanced.nii.gz"
    enhance_file(source, out, identity_network, device="cpu", batch_size=5)
    result, original = nib.load(out), nib.load(source)
    assert result.shape == original.shape == (12, 208, 176)
    np.testing.assert_array_equal(result.affine, original.affine)
    assert result.get_data_dtype() == np.float32
    for field in ("descrip", "pixdim", "xyzt_units", "qform_code", "sform_code", "dim"):
        np.testing.assert_array_equal(result.header[field], original.header[field], err_msg=field)
    np.testing.assert_allclose(result.get_fdata(), original.get_fdata(), rtol=0, atol=1e-3)


def test_intensities_come_back_on_the_input_scale_of_a_scaled_int16_file(tmp_path):
    data = np.round(smooth_anatomy((176, 208, 3))).astype(np.int16)
    image = nib.Nifti1Image(data, np.eye(4), dtype=np.int16)
    image.header.set_slope_inter(0.5, -20.0)
    source = tmp_path / "scaled.nii"
    nib.save(image, source)
    loaded = nib.load(source)
    enhanced = enhance_volume(loaded, identity_unet())
    np.testing.assert_allclose(enhanced.get_fdata(), loaded.get_fdata(), rtol=0, atol=1e-3)


def test_slices_within_the_grid_are_zero_padded_and_cropped_back_exactly():
    data = smooth_anatomy((160, 200, 4))  # slices of 200 rows x 160 columns
    image = fabricated_image(data, ("L", "P", "S"))
    grid = volume_to_grid(image)
    assert grid.slice_map == SliceMap(shape=(200, 160), fitted=(200, 160), offset=(4, 8))
    assert np.all(grid.slices[:, :4] == 0) and np.all(grid.slices[:, :, :8] == 0)
    enhanced = enhance_volume(image, identity_unet())
    assert enhanced.shape == image.shape
    np.testing.assert_allclose(enhanced.get_fdata(), image.get_fdata(), rtol=0, atol=1e-3)


def test_slices_larger_than_the_grid_are_shrunk_and_enlarged_back_within_interpolation_error():
    data = smooth_anatomy((240, 200, 4))  # slices of 200 rows x 240 columns: x176/240 = 0.733
    image = fabricated_image(data, ("R", "P", "I"))
    grid = volume_to_grid(image)
    assert grid.slice_map.resampled
    assert grid.slice_map.fitted == (147, 176)
    enhanced = enhance_volume(image, identity_unet())
    assert enhanced.shape == image.shape
    np.testing.assert_array_equal(enhanced.affine, image.affine)
    error = np.abs(enhanced.get_fdata() - image.get_fdata()).max()
    assert error <= RESAMPLING_TOLERANCE * np.ptp(data)


def test_nonfinite_voxels_come_back_unchanged_and_do_not_set_the_scale():
    data = smooth_anatomy((176, 208, 3))
    data[5, 5, 1] = np.nan
    image = nib.Nifti1Image(data.astype(np.float32), np.eye(4))
    enhanced = enhance_volume(image, identity_unet()).get_fdata()
    assert np.isnan(enhanced[5, 5, 1])
    finite = np.isfinite(data)
    np.testing.assert_allclose(enhanced[finite], data[finite], rtol=0, atol=1e-3)


# --- degradation ----------------------------------------------------------------------------------


def test_degrade_writes_the_lq_volume_too_and_the_network_enhances_that(
    tmp_path, identity_network, capsys
):
    source = tmp_path / "hq.nii.gz"
    nib.save(fabricated_image(smooth_anatomy((176, 208, 5)), ("L", "P", "S")), source)
    out = tmp_path / "out" / "enhanced.nii.gz"
    code, _, err = run_cli(
        ["enhance", "--network", str(identity_network), "--device", "cpu", "--degrade"]
        + [str(source), str(out)],
        capsys,
    )
    assert code == 0, err
    lq_path = tmp_path / "out" / "enhanced_lq.nii.gz"
    hq, lq, enhanced = nib.load(source), nib.load(lq_path), nib.load(out)
    assert lq.shape == enhanced.shape == hq.shape
    np.testing.assert_array_equal(lq.affine, hq.affine)
    np.testing.assert_array_equal(lq.header["descrip"], hq.header["descrip"])
    difference = np.abs(lq.get_fdata() - hq.get_fdata())
    assert difference.mean() > 0.01 * np.ptp(hq.get_fdata())
    # the identity network returns its input: what was enhanced is exactly the LQ volume written
    np.testing.assert_allclose(enhanced.get_fdata(), lq.get_fdata(), rtol=0, atol=1e-3)
    assert f"LQ input {lq_path}" in err


def test_degraded_volume_is_blocky_like_the_dataset_and_fixed_by_the_seed():
    image = fabricated_image(smooth_anatomy((176, 208, 3)))
    first = degrade_volume(image, noise_std=0.04, kspace_fraction=0.125, seed=7)
    again = degrade_volume(image, noise_std=0.04, kspace_fraction=0.125, seed=7)
    other = degrade_volume(image, noise_std=0.04, kspace_fraction=0.125, seed=8)
    np.testing.assert_array_equal(first.get_fdata(), again.get_fdata())
    assert not np.array_equal(first.get_fdata(), other.get_fdata())
    lq = volume_to_grid(first).slices[1]
    blocks = lq.reshape(26, 8, 22, 8)
    assert np.allclose(blocks, blocks[:, :1, :, :1], atol=1e-6)  # 1/8 k-space: 8 x 8 blocks


def test_degradation_settings_come_from_the_network_file_else_config_yaml(tmp_path):
    stored = {"settings": {"synthesis": {"noise_std": 0.02, "kspace_fraction": 0.25}}}
    from_file = degradation_settings(stored)
    assert (from_file.noise_std, from_file.kspace_fraction) == (0.02, 0.25)
    assert from_file.source == "the network file"
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())["synthesis"]
    default = degradation_settings({"settings": {"stage": "finetune"}})
    assert (default.noise_std, default.kspace_fraction) == (
        config["noise_std"],
        config["kspace_fraction"],
    )
    mine = tmp_path / "my.yaml"
    mine.write_text("synthesis: {noise_std: 0.1}\n")
    override = degradation_settings(stored, config=mine)
    assert (override.noise_std, override.kspace_fraction) == (0.1, config["kspace_fraction"])


def test_degradation_refuses_a_kspace_fraction_that_does_not_divide_the_grid(tmp_path):
    mine = tmp_path / "my.yaml"
    mine.write_text("synthesis: {kspace_fraction: 0.3}\n")
    with pytest.raises(EnhanceError, match="not a whole number"):
        degradation_settings({}, config=mine)


# --- refusals, one line each ----------------------------------------------------------------------


def _write(path: Path, data: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data.astype(np.float32), np.eye(4)), path)
    return path


def _not_a_generator(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.pt"
    if kind == "checkpoint":
        torch.save({"format": "advmri-checkpoint", "epoch": 3, "generator": {}}, path)
    elif kind == "state_dict":
        torch.save(UNet(depth=2, base_features=4).state_dict(), path)
    else:
        path.write_text("not a network\n")
    return path


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("2d", "is 2-D (shape (176, 208)); enhance takes one 3-D volume"),
        ("4d", "is 4-D with 3 volumes"),
        ("missing input", "does not exist"),
        ("text input", "is not an image nibabel can read"),
        ("thin slices", "cannot map onto the 208 x 176 grid: a side is below 16 pixels"),
        ("huge slices", "would need shrinking by 5.68x, more than 4x"),
        ("narrow slices", "their aspect ratio leaves a side of 12 pixels"),
        ("checkpoint", "not an advmri generator file"),
        ("state_dict", "not an advmri generator file"),
        ("text network", "not an advmri generator file"),
        ("missing network", "does not exist"),
        ("deep network", "cannot take the 208 x 176 grid"),
        ("png output", "must end in .nii or .nii.gz"),
    ],
)
def test_each_bad_input_is_refused_with_one_line(
    tmp_path, identity_network, capsys, case, expected
):
    scan = _write(tmp_path / "scan.nii.gz", np.random.default_rng(0).random((176, 208, 4)))
    network, out = identity_network, tmp_path / "out.nii.gz"
    if case == "2d":
        scan = _write(tmp_path / "slice.nii.gz", np.zeros((176, 208)))
    elif case == "4d":
        scan = _write(tmp_path / "series.nii.gz", np.zeros((20, 20, 5, 3)))
    elif case == "missing input":
        scan = tmp_path / "missing.nii.gz"
    elif case == "text input":
        scan = tmp_path / "notes.nii.gz"
        scan.write_text("not a scan\n")
    elif case == "thin slices":
        scan = _write(tmp_path / "thin.nii.gz", np.ones((8, 208, 4)))
    elif case == "huge slices":
        scan = _write(tmp_path / "huge.nii.gz", np.ones((1000, 200, 2)))
    elif case == "narrow slices":
        scan = _write(tmp_path / "narrow.nii.gz", np.ones((600, 40, 2)))
    elif case in ("checkpoint", "state_dict", "text network"):
        network = _not_a_generator(tmp_path, case.split()[0])
    elif case == "missing network":
        network = tmp_path / "nowhere" / "generator.pt"
    elif case == "deep network":
        network = tmp_path / "deep.pt"
        save_generator(UNet(depth=5, base_features=1), network, {})
    elif case == "png output":
        out = tmp_path / "out.png"
    code, stdout, err = run_cli(
        ["enhance", "--network", str(network), "--device", "cpu", str(scan), str(out)], capsys
    )
    assert code == 2
    assert stdout == ""
    assert err.startswith("advmri enhance: ") and err.count("\n") == 1, err
    assert expected in err
    assert not out.exists()


def test_a_4d_file_with_one_volume_is_enhanced_and_keeps_its_trailing_axis(
    tmp_path, identity_network
):
    data = smooth_anatomy((176, 208, 3))[..., None]
    scan = _write(tmp_path / "one.nii.gz", data)
    out = tmp_path / "one_enhanced.nii"
    enhance_file(scan, out, identity_network, device="cpu")
    result = nib.load(out)
    assert result.shape == (176, 208, 3, 1)
    np.testing.assert_allclose(result.get_fdata(), data, rtol=0, atol=1e-3)


def test_a_network_trained_with_a_random_vgg_is_named_in_a_warning(tmp_path, capsys):
    network = tmp_path / "random" / "generator.pt"
    save_generator(
        identity_unet(),
        network,
        {"warning": f"{RANDOM_FLAG}: trained with a randomly initialised VGG19"},
    )
    scan = _write(tmp_path / "scan.nii.gz", smooth_anatomy((176, 208, 2)))
    code, _, err = run_cli(
        ["enhance", "--network", str(network), "--device", "cpu"]
        + [str(scan), str(tmp_path / "e.nii.gz")],
        capsys,
    )
    assert code == 0
    warnings = [line for line in err.splitlines() if line.startswith("advmri enhance: warning:")]
    assert len(warnings) == 1 and "randomly initialised VGG19" in warnings[0]


def test_load_network_names_the_expected_file_for_a_checkpoint(tmp_path):
    with pytest.raises(EnhanceError, match=r"expected results/networks/<cell>/generator\.pt"):
        load_network(_not_a_generator(tmp_path, "checkpoint"))


# --- the command, end to end ----------------------------------------------------------------------


def test_the_advmri_enhance_command_runs_end_to_end_on_cpu(tmp_path, identity_network):
    scan = tmp_path / "scan.nii.gz"
    nib.save(fabricated_image(smooth_anatomy((176, 208, 4)), ("L", "P", "S")), scan)
    out = tmp_path / "scan_enhanced.nii.gz"
    command = Path(sys.executable).with_name("advmri")
    finished = subprocess.run(
        [str(command), "enhance", "--network", str(identity_network), "--device", "cpu"]
        + ["--batch-size", "3", "--degrade", "--seed", "5", str(scan), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert f"wrote {out} (4 axial slices of 208 x 176 as is; cpu;" in finished.stderr
    assert out.exists() and (tmp_path / "scan_enhanced_lq.nii.gz").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_and_cpu_give_the_same_enhancement(tmp_path):
    image = fabricated_image(smooth_anatomy((176, 208, 4)), ("L", "P", "S"))
    torch.manual_seed(0)
    model = UNet(depth=2, base_features=4).eval()
    on_cpu = enhance_volume(image, model).get_fdata()
    on_cuda = enhance_volume(image, model.to("cuda")).get_fdata()
    np.testing.assert_allclose(on_cuda, on_cpu, rtol=0, atol=1e-3 * np.ptp(on_cpu))
