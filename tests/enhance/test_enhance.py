"""``advmri enhance``: users' own volumes through a generator file, and back in their geometry."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
import yaml
from nibabel.orientations import axcodes2ornt, ornt_transform
from nibabel.spatialimages import HeaderDataError
from scipy import ndimage
from skimage.transform import resize

import advmri.enhance.files
from advmri.cli import main
from advmri.data.anatomy import axial_slab, center_crop_or_pad
from advmri.data.geometry import SliceMap
from advmri.data.kspace import degrade
from advmri.enhance import (
    DEFAULT_KSPACE_FRACTION,
    DEFAULT_NOISE_STD,
    EnhanceError,
    degradation_settings,
    degrade_slices,
    degrade_volume,
    enhance_file,
    enhance_slices,
    enhance_volume,
    intensity_limits,
    load_network,
    volume_to_grid,
)
from advmri.enhance.files import save_volume
from advmri.models import RANDOM_FLAG, UNet, save_generator

#: The repository's study configuration, whose synthesis defaults the schema documents.
CONFIG_YAML = Path(__file__).resolve().parents[2] / "config.yaml"
#: Plain min-max scaling: no voxel clipped, so an identity network returns every voxel.
MIN_MAX = (0.0, 100.0)
#: Largest error, as a fraction of the intensity range, of resampling the smooth test anatomy
#: below (blobs of >= 6 mm sigma) between 0.5-2 mm pixels and 1 mm, or there and back: linear
#: interpolation and the anti-aliasing blur (below 0.01 is seen).
RESAMPLING_TOLERANCE = 0.03


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


def physical_anatomy(fov_mm: tuple[float, float], pixel_mm: tuple[float, float], depth: int = 3):
    """One smooth anatomy sampled at ``pixel_mm`` (x, y) over a field of view centred on 0 mm.

    Blobs of 6-12 mm sigma in [0, 1000] plus a left -> right ramp, evaluated at the voxel centres
    of a RAS grid: the same picture in millimetres at any pixel size.
    """
    rng = np.random.default_rng(3)
    x, y = (
        (np.arange(round(fov / mm)) + 0.5) * mm - fov / 2
        for fov, mm in zip(fov_mm, pixel_mm, strict=True)
    )
    image = 0.2 * (x[:, None] + fov_mm[0] / 2) / fov_mm[0] + 0 * y[None, :]
    for _ in range(10):
        cx, cy = rng.uniform(-60, 60, 2)
        sigma = rng.uniform(6, 12)
        image = image + rng.uniform(0.5, 1.0) * np.exp(
            -((x[:, None] - cx) ** 2 + (y[None, :] - cy) ** 2) / (2 * sigma**2)
        )
    return np.repeat(1000 * image[..., None], depth, axis=2)


def fabricated_image(
    data_ras: np.ndarray,
    axcodes: tuple[str, str, str] = ("R", "A", "S"),
    degrees: float = 4.0,
    zooms: tuple[float, float, float] = (1.0, 1.0, 2.5),
) -> nib.Nifti1Image:
    """``data_ras`` (RAS voxel order, ``zooms`` mm voxels) stored in ``axcodes`` voxel order under
    a rotated, shifted affine, with a description, units, display range and codes in the header."""
    theta = np.deg2rad(degrees)
    rotation = np.array(
        [[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]]
    )
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag(zooms)
    affine[:3, 3] = [-80.0, -110.0, 12.5]
    ras = nib.Nifti1Image(data_ras.astype(np.float32), affine)
    image = ras.as_reoriented(ornt_transform(axcodes2ornt("RAS"), axcodes2ornt(axcodes)))
    image.header["descrip"] = b"advmri enhance test volume"
    image.header.set_xyzt_units("mm", "sec")
    image.header["cal_min"], image.header["cal_max"] = 0.0, 1000.0
    image.set_qform(image.affine, code=1)
    image.set_sform(image.affine, code=4)
    assert nib.aff2axcodes(image.affine) == axcodes
    return image


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def warnings_of(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("advmri enhance: warning:")]


# --- orientation, pixel size and field of view ----------------------------------------------------


@pytest.mark.parametrize("axcodes", [("R", "A", "S"), ("L", "P", "S"), ("S", "P", "L")])
@pytest.mark.parametrize("shape", [(176, 208, 6), (197, 233, 3)], ids=["oasis", "mni"])
def test_grid_slices_of_1mm_scans_are_the_slices_training_saw(axcodes, shape):
    # OASIS T88 slices fit exactly; the MNI template's 233 x 197 are centre-cropped, not shrunk
    data = smooth_anatomy(shape)
    canonical = nib.Nifti1Image(data, np.eye(4))
    grid = volume_to_grid(fabricated_image(data, axcodes), intensity_percentiles=MIN_MAX)
    assert grid.slices.shape == (shape[2], 208, 176)
    assert grid.slice_map.resampled == grid.slice_map.shape
    for k in range(shape[2]):
        training = (center_crop_or_pad(axial_slab(canonical, k)) - data.min()) / np.ptp(data)
        np.testing.assert_allclose(grid.slices[k], training, atol=1e-6)


@pytest.mark.parametrize(
    "pixel_mm", [(2.0, 2.0), (1.0, 2.0), (2.0, 0.8), (0.5, 0.5)], ids=["2mm", "1x2", "2x0.8", "0.5"]
)
def test_grid_slices_show_the_anatomy_at_the_size_a_1mm_scan_shows_it(pixel_mm):
    fov = (176.0, 208.0)  # x (L-R) x y (A-P), mm: 176 x 208 pixels at 1 mm
    reference = volume_to_grid(
        fabricated_image(physical_anatomy(fov, (1.0, 1.0))), intensity_percentiles=MIN_MAX
    )
    image = fabricated_image(physical_anatomy(fov, pixel_mm), ("L", "P", "S"), zooms=(*pixel_mm, 3))
    grid = volume_to_grid(image, intensity_percentiles=MIN_MAX)
    assert grid.slice_map.resampled == (208, 176)
    error = np.abs(grid.slices - reference.slices).max()
    assert error <= RESAMPLING_TOLERANCE, error


def test_resampling_is_skimage_bilinear_resize_with_anti_aliasing():
    rng = np.random.default_rng(1)
    slices = rng.random((2, 150, 200)).astype(np.float32)
    # rows enlarged (1.2 mm -> 180 px), columns shrunk (0.8 mm -> 160 px): both fit the grid
    slice_map = SliceMap.plan((150, 200), (1.2, 0.8))
    assert slice_map.resampled == (180, 160)
    grid = slice_map.to_grid(slices)
    for k in range(2):
        expected = resize(
            slices[k], (180, 160), order=1, mode="edge", anti_aliasing=True, preserve_range=True
        )
        np.testing.assert_allclose(grid[k, 14:194, 8:168], expected, atol=1e-5)
    assert not grid[:, :14].any() and not grid[:, :, :8].any()


def test_identity_network_returns_an_spl_volume_with_its_shape_affine_and_header(
    tmp_path, identity_network
):
    image = fabricated_image(smooth_anatomy((176, 208, 12)), ("S", "P", "L"))
    source = tmp_path / "scan.nii.gz"
    nib.save(image, source)
    out = tmp_path / "enhanced.nii.gz"
    enhance_file(
        source, out, identity_network, device="cpu", batch_size=5, intensity_percentiles=MIN_MAX
    )
    result, original = nib.load(out), nib.load(source)
    assert result.shape == original.shape == (12, 208, 176)
    np.testing.assert_array_equal(result.affine, original.affine)
    assert result.get_data_dtype() == np.float32
    for field in ("descrip", "pixdim", "xyzt_units", "qform_code", "sform_code", "dim"):
        np.testing.assert_array_equal(result.header[field], original.header[field], err_msg=field)
    assert original.header["cal_max"] == 1000
    assert result.header["cal_min"] == result.header["cal_max"] == 0
    np.testing.assert_allclose(result.get_fdata(), original.get_fdata(), rtol=0, atol=1e-3)


def test_intensities_come_back_on_the_input_scale_of_a_scaled_int16_file(tmp_path):
    data = np.round(smooth_anatomy((176, 208, 3))).astype(np.int16)
    image = nib.Nifti1Image(data, np.eye(4), dtype=np.int16)
    image.header.set_slope_inter(0.5, -20.0)
    source = tmp_path / "scaled.nii"
    nib.save(image, source)
    loaded = nib.load(source)
    enhanced = enhance_volume(loaded, identity_unet(), intensity_percentiles=MIN_MAX)
    np.testing.assert_allclose(enhanced.get_fdata(), loaded.get_fdata(), rtol=0, atol=1e-3)


def test_1mm_slices_within_the_grid_are_zero_padded_and_cropped_back():
    data = smooth_anatomy((160, 200, 4))  # slices of 200 rows x 160 columns
    image = fabricated_image(data, ("L", "P", "S"))
    grid = volume_to_grid(image, intensity_percentiles=MIN_MAX)
    assert (grid.slice_map.rows.offset, grid.slice_map.cols.offset) == (4, 8)
    assert np.all(grid.slices[:, :4] == 0) and np.all(grid.slices[:, :, :8] == 0)
    enhanced = enhance_volume(image, identity_unet(), intensity_percentiles=MIN_MAX)
    assert enhanced.shape == image.shape
    np.testing.assert_allclose(enhanced.get_fdata(), image.get_fdata(), rtol=0, atol=1e-3)


def test_coarse_anisotropic_slices_come_back_within_interpolation_error():
    pixel_mm = (1.0, 2.0)  # 176 x 104 pixels -> 208 x 176 at 1 mm, and back
    data = physical_anatomy((176.0, 208.0), pixel_mm)
    image = fabricated_image(data, ("R", "P", "I"), zooms=(*pixel_mm, 3))
    enhanced = enhance_volume(image, identity_unet(), intensity_percentiles=MIN_MAX)
    assert enhanced.shape == image.shape
    np.testing.assert_array_equal(enhanced.affine, image.affine)
    error = np.abs(enhanced.get_fdata() - image.get_fdata()).max()
    assert error <= RESAMPLING_TOLERANCE * np.ptp(data), error


@pytest.mark.parametrize(
    ("pixel_mm", "side", "margin_rows", "margin_cols"),
    # the central 208 mm (A-P) x 176 mm (L-R): margins of (side * mm - 208) / 2 mm, and so on
    [(1.0, 256, 24, 40), (0.8, 300, 20, 40)],
)
def test_voxels_outside_the_central_208_by_176_mm_are_the_input_unchanged(
    pixel_mm, side, margin_rows, margin_cols
):
    torch.manual_seed(0)
    network = UNet(depth=2, base_features=4).eval()  # random: changes every voxel it sees
    data = smooth_anatomy((side, side, 3))
    image = fabricated_image(data, zooms=(pixel_mm, pixel_mm, 3.0))
    enhanced = enhance_volume(image, network).get_fdata()
    inside = np.zeros(data.shape, dtype=bool)  # RAS: x = columns L-R, y = rows (A-P reversed)
    inside[margin_cols : side - margin_cols, margin_rows : side - margin_rows] = True
    np.testing.assert_array_equal(enhanced[~inside], data[~inside].astype(np.float32))
    changed = np.abs(enhanced - data) > 1e-3 * np.ptp(data)
    assert changed[inside].mean() > 0.9


def test_nonfinite_voxels_come_back_unchanged_and_do_not_set_the_scale():
    data = smooth_anatomy((176, 208, 3))
    data[5, 5, 1] = np.nan
    data[6, 6, 1] = -np.inf
    image = nib.Nifti1Image(data.astype(np.float32), np.eye(4))
    enhanced = enhance_volume(image, identity_unet(), intensity_percentiles=MIN_MAX).get_fdata()
    assert np.isnan(enhanced[5, 5, 1]) and enhanced[6, 6, 1] == -np.inf
    finite = np.isfinite(data)
    np.testing.assert_allclose(enhanced[finite], data[finite], rtol=0, atol=1e-3)


# --- intensities ----------------------------------------------------------------------------------


def test_intensity_limits_are_the_background_and_the_brightest_tissue():
    volume = np.zeros((100, 100, 10), dtype=np.float32)  # 90 % background at 0
    volume[:, :, 0] = np.linspace(100, 600, 10_000).reshape(100, 100)
    volume[0, 0, 0] = 50_000  # one hot voxel
    low, high = intensity_limits(volume)
    assert low == 0  # not the darkest tissue: dark tissue keeps its contrast to the background
    assert high == pytest.approx(np.percentile(volume[volume != 0], 99.5))
    assert 590 < high < 600
    assert intensity_limits(volume, (0, 100)) == (0, 50_000)


def test_a_hot_voxel_neither_sets_the_scale_nor_reaches_the_network_above_1():
    data = smooth_anatomy((176, 208, 3))
    hot = data.copy()
    hot[88, 104, 1] = 100 * data.max()
    clean = volume_to_grid(nib.Nifti1Image(data.astype(np.float32), np.eye(4)))
    grid = volume_to_grid(nib.Nifti1Image(hot.astype(np.float32), np.eye(4)))
    assert 0 <= grid.slices.min() and grid.slices.max() == 1
    assert grid.high < data.max()
    changed = np.abs(grid.slices - clean.slices) > 1e-3
    assert np.argwhere(changed).tolist() == [[1, 207 - 104, 88]]  # the hot voxel alone
    enhanced = enhance_volume(nib.Nifti1Image(hot.astype(np.float32), np.eye(4)), identity_unet())
    # clipped to 1 on the way in, so an identity network returns the upper limit there
    assert enhanced.get_fdata()[88, 104, 1] == pytest.approx(grid.high, rel=1e-5)


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


def test_packaged_degradation_defaults_are_config_yaml_synthesis_defaults():
    synthesis = yaml.safe_load(CONFIG_YAML.read_text())["synthesis"]
    assert DEFAULT_NOISE_STD == synthesis["noise_std"]
    assert DEFAULT_KSPACE_FRACTION == synthesis["kspace_fraction"]


def test_degrade_slices_is_the_datasets_degradation_of_each_slice():
    """One slice: the volume-wide rescale is the slice's, so the result is kspace.degrade's."""
    hq = np.clip(ndimage.gaussian_filter(np.random.default_rng(3).random((208, 176)), 4) * 3, 0, 1)
    ours = degrade_slices(hq[None].astype(np.float32), 0.04, 0.125, np.random.default_rng(11))[0]
    dataset = degrade(
        hq.astype(np.float32).astype(np.float64), 0.125, 0.04, np.random.default_rng(11)
    )
    np.testing.assert_allclose(ours, dataset, atol=1e-6)


def test_degradation_settings_recorded_in_the_network_file_come_first(tmp_path):
    path = tmp_path / "generator.pt"
    recorded = {"noise_std": 0.02, "kspace_fraction": 0.25}
    save_generator(identity_unet(), path, {"stage": "finetune", "synthesis": recorded})
    _, metadata = load_network(path)
    mine = tmp_path / "my.yaml"
    mine.write_text("synthesis: {noise_std: 0.1, kspace_fraction: 0.5}\n")
    for config in (None, mine):
        settings = degradation_settings(metadata, config)
        assert (settings.noise_std, settings.kspace_fraction) == (0.02, 0.25)
        assert settings.from_network


def test_degradation_settings_of_an_older_file_come_from_config_else_the_defaults(
    tmp_path, identity_network
):
    _, metadata = load_network(identity_network)  # written without "synthesis"
    default = degradation_settings(metadata)
    assert (default.noise_std, default.kspace_fraction) == (0.04, 0.125)
    assert not default.from_network and "defaults" in default.source
    mine = tmp_path / "my.yaml"
    mine.write_text("synthesis: {noise_std: 0.1}\n")
    given = degradation_settings(metadata, config=mine)
    assert (given.noise_std, given.kspace_fraction) == (0.1, DEFAULT_KSPACE_FRACTION)
    assert str(mine) in given.source


@pytest.mark.parametrize(
    ("recorded", "config", "expected"),
    [
        (
            False,
            False,
            "records no synthesis settings (written before training recorded them); "
            "--degrade uses noise_std 0.04, kspace_fraction 0.125 from advmri's defaults",
        ),
        (False, True, "--degrade uses noise_std 0.1, kspace_fraction 0.125 from "),
        (True, True, "is not used: "),
        (True, False, None),
    ],
)
def test_degrade_names_where_its_settings_come_from_unless_the_network_file_has_them(
    tmp_path, capsys, recorded, config, expected
):
    network = tmp_path / "generator.pt"
    metadata = {"synthesis": {"noise_std": 0.02, "kspace_fraction": 0.25}} if recorded else {}
    save_generator(identity_unet(), network, metadata)
    scan = _write(tmp_path / "scan.nii.gz", smooth_anatomy((176, 208, 2)))
    argv = ["enhance", "--network", str(network), "--device", "cpu", "--degrade"]
    if config:
        mine = tmp_path / "my.yaml"
        mine.write_text("synthesis: {noise_std: 0.1}\n")
        argv += ["--config", str(mine)]
    code, _, err = run_cli([*argv, str(scan), str(tmp_path / "e.nii.gz")], capsys)
    assert code == 0, err
    assert all(line.startswith("advmri enhance: ") for line in err.splitlines()), err  # no bar
    lines = warnings_of(err)
    if expected is None:
        assert lines == []
    else:
        assert len(lines) == 1 and expected in lines[0], lines


def test_degradation_refuses_a_kspace_fraction_that_does_not_divide_the_grid(tmp_path):
    mine = tmp_path / "my.yaml"
    mine.write_text("synthesis: {kspace_fraction: 0.3}\n")
    with pytest.raises(EnhanceError, match="not a whole number"):
        degradation_settings({}, config=mine)


# --- refusals, one line each ----------------------------------------------------------------------


def _write(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    nib.save(
        nib.Nifti1Image(data.astype(np.float32), np.eye(4) if affine is None else affine), path
    )
    return path


def _with_nan_sform(path: Path) -> Path:
    """A NIfTI-1 file whose srow_x holds NaN (nibabel refuses to write one, scanners may not)."""
    image = nib.Nifti1Image(np.ones((20, 20, 4), dtype=np.float32), np.eye(4))
    image.set_sform(np.eye(4), code=1)
    nib.save(image, path)
    raw = bytearray(path.read_bytes())
    raw[280:284] = struct.pack("<f", float("nan"))  # srow_x[0]
    path.write_bytes(bytes(raw))
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
        ("thin slices", "are 208 x 8 pixels at 1 mm, a side below 16"),
        ("tiny voxels", "are 2 x 2 pixels at 1 mm, a side below 16"),
        ("coarse voxels", "an in-plane voxel size is not a number in (0, 8] mm"),
        ("nan affine", "its affine holds NaN or inf values"),
        ("all nan", "no voxel is finite (all are NaN or inf)"),
        ("negative seed", "--seed -1 must be a whole number >= 0"),
        ("bad percentiles", "--intensity-percentiles 99 1 must satisfy 0 <= LOW < HIGH <= 100"),
        ("bad pixel size", "--pixel-mm 0.0 must be a number in (0, 8] mm"),
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
    network, out, options = identity_network, tmp_path / "out.nii.gz", []
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
    elif case == "tiny voxels":  # an affine in metres, say
        scan = _write(tmp_path / "tiny.nii.gz", np.ones((176, 208, 4)), np.diag([0.01] * 3 + [1]))
    elif case == "coarse voxels":
        scan = _write(tmp_path / "coarse.nii.gz", np.ones((30, 30, 4)), np.diag([10.0] * 3 + [1]))
    elif case == "all nan":
        scan = _write(tmp_path / "nan.nii.gz", np.full((176, 208, 2), np.nan))
    elif case == "nan affine":
        scan = _with_nan_sform(tmp_path / "nan.nii")
    elif case == "negative seed":
        options = ["--degrade", "--seed", "-1"]
    elif case == "bad percentiles":
        options = ["--intensity-percentiles", "99", "1"]
    elif case == "bad pixel size":
        options = ["--pixel-mm", "0"]
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
        ["enhance", "--network", str(network), "--device", "cpu", *options, str(scan), str(out)],
        capsys,
    )
    assert code == 2
    assert stdout == ""
    assert err.startswith("advmri enhance: ") and err.count("\n") == 1, err
    assert expected in err
    assert not out.exists()


def test_a_write_that_nibabel_refuses_is_one_line_and_leaves_no_file(
    tmp_path, identity_network, capsys, monkeypatch
):
    scan = _write(tmp_path / "scan.nii.gz", smooth_anatomy((176, 208, 2)))
    out = tmp_path / "out" / "enhanced.nii.gz"

    def refuse(image, filename):
        Path(filename).write_bytes(b"half a header")
        raise HeaderDataError("Could not decompose affine")

    monkeypatch.setattr(advmri.enhance.files.nib, "save", refuse)
    code, _, err = run_cli(
        ["enhance", "--network", str(identity_network), "--device", "cpu", str(scan), str(out)],
        capsys,
    )
    assert code == 2
    assert err == (
        f"advmri enhance: cannot write {out} (HeaderDataError: Could not decompose affine); "
        "nothing was written there\n"
    )
    assert list(out.parent.iterdir()) == []


@pytest.mark.filterwarnings("ignore:invalid value encountered in det")
def test_save_turns_nibabels_own_refusal_into_an_enhance_error(tmp_path):
    image = nib.Nifti1Image(np.zeros((4, 4, 4), dtype=np.float32), np.eye(4))
    image.set_sform(np.diag([np.nan, 1, 1, 1]))  # nibabel cannot write this affine
    with pytest.raises(EnhanceError, match=r"cannot write .*HeaderDataError"):
        save_volume(image, tmp_path / "bad.nii.gz")
    assert list(tmp_path.iterdir()) == []


def test_a_4d_file_with_one_volume_is_enhanced_and_keeps_its_trailing_axis(
    tmp_path, identity_network
):
    data = smooth_anatomy((176, 208, 3))[..., None]
    scan = _write(tmp_path / "one.nii.gz", data)
    out = tmp_path / "one_enhanced.nii"
    enhance_file(scan, out, identity_network, device="cpu", intensity_percentiles=MIN_MAX)
    result = nib.load(out)
    assert result.shape == (176, 208, 3, 1)
    np.testing.assert_allclose(result.get_fdata(), data, rtol=0, atol=1e-3)


def test_uppercase_nifti_names_are_accepted_and_keep_their_compression(tmp_path, identity_network):
    scan = _write(tmp_path / "SCAN.NII.GZ", smooth_anatomy((176, 208, 2)))
    out = tmp_path / "SCAN_ENHANCED.NII.GZ"
    result = enhance_file(scan, out, identity_network, device="cpu", degrade=True)
    assert result.degraded == tmp_path / "SCAN_ENHANCED_lq.NII.GZ"
    for path in (out, result.degraded):
        with gzip.open(path) as handle:
            assert nib.load(path).shape == (176, 208, 2) and handle.read(4)


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
    warnings = warnings_of(err)
    assert len(warnings) == 1 and "randomly initialised VGG19" in warnings[0]


def test_load_network_names_the_expected_file_for_a_checkpoint(tmp_path):
    with pytest.raises(
        EnhanceError, match=r"expected a network.s folder, results/networks/<cell>/"
    ):
        load_network(_not_a_generator(tmp_path, "checkpoint"))


def test_inference_runs_with_deterministic_cudnn_and_restores_the_settings():
    seen = []
    network = identity_unet()
    network.register_forward_pre_hook(
        lambda module, args: seen.append(
            (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
        )
    )
    before = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = False, True
    try:
        enhance_slices(np.zeros((3, 208, 176), dtype=np.float32), network, batch_size=2)
        assert seen == [(True, False)] * 2
        assert (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark) == (
            False,
            True,
        )
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before


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
    assert f"wrote {out} (4 axial slices of 208 x 176 px of 1 x 1 mm, as is; cpu;" in (
        finished.stderr
    )
    assert out.exists() and (tmp_path / "scan_enhanced_lq.nii.gz").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_and_cpu_give_the_same_enhancement(tmp_path):
    image = fabricated_image(smooth_anatomy((176, 208, 4)), ("L", "P", "S"))
    torch.manual_seed(0)
    model = UNet(depth=2, base_features=4).eval()
    on_cpu = enhance_volume(image, model).get_fdata()
    on_cuda = enhance_volume(image, model.to("cuda")).get_fdata()
    np.testing.assert_allclose(on_cuda, on_cpu, rtol=0, atol=1e-3 * np.ptp(on_cpu))
