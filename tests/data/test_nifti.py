"""The nifti anatomy source on fabricated files named as FSL FAST, SPM and FreeSurfer/SynthSeg write them."""

import nibabel as nib
import numpy as np
import pytest

from advmri.data.anatomy import IMAGE_SHAPE, center_crop_or_pad
from advmri.data.nifti import load_nifti_subjects, manifest_files, read_manifest
from advmri.enhance import volume_to_grid
from advmri.errors import DataError

#: Label values of the fabricated label images (FreeSurfer aseg's: cortex, cerebral WM, ventricles).
ASEG = {"gm": [3, 42], "wm": [2, 41], "csf": [4, 43]}
SHAPE = (120, 150, 100)  # x, y, z of the fabricated 1 mm RAS volumes


def tissue_volumes(shape=SHAPE, voxel_mm=(1.0, 1.0, 1.0)) -> dict[str, np.ndarray]:
    """Binary GM, WM, CSF maps (RAS order) of a nested-ellipsoid brain, 100 x 130 x 80 mm."""
    x, y, z = np.meshgrid(
        *((np.arange(n) - (n - 1) / 2) * mm for n, mm in zip(shape, voxel_mm, strict=True)),
        indexing="ij",
    )
    radius = np.sqrt((x / 50) ** 2 + (y / 65) ** 2 + (z / 40) ** 2)
    ventricle = (np.abs(x) < 5) & (np.abs(y) < 20) & (np.abs(z) < 12)
    csf = ((radius < 1.0) & (radius >= 0.93)) | ventricle
    gm = (radius < 0.93) & (radius >= 0.7) & ~ventricle
    wm = (radius < 0.7) & ~ventricle
    return {name: m.astype(np.float32) for name, m in (("gm", gm), ("wm", wm), ("csf", csf))}


def ras_affine(voxel_mm=(1.0, 1.0, 1.0)) -> np.ndarray:
    return np.diag([*voxel_mm, 1.0])


def store(data_ras: np.ndarray, axcodes: str, voxel_mm=(1.0, 1.0, 1.0)):
    """``data_ras`` (x, y, z) re-stored in the voxel order ``axcodes``; returns (data, affine)."""
    from nibabel.orientations import axcodes2ornt, inv_ornt_aff, ornt_transform

    transform = ornt_transform(axcodes2ornt("RAS"), axcodes2ornt(axcodes))
    data = nib.orientations.apply_orientation(data_ras, transform)
    affine = ras_affine(voxel_mm) @ inv_ornt_aff(transform, data_ras.shape)
    return np.ascontiguousarray(data), affine


def write_manifest(folder, rows, columns=("gm", "wm", "csf"), suffix=".tsv"):
    separator = "\t" if suffix == ".tsv" else ","
    lines = [separator.join(("subject", "session", *columns))]
    lines += [separator.join(row) for row in rows]
    path = folder / f"manifest{suffix}"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_fast(folder, base, maps, affine):
    """``<base>_pve_{0,1,2}.nii.gz`` as FAST writes them; returns the (gm, wm, csf) relative paths."""
    folder.mkdir(parents=True, exist_ok=True)
    names = {}
    for tissue, number in (("csf", 0), ("gm", 1), ("wm", 2)):
        name = f"{base}_pve_{number}.nii.gz"
        nib.Nifti1Image(maps[tissue], affine).to_filename(folder / name)
        names[tissue] = name
    return names["gm"], names["wm"], names["csf"]


def expected_slice_of(maps, tissue, position):
    """The training picture of the axial slice at ``position`` of the brain's extent (1 mm RAS)."""
    brain = maps["gm"] + maps["wm"] + maps["csf"]
    holding = np.flatnonzero(brain.any(axis=(0, 1)))
    index = holding[0] + int(round(position * (holding[-1] - holding[0])))
    return center_crop_or_pad(maps[tissue][:, ::-1, index].T, IMAGE_SHAPE)


def load(manifest, positions=(0.5,), labels=ASEG, min_brain_px=100, on_bad_session="error"):
    return list(
        load_nifti_subjects(manifest, list(positions), labels, min_brain_px, on_bad_session)
    )


def test_fsl_fast_pve_files_load_as_csf_gm_wm_on_the_training_grid(tmp_path):
    maps = tissue_volumes()
    gm, wm, csf = write_fast(tmp_path / "sub-01", "sub-01_T1w_brain", maps, ras_affine())
    manifest = write_manifest(
        tmp_path, [("sub-01", "sub-01_ses-1", f"sub-01/{gm}", f"sub-01/{wm}", f"sub-01/{csf}")]
    )
    (subject,) = load(manifest)
    assert (subject.subject, subject.session, subject.t1) == ("sub-01", "sub-01_ses-1", None)
    for tissue in ("gm", "wm", "csf"):
        got = getattr(subject, tissue)
        assert got.shape == IMAGE_SHAPE and got.dtype == np.float32
        assert np.array_equal(got, expected_slice_of(maps, tissue, 0.5)), tissue
    # the ventricle at the centre, white matter around it, cortex at the rim
    assert subject.csf[104, 88] == 1 and subject.wm[104, 110] == 1 and subject.gm[104, 128] == 1


def test_spm_c1_c2_c3_uint8_maps_in_another_orientation_load_as_the_fast_maps(tmp_path):
    maps = tissue_volumes()
    gm, wm, csf = write_fast(tmp_path / "fast", "T1_brain", maps, ras_affine())
    spm = tmp_path / "spm"
    spm.mkdir()
    for number, tissue in ((1, "gm"), (2, "wm"), (3, "csf")):
        data, affine = store(maps[tissue], "LPI")  # flipped on every axis
        image = nib.Nifti1Image(np.rint(data * 255).astype(np.uint8), affine)
        image.header.set_slope_inter(1 / 255, 0)  # SPM's scaled uint8 probabilities
        image.to_filename(spm / f"c{number}sub-01_T1w.nii")
    manifest = write_manifest(
        tmp_path,
        [
            ("sub-01", "fast", f"fast/{gm}", f"fast/{wm}", f"fast/{csf}"),
            (
                "sub-01",
                "spm",
                "spm/c1sub-01_T1w.nii",
                "spm/c2sub-01_T1w.nii",
                "spm/c3sub-01_T1w.nii",
            ),
        ],
    )
    fast, spm_subject = load(manifest, positions=(0.3, 0.7))[::2]
    assert (fast.session, spm_subject.session) == ("fast_z30", "spm_z30")
    for tissue in ("gm", "wm", "csf"):
        np.testing.assert_allclose(getattr(spm_subject, tissue), getattr(fast, tissue), atol=1e-6)


@pytest.mark.parametrize("name", ["aseg.mgz", "sub-01_T1w_synthseg.nii.gz"])
def test_a_label_image_loads_each_tissue_from_its_configured_labels(tmp_path, name):
    maps = tissue_volumes()
    labels = np.zeros(SHAPE, dtype=np.int32)
    right = np.arange(SHAPE[0])[:, None, None] < SHAPE[0] // 2  # RAS: low x is patient right
    for tissue, (first, second) in ASEG.items():
        labels[(maps[tissue] > 0) & ~right] = first  # FreeSurfer's Left-* label
        labels[(maps[tissue] > 0) & right] = second
    labels[:, :, :3] = 999  # a label of no configured tissue (FreeSurfer's 'unknown' would be 0)
    data, affine = store(labels, "LIA")  # FreeSurfer's conformed orientation
    folder = tmp_path / "sub-01" / "mri"
    folder.mkdir(parents=True)
    if name.endswith(".mgz"):
        nib.MGHImage(data, affine).to_filename(folder / name)
    else:
        nib.Nifti1Image(data, affine).to_filename(folder / name)
    manifest = write_manifest(tmp_path, [("sub-01", "s1", f"sub-01/mri/{name}")], ("labels",))
    (subject,) = load(manifest, positions=(0.5,))
    for tissue in ("gm", "wm", "csf"):
        assert np.array_equal(getattr(subject, tissue), expected_slice_of(maps, tissue, 0.5))


def test_geometry_agrees_with_advmri_enhance_on_an_anisotropic_scan_stored_psl(tmp_path):
    """One volume both ways: the nifti source's slice equals enhance's grid slice of that index."""
    voxel_mm = (1.6, 2.5, 3.0)  # R, A, S voxel sizes: both in-plane axes are resampled
    shape = (70, 60, 34)
    maps = tissue_volumes(shape, voxel_mm)
    stored = {}
    for tissue in ("gm", "wm", "csf"):
        stored[tissue] = store(maps[tissue], "PSL", voxel_mm)  # slices along the stored last axis
    gm, wm, csf = write_fast(
        tmp_path, "T1_brain", {t: d for t, (d, _) in stored.items()}, stored["gm"][1]
    )
    manifest = write_manifest(tmp_path, [("sub-01", "s1", gm, wm, csf)])
    brain = maps["gm"] + maps["wm"] + maps["csf"]
    holding = np.flatnonzero(brain.any(axis=(0, 1)))
    for position in (0.35, 0.6):
        (subject,) = load(manifest, positions=(position,))
        index = holding[0] + int(round(position * (holding[-1] - holding[0])))
        for tissue in ("gm", "wm", "csf"):
            image = nib.load(tmp_path / {"gm": gm, "wm": wm, "csf": csf}[tissue])
            grid = volume_to_grid(image, intensity_percentiles=(0, 100))  # plain min-max: 0..1
            assert (grid.low, grid.high) == (0.0, 1.0)
            np.testing.assert_array_equal(getattr(subject, tissue), grid.slices[index])
    # resampled to 1 mm: the brain's 100 mm L-R width spans ~100 columns, not 100 / 1.6
    columns = np.flatnonzero((subject.gm + subject.wm + subject.csf).max(axis=0) >= 0.5)
    assert 95 <= columns[-1] - columns[0] + 1 <= 102


def test_sessions_of_one_subject_keep_the_subject_and_several_positions_name_their_slices(
    tmp_path,
):
    maps = tissue_volumes()
    rows = []
    for subject, session in (("sub-02", "sub-02_ses-1"), ("sub-01", "b"), ("sub-01", "a")):
        names = write_fast(tmp_path / session, "T1_brain", maps, ras_affine())
        rows.append((subject, session, *(f"{session}/{n}" for n in names)))
    manifest = write_manifest(tmp_path, rows, suffix=".csv")
    subjects = load(manifest, positions=(0.4, 0.55))
    assert [(s.subject, s.session) for s in subjects] == [
        ("sub-01", "a_z40"),
        ("sub-01", "a_z55"),
        ("sub-01", "b_z40"),
        ("sub-01", "b_z55"),
        ("sub-02", "sub-02_ses-1_z40"),
        ("sub-02", "sub-02_ses-1_z55"),
    ]
    assert not np.array_equal(subjects[0].wm, subjects[1].wm)


def test_workflow_inputs_are_the_manifest_and_its_existing_maps(fast_session):
    folder, (gm, wm, csf) = fast_session
    manifest = write_manifest(
        folder, [("sub-01", "s1", gm, wm, csf), ("sub-02", "s2", gm, "x", csf)]
    )
    assert manifest_files(manifest) == {
        "manifest": str(manifest),
        "maps": sorted(str(folder / name) for name in (gm, wm, csf)),  # x is missing: left out
    }
    assert manifest_files(folder / "none.tsv") == {}  # the job names it in one line


# --- bad input: one line naming the file and the problem ------------------------------------------


def one_line(error) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    return message


@pytest.fixture
def fast_session(tmp_path):
    """A good FAST session ``s1`` of ``sub-01``; returns (folder, its file names gm, wm, csf)."""
    maps = tissue_volumes()
    return tmp_path, write_fast(tmp_path, "T1_brain", maps, ras_affine())


def test_maps_of_different_shapes_are_refused_naming_the_file(fast_session):
    folder, (gm, wm, csf) = fast_session
    nib.Nifti1Image(np.zeros((120, 150, 99), np.float32), ras_affine()).to_filename(folder / wm)
    manifest = write_manifest(folder, [("sub-01", "s1", gm, wm, csf)])
    with pytest.raises(DataError, match=r"nifti: s1: .*T1_brain_pve_2\.nii\.gz has shape") as error:
        load(manifest)
    assert "(120, 150, 99)" in one_line(error) and "share one voxel grid" in str(error.value)


def test_maps_of_different_affines_are_refused_naming_the_file(fast_session):
    folder, (gm, wm, csf) = fast_session
    shifted = ras_affine()
    shifted[0, 3] = 2.0
    data = nib.load(folder / csf).get_fdata(dtype=np.float32)
    nib.Nifti1Image(data, shifted).to_filename(folder / csf)
    manifest = write_manifest(folder, [("sub-01", "s1", gm, wm, csf)])
    with pytest.raises(DataError, match=r"T1_brain_pve_0\.nii\.gz has another affine") as error:
        load(manifest)
    assert "differing by up to 2 mm" in one_line(error)


def test_a_probability_map_outside_0_1_is_refused_naming_the_file(fast_session):
    folder, (gm, wm, csf) = fast_session
    data = nib.load(folder / gm).get_fdata(dtype=np.float32) * 255  # a 0..255 map
    nib.Nifti1Image(data, ras_affine()).to_filename(folder / gm)
    manifest = write_manifest(folder, [("sub-01", "s1", gm, wm, csf)])
    with pytest.raises(DataError, match=r"T1_brain_pve_1\.nii\.gz holds values in \[0, 255\]"):
        load(manifest)


def test_a_label_image_without_the_configured_labels_is_refused_naming_file_and_values(tmp_path):
    labels = np.zeros(SHAPE, dtype=np.int16)
    labels[30:90, 30:120, 20:80] = 7
    nib.Nifti1Image(labels, ras_affine()).to_filename(tmp_path / "seg.nii.gz")
    manifest = write_manifest(tmp_path, [("sub-01", "s1", "seg.nii.gz")], ("labels",))
    with pytest.raises(DataError) as error:
        load(manifest, labels={"gm": [3], "wm": [2], "csf": [4]})
    message = one_line(error)
    assert message.startswith("nifti: s1: ") and "seg.nii.gz holds none of the labels" in message
    assert "(its values: 0, 7)" in message


def test_a_slice_outside_the_brain_is_refused_naming_the_file(fast_session):
    folder, names = fast_session
    manifest = write_manifest(folder, [("sub-01", "s1", *names)])
    with pytest.raises(DataError) as error:
        load(manifest, positions=(0.0,), min_brain_px=2000)  # the brain's lowest slice: its tip
    message = one_line(error)
    assert "T1_brain_pve_1.nii.gz: the slice at position 0 (axial slice" in message
    assert "fewer than data.nifti.min_brain_px = 2000; it lies outside the brain" in message


def test_a_missing_file_is_refused_naming_it(fast_session):
    folder, (gm, wm, csf) = fast_session
    manifest = write_manifest(folder, [("sub-01", "s1", gm, "nowhere_pve_2.nii.gz", csf)])
    with pytest.raises(DataError) as error:
        load(manifest)
    assert one_line(error) == f"nifti: s1: {folder / 'nowhere_pve_2.nii.gz'} does not exist"


def test_skip_mode_leaves_bad_sessions_out_and_counts_them(tmp_path, caplog):
    maps = tissue_volumes()
    rows = []
    for session in ("s1", "s2", "s3"):
        names = write_fast(tmp_path / session, "T1_brain", maps, ras_affine())
        rows.append((session.replace("s", "sub-"), session, *(f"{session}/{n}" for n in names)))
    (tmp_path / "s2" / "T1_brain_pve_0.nii.gz").write_bytes(b"not an image")
    manifest = write_manifest(tmp_path, rows)
    with caplog.at_level("WARNING", logger="advmri"):
        subjects = load(manifest, on_bad_session="skip")
    assert [s.session for s in subjects] == ["s1", "s3"]
    assert "s2/T1_brain_pve_0.nii.gz is not an image nibabel can read" in caplog.text
    assert "nifti: skipped 1 bad session(s): s2" in caplog.text


@pytest.mark.parametrize(
    ("header", "row", "problem"),
    [
        ("subject\tgm\twm\tcsf", "a\tx\ty\tz", "has no column 'session'"),
        ("subject\tsession\tgm\twm", "a\tb\tx\ty", "needs columns gm, wm, csf"),
        ("subject\tsession\tgm\twm\tcsf", "a\tb\tx\t\tz", "row 1 (session b) has an empty wm"),
        ("subject\tsession\tgm\twm\tcsf\tlabels", "a\tb\tx\ty\tz\tl", "fills both"),
        ("subject\tsession\tgm\twm\tcsf", "a\tb\tx\ty\tz\nc\tb\tx\ty\tz", "is in rows 1 and 2"),
    ],
)
def test_a_bad_manifest_stops_in_one_line_naming_it(tmp_path, header, row, problem):
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text(f"{header}\n{row}\n")
    with pytest.raises(DataError) as error:
        read_manifest(manifest)
    message = one_line(error)
    assert message.startswith(f"nifti: manifest {manifest}") and problem in message


def test_a_spreadsheet_exported_csv_with_byte_order_mark_and_crlf_is_read(tmp_path):
    manifest = tmp_path / "sessions.csv"
    manifest.write_bytes(b"\xef\xbb\xbfsubject,session,labels\r\nsub-01,sub-01_ses-1,aseg.mgz\r\n")
    (row,) = read_manifest(manifest)
    assert (row.subject, row.session, row.maps) == (
        "sub-01",
        "sub-01_ses-1",
        {"labels": tmp_path / "aseg.mgz"},
    )


def test_a_manifest_of_another_format_or_missing_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"manifest .*sessions\.xlsx: expected a \.tsv or \.csv"):
        (tmp_path / "sessions.xlsx").write_text("x")
        read_manifest(tmp_path / "sessions.xlsx")
    with pytest.raises(DataError, match=r"manifest .*none\.tsv does not exist \(data\.nifti"):
        read_manifest(tmp_path / "none.tsv")
