"""Read the OASIS-1 cross-sectional release as users unpack it.

Layout (each disc unpacked under one root; sessions may sit directly under the root or one folder down,
e.g. ``disc1/``)::

    OAS1_0061_MR1/PROCESSED/MPRAGE/T88_111/OAS1_0061_MR1_mpr_n4_anon_111_t88_masked_gfc.{hdr,img}
    OAS1_0061_MR1/FSL_SEG/OAS1_0061_MR1_mpr_n4_anon_111_t88_masked_gfc_fseg.{hdr,img}

Images are Analyze 7.5, 176 x 208 x 176 x 1 (int16 T1, uint8 FSL FAST labels 0 background, 1 CSF,
2 GM, 3 WM). One axial slice per session. ``MR2`` sessions are reliability rescans of the ``MR1``
patient: both carry the same ``subject`` so that the split keeps them together.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import nibabel as nib
import numpy as np

from advmri.data.anatomy import IMAGE_SHAPE, Subject, axial_slab, center_crop_or_pad
from advmri.errors import DataError
from advmri.logs import logger

SESSION_PATTERN = re.compile(r"^(?P<subject>OAS1_\d{4})_MR(?P<visit>\d+)$")
#: Voxel grid of the atlas-registered T88_111 images (x, y, z).
OASIS_GRID = (176, 208, 176)
FSEG_LABELS = {"csf": 1, "gm": 2, "wm": 3}


def find_sessions(root: str | Path) -> list[Path]:
    """Session folders ``OAS1_xxxx_MRn`` under ``root`` (or one level down), sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"oasis1: data.oasis1.root = {str(root)!r} is not a folder")
    folders = [p for p in root.iterdir() if p.is_dir() and SESSION_PATTERN.match(p.name)]
    for disc in root.iterdir():
        if disc.is_dir() and not SESSION_PATTERN.match(disc.name):
            folders += [p for p in disc.iterdir() if p.is_dir() and SESSION_PATTERN.match(p.name)]
    folders.sort(key=lambda p: p.name)
    names = [p.name for p in folders]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DataError(f"oasis1: session {duplicates[0]} appears twice under {root}")
    if not folders:
        raise DataError(f"oasis1: no OAS1_xxxx_MRn session folders under {root}")
    return folders


def _single_image(folder: Path, pattern: str, session: str) -> Path:
    matches = sorted(folder.glob(pattern)) if folder.is_dir() else []
    if not matches:
        raise DataError(f"oasis1: {session}: no {folder.name}/{pattern} found in {folder.parent}")
    return matches[0]


def _load_analyze(img_path: Path, session: str, session_dir: Path) -> np.ndarray:
    """Load an Analyze image pair, checking the data file's size against its header first."""
    where = img_path.relative_to(session_dir)
    hdr_path = img_path.with_suffix(".hdr")
    if not hdr_path.is_file():
        raise DataError(f"oasis1: {session}: {where.with_suffix('.hdr')} is missing")
    try:
        image = nib.load(str(hdr_path))
    except Exception as error:  # nibabel raises several types for a broken header
        raise DataError(
            f"oasis1: {session}: {where.with_suffix('.hdr')} is unreadable ({error})"
        ) from error
    header = image.header
    expected = int(np.prod(header.get_data_shape())) * header.get_data_dtype().itemsize
    found = img_path.stat().st_size
    if found < expected:
        raise DataError(
            f"oasis1: {session}: {where} is truncated (expected {expected:,} bytes, found {found:,})"
        )
    shape = tuple(header.get_data_shape())[:3]
    if shape != OASIS_GRID:
        raise DataError(f"oasis1: {session}: {where} has shape {shape}, expected {OASIS_GRID}")
    return image


def read_session(session_dir: Path, slice_index: int) -> Subject:
    """One session's axial slice ``slice_index`` (RAS, 0 = inferior) as a :class:`Subject`."""
    session = session_dir.name
    match = SESSION_PATTERN.match(session)
    if match is None:
        raise DataError(f"oasis1: {session_dir} is not an OAS1_xxxx_MRn session folder")
    t1_path = _single_image(
        session_dir / "PROCESSED" / "MPRAGE" / "T88_111",
        f"{session}_mpr_n*_anon_111_t88_masked_gfc.img",
        session,
    )
    seg_path = _single_image(
        session_dir / "FSL_SEG", f"{session}_mpr_n*_anon_111_t88_masked_gfc_fseg.img", session
    )
    t1_img = _load_analyze(t1_path, session, session_dir)
    seg_img = _load_analyze(seg_path, session, session_dir)
    t1 = center_crop_or_pad(axial_slab(t1_img, slice_index), IMAGE_SHAPE)
    labels = np.rint(center_crop_or_pad(axial_slab(seg_img, slice_index), IMAGE_SHAPE))
    t1 = np.clip(t1, 0, None)
    t1 = t1 / max(float(t1.max()), 1e-12)
    maps = {name: (labels == label).astype(np.float32) for name, label in FSEG_LABELS.items()}
    return Subject(
        subject=match["subject"],
        session=session,
        t1=t1.astype(np.float32),
        wm=maps["wm"],
        gm=maps["gm"],
        csf=maps["csf"],
    )


def load_oasis1_subjects(
    root: str | Path, slice_index: int, on_bad_session: str = "error"
) -> Iterator[Subject]:
    """Yield every readable session under ``root`` in name order.

    ``on_bad_session="error"`` stops at the first missing or corrupt file with a :class:`DataError`
    naming the session and the file; ``"skip"`` leaves such sessions out and logs how many.
    """
    if on_bad_session not in ("error", "skip"):
        raise ValueError(f"on_bad_session must be 'error' or 'skip', not {on_bad_session!r}")
    skipped = []
    for session_dir in find_sessions(root):
        try:
            yield read_session(session_dir, slice_index)
        except DataError as error:
            if on_bad_session == "error":
                raise
            skipped.append(session_dir.name)
            logger.warning("skipping session: %s", error)
    if skipped:
        logger.warning("oasis1: skipped %d bad session(s): %s", len(skipped), ", ".join(skipped))
