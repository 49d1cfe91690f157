import numpy as np
import pytest

from advmri.data.anatomy import IMAGE_SHAPE
from advmri.data.oasis1 import find_sessions, load_oasis1_subjects, read_session
from advmri.errors import DataError

from fabricate import T1_NAME, synthetic_labels, write_oasis_session, write_oasis_tree


def test_reader_gives_tissue_maps_of_the_slice_on_the_208_by_176_grid(tmp_path):
    write_oasis_session(tmp_path, "OAS1_0001_MR1")
    subject = read_session(tmp_path / "OAS1_0001_MR1", slice_index=88)
    assert (subject.subject, subject.session) == ("OAS1_0001", "OAS1_0001_MR1")
    labels = synthetic_labels()[:, :, 88]  # RAS (x, y)
    expected_wm = (labels == 3)[:, ::-1].T  # rows anterior -> posterior, columns left -> right
    assert subject.wm.shape == IMAGE_SHAPE
    assert np.array_equal(subject.wm, expected_wm)
    assert np.array_equal(subject.csf, (labels == 1)[:, ::-1].T)
    assert subject.t1.max() == 1.0
    # the WM map and the T1 agree: WM is the brightest tissue
    assert subject.t1[subject.wm > 0].min() > subject.t1[subject.gm > 0].max()


def test_orientation_puts_anterior_up_and_patient_left_on_the_left(tmp_path):
    folder = write_oasis_session(tmp_path, "OAS1_0001_MR1")
    from fabricate import write_analyze

    labels = np.zeros((176, 208, 176), dtype=np.uint8)
    labels[10, 200, 88] = 3  # far left (low x), far anterior (high y)
    name = T1_NAME.format(session="OAS1_0001_MR1")
    write_analyze(folder / "FSL_SEG" / f"{name}_fseg.img", labels)
    subject = read_session(folder, slice_index=88)
    row, col = np.argwhere(subject.wm)[0]
    assert (row, col) == (207 - 200, 10)


def test_sessions_are_found_directly_and_inside_disc_folders(tmp_path):
    write_oasis_session(tmp_path / "disc1", "OAS1_0003_MR1")
    write_oasis_session(tmp_path, "OAS1_0001_MR1")
    (tmp_path / "notes").mkdir()
    assert [p.name for p in find_sessions(tmp_path)] == ["OAS1_0001_MR1", "OAS1_0003_MR1"]


def test_truncated_image_stops_the_run_naming_session_and_file(tmp_path):
    write_oasis_tree(tmp_path, ["OAS1_0001_MR1", "OAS1_0002_MR1"])
    name = T1_NAME.format(session="OAS1_0002_MR1")
    broken = tmp_path / "OAS1_0002_MR1" / "FSL_SEG" / f"{name}_fseg.img"
    broken.write_bytes(broken.read_bytes()[:1024])
    with pytest.raises(DataError) as error:
        list(load_oasis1_subjects(tmp_path, slice_index=88))
    message = str(error.value)
    assert "OAS1_0002_MR1" in message and f"{name}_fseg.img" in message
    assert "truncated (expected 6,443,008 bytes, found 1,024)" in message


def test_missing_image_stops_the_run_naming_the_session(tmp_path):
    folder = write_oasis_session(tmp_path, "OAS1_0001_MR1")
    for path in (folder / "PROCESSED" / "MPRAGE" / "T88_111").iterdir():
        path.unlink()
    with pytest.raises(DataError, match=r"OAS1_0001_MR1: no T88_111/OAS1_0001_MR1_mpr_n\*"):
        list(load_oasis1_subjects(tmp_path, slice_index=88))


def test_skip_mode_leaves_bad_sessions_out_and_counts_them(tmp_path, caplog):
    write_oasis_tree(tmp_path, ["OAS1_0001_MR1", "OAS1_0002_MR1", "OAS1_0003_MR1"])
    name = T1_NAME.format(session="OAS1_0003_MR1")
    img = tmp_path / "OAS1_0003_MR1" / "PROCESSED" / "MPRAGE" / "T88_111" / f"{name}.img"
    img.write_bytes(b"\0" * 10)
    with caplog.at_level("WARNING", logger="advmri"):
        subjects = list(load_oasis1_subjects(tmp_path, slice_index=88, on_bad_session="skip"))
    assert [s.session for s in subjects] == ["OAS1_0001_MR1", "OAS1_0002_MR1"]
    assert "skipped 1 bad session(s): OAS1_0003_MR1" in caplog.text


def test_empty_root_is_refused(tmp_path):
    with pytest.raises(DataError, match="no OAS1_xxxx_MRn session folders"):
        find_sessions(tmp_path)
