"""Users' own scans as anatomy: tissue maps in NIfTI (or any format nibabel reads), listed in a manifest.

The manifest (``data.nifti.manifest``, ``.tsv`` or ``.csv``) has one row per scan session: columns
``subject`` and ``session``, then either three probability maps ``gm``, ``wm``, ``csf`` or one label
image ``labels`` whose values per tissue are ``data.nifti.labels``. Paths are relative to the
manifest's folder (absolute paths are kept). Session names are unique in the manifest; sessions of
one subject share the subject's side of the split, as OASIS-1's MR1/MR2 do. The conventions users
meet:

- FSL FAST: ``*_pve_0`` CSF, ``*_pve_1`` GM, ``*_pve_2`` WM (float probabilities).
- SPM segment: ``c1*`` GM, ``c2*`` WM, ``c3*`` CSF (often uint8 scaled by 1/255).
- A label image, e.g. FreeSurfer's ``aseg.mgz`` or SynthSeg's ``*_synthseg.nii.gz``: each tissue's
  probability is 1 where the voxel holds one of its labels.

Geometry (:mod:`advmri.data.geometry`, what ``advmri enhance`` uses): the maps are brought to RAS+
voxel order without resampling; the brain (GM + WM + CSF >= 0.5) spans axial slices
``lo..hi``, and each of ``data.nifti.slice_positions`` (fractions of that inferior-superior extent)
picks slice ``lo + round(p * (hi - lo))``; that slice is resampled in-plane to 1 mm pixels and
centred on the 208 x 176 grid. With several positions, each slice is its own dataset session,
``<session>_z<100 p>`` (``sub-01_ses-1_z45``), of the same subject.

A session whose maps disagree in shape or affine, hold a probability outside [0, 1], hold none of the
configured labels, is missing a file, or whose slice holds less brain than ``data.nifti.min_brain_px``
stops the run with one line naming the file and the problem, or with ``on_bad_session: skip`` is
left out and counted in the log (as :mod:`advmri.data.oasis1` does).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from advmri.data.anatomy import Subject
from advmri.data.geometry import GeometryError, SliceMap, axial_stack, ras_frame
from advmri.errors import DataError
from advmri.logs import logger

TISSUES: tuple[str, str, str] = ("gm", "wm", "csf")
#: Tissue sum at or above which a voxel (or pixel) counts as brain.
BRAIN_THRESHOLD = 0.5
#: Probability values this far outside [0, 1] are accepted (and clipped): float rounding of scaled
#: integer maps such as SPM's uint8 x 1/255.
PROBABILITY_TOLERANCE = 1e-3
#: Largest difference, mm, between the affines of one session's maps that counts as the same grid.
AFFINE_TOLERANCE_MM = 1e-3
MANIFEST_SEPARATORS = {".tsv": "\t", ".csv": ","}


@dataclass(frozen=True)
class ManifestRow:
    """One session of the manifest: its names and map files (absolute paths)."""

    row: int  # 1-based data row, as a spreadsheet shows it below the header
    subject: str
    session: str
    maps: dict[str, Path]  # gm, wm, csf -> file; or labels -> file


def read_manifest(path: str | Path) -> list[ManifestRow]:
    """The sessions of a manifest, sorted by (subject, session).

    Raises
    ------
    DataError
        The manifest is missing, not ``.tsv``/``.csv``, lacks ``subject``/``session``, has neither
        ``gm, wm, csf`` nor ``labels`` columns, has an empty cell, a row filling both or neither
        kind of map, or a session name twice.
    """
    path = Path(path)
    where = f"nifti: manifest {path}"
    if not path.is_file():
        raise DataError(f"{where} does not exist (data.nifti.manifest)")
    separator = MANIFEST_SEPARATORS.get(path.suffix.lower())
    if separator is None:
        raise DataError(f"{where}: expected a .tsv or .csv file, not {path.suffix or 'no suffix'}")
    try:
        # utf-8-sig: spreadsheets export CSV with a byte-order mark before "subject"
        table = pd.read_csv(
            path, sep=separator, dtype=str, keep_default_na=False, encoding="utf-8-sig"
        )
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else "empty"
        raise DataError(f"{where} cannot be read as a table ({reason})") from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in ("subject", "session") if c not in table.columns]
    if missing:
        raise DataError(
            f"{where} has no column {missing[0]!r} (columns: {', '.join(table.columns)})"
        )
    has_maps = all(t in table.columns for t in TISSUES)
    has_labels = "labels" in table.columns
    if not (has_maps or has_labels):
        raise DataError(
            f"{where} needs columns gm, wm, csf (probability maps) or labels (a label image); "
            f"it has {', '.join(table.columns)}"
        )
    if table.empty:
        raise DataError(f"{where} lists no sessions")
    rows = []
    for index, record in enumerate(table.to_dict("records"), start=1):
        cells = {k: str(v).strip() for k, v in record.items()}
        for column in ("subject", "session"):
            if not cells[column]:
                raise DataError(f"{where}: row {index} has an empty {column}")
        kinds = []
        if has_maps and any(cells[t] for t in TISSUES):
            empty = [t for t in TISSUES if not cells[t]]
            if empty:
                raise DataError(
                    f"{where}: row {index} (session {cells['session']}) has an empty {empty[0]}"
                )
            kinds.append({t: cells[t] for t in TISSUES})
        if has_labels and cells["labels"]:
            kinds.append({"labels": cells["labels"]})
        if len(kinds) != 1:
            problem = "both gm/wm/csf and labels" if kinds else "neither gm/wm/csf nor labels"
            raise DataError(f"{where}: row {index} (session {cells['session']}) fills {problem}")
        maps = {name: _resolve(path.parent, value) for name, value in kinds[0].items()}
        rows.append(ManifestRow(index, cells["subject"], cells["session"], maps))
    seen: dict[str, int] = {}
    for row in rows:
        if row.session in seen:
            raise DataError(
                f"{where}: session {row.session!r} is in rows {seen[row.session]} and {row.row}; "
                "session names must be unique in the manifest (e.g. sub-01_ses-1)"
            )
        seen[row.session] = row.row
    return sorted(rows, key=lambda r: (r.subject, r.session))


def manifest_files(manifest: str | Path) -> dict[str, str | list[str]]:
    """The manifest and the map files it lists that exist, for a workflow's inputs.

    Returns ``{"manifest": path, "maps": [...]}``; only ``manifest`` when the reader refuses the
    table, nothing when it does not exist, and missing maps are left out: reading the anatomy then
    names the problem in one line (or skips the session) instead of the workflow refusing to start
    with a list of missing inputs.
    """
    if not Path(manifest).is_file():
        return {}
    try:
        rows = read_manifest(manifest)
    except DataError:
        return {"manifest": str(manifest)}
    maps = sorted({str(path) for row in rows for path in row.maps.values() if path.is_file()})
    return {"manifest": str(manifest), "maps": maps}


def _resolve(folder: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else folder / path


def _load_map(path: Path, session: str) -> tuple[np.ndarray, np.ndarray]:
    """A map's voxels (float32, 3-D) and affine; DataError naming the file when it cannot be."""
    where = f"nifti: {session}: {path}"
    if not path.is_file():
        raise DataError(f"{where} does not exist")
    try:
        image = nib.load(path)
        shape = tuple(image.shape)
        if len(shape) == 4 and shape[3] == 1:
            shape = shape[:3]
        if len(shape) != 3:
            raise DataError(f"{where} has shape {tuple(image.shape)}; expected one 3-D volume")
        data = np.asarray(image.get_fdata(dtype=np.float32)).reshape(shape)
    except DataError:
        raise
    except Exception as error:  # ImageFileError, OSError, gzip and header errors: one meaning
        text = str(error).strip()
        reason = text.splitlines()[0] if text else "no message"
        raise DataError(
            f"{where} is not an image nibabel can read ({type(error).__name__}: {reason})"
        ) from None
    return data, np.asarray(image.affine, dtype=np.float64)


def _probability(data: np.ndarray, path: Path, session: str) -> np.ndarray:
    """A probability map checked to lie in [0, 1] (within :data:`PROBABILITY_TOLERANCE`), clipped."""
    finite = np.isfinite(data)
    if not finite.all():
        raise DataError(
            f"nifti: {session}: {path} holds {int((~finite).sum()):,} NaN or infinite voxels; "
            "a probability map must lie in [0, 1]"
        )
    low, high = float(data.min()), float(data.max())
    if low < -PROBABILITY_TOLERANCE or high > 1 + PROBABILITY_TOLERANCE:
        raise DataError(
            f"nifti: {session}: {path} holds values in [{low:.4g}, {high:.4g}], outside [0, 1]; "
            "is it a probability map (FAST *_pve_N, SPM cN*), or a label image (column labels)?"
        )
    return np.clip(data, 0.0, 1.0)


def load_tissue_volumes(
    row: ManifestRow, labels: Mapping[str, Sequence[int]]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A session's GM, WM and CSF probability volumes (stored voxel order) and their affine.

    Parameters
    ----------
    row : ManifestRow
        The session (three probability maps, or a label image).
    labels : {"gm": [...], "wm": [...], "csf": [...]}
        Label values of each tissue in a label image (``data.nifti.labels``).

    Raises
    ------
    DataError
        A file missing or unreadable; maps of the session of different shapes or affines; a
        probability outside [0, 1]; a label image holding none of the configured labels.
    """
    if "labels" in row.maps:
        path = row.maps["labels"]
        data, affine = _load_map(path, row.session)
        values = np.rint(data)
        volumes = {t: np.isin(values, list(labels[t])).astype(np.float32) for t in TISSUES}
        if not any(volume.any() for volume in volumes.values()):
            found = np.unique(values[np.isfinite(values)])
            shown = ", ".join(f"{v:g}" for v in found[:12]) + (", ..." if len(found) > 12 else "")
            raise DataError(
                f"nifti: {row.session}: {path} holds none of the labels of data.nifti.labels "
                f"(its values: {shown}); set the label values of gm, wm and csf"
            )
        return volumes, affine
    volumes, first = {}, None
    for tissue in TISSUES:
        path = row.maps[tissue]
        data, affine = _load_map(path, row.session)
        if first is None:
            first = (path, data.shape, affine)
        elif data.shape != first[1]:
            raise DataError(
                f"nifti: {row.session}: {path} has shape {data.shape}, but {first[0]} has "
                f"{first[1]}; the maps of a session must share one voxel grid"
            )
        elif not np.allclose(affine, first[2], rtol=0, atol=AFFINE_TOLERANCE_MM):
            difference = float(np.abs(affine - first[2]).max())
            raise DataError(
                f"nifti: {row.session}: {path} has another affine than {first[0]} (differing by "
                f"up to {difference:.4g} mm); the maps of a session must share one voxel grid"
            )
        volumes[tissue] = _probability(data, path, row.session)
    return volumes, first[2]


def axial_positions(brain: np.ndarray, positions: Sequence[float]) -> list[int]:
    """Axial slice indices at ``positions`` (fractions, 0 = inferior) of the brain's I-S extent.

    Parameters
    ----------
    brain : (Z, H, W) bool
        The brain mask as an axial stack (:func:`~advmri.data.geometry.axial_stack`).
    positions : fractions in [0, 1]

    Returns
    -------
    list of int
        ``lo + round(p * (hi - lo))`` with ``lo``, ``hi`` the first and last slices holding brain.
    """
    holding = np.flatnonzero(brain.any(axis=(1, 2)))
    lo, hi = int(holding[0]), int(holding[-1])
    return [lo + int(round(p * (hi - lo))) for p in positions]


def session_name(session: str, position: float, several: bool) -> str:
    """The dataset session of one slice: the manifest's name, suffixed ``_z<100 p>`` if several."""
    return f"{session}_z{round(100 * position, 6):g}" if several else session


def read_session(
    row: ManifestRow,
    positions: Sequence[float],
    labels: Mapping[str, Sequence[int]],
    min_brain_px: int,
) -> list[Subject]:
    """The configured axial slices of one session, each a :class:`Subject` on the 208 x 176 grid.

    Raises
    ------
    DataError
        As :func:`load_tissue_volumes`; an affine without orientation or an absurd voxel size
        (:mod:`advmri.data.geometry`); no brain voxel at all; a slice holding fewer than
        ``min_brain_px`` brain pixels (GM + WM + CSF >= 0.5) on the 1 mm grid.
    """
    volumes, affine = load_tissue_volumes(row, labels)
    named = next(iter(row.maps.values()))
    try:
        orientation, ras_mm = ras_frame(affine, f"nifti: {row.session}: {named}")
        stacks = {t: axial_stack(volumes[t], orientation) for t in TISSUES}
        slice_map = SliceMap.plan(stacks["gm"].shape[1:], (ras_mm[1], ras_mm[0]))
    except GeometryError as error:
        message = str(error)
        if not message.startswith("nifti:"):
            message = f"nifti: {row.session}: {named}: {message}"
        raise DataError(message) from None
    brain = (stacks["gm"] + stacks["wm"] + stacks["csf"]) >= BRAIN_THRESHOLD
    if not brain.any():
        raise DataError(
            f"nifti: {row.session}: {named}: no voxel is brain (GM + WM + CSF >= "
            f"{BRAIN_THRESHOLD:g} nowhere); are these the session's tissue maps?"
        )
    several = len(positions) > 1
    subjects = []
    for position, index in zip(positions, axial_positions(brain, positions), strict=True):
        maps = {t: slice_map.to_grid(stacks[t][index : index + 1])[0] for t in TISSUES}
        brain_px = int(((maps["gm"] + maps["wm"] + maps["csf"]) >= BRAIN_THRESHOLD).sum())
        if brain_px < min_brain_px:
            raise DataError(
                f"nifti: {row.session}: {named}: the slice at position {position:g} (axial slice "
                f"{index} of {brain.shape[0]}) holds {brain_px} brain pixels at 1 mm, fewer than "
                f"data.nifti.min_brain_px = {min_brain_px}; it lies outside the brain, choose "
                "slice_positions nearer 0.5"
            )
        subjects.append(
            Subject(
                subject=row.subject,
                session=session_name(row.session, position, several),
                t1=None,
                wm=maps["wm"],
                gm=maps["gm"],
                csf=maps["csf"],
            )
        )
    return subjects


def load_nifti_subjects(
    manifest: str | Path,
    slice_positions: Sequence[float],
    labels: Mapping[str, Sequence[int]],
    min_brain_px: int,
    on_bad_session: str = "error",
) -> Iterator[Subject]:
    """Yield the slices of every session of ``manifest`` in (subject, session, position) order.

    ``on_bad_session="error"`` stops at the first bad session with a :class:`DataError` naming the
    file and the problem; ``"skip"`` leaves such sessions out and logs how many. Problems of the
    manifest itself (:func:`read_manifest`) always stop.
    """
    if on_bad_session not in ("error", "skip"):
        raise ValueError(f"on_bad_session must be 'error' or 'skip', not {on_bad_session!r}")
    skipped = []
    for row in read_manifest(manifest):
        try:
            subjects = read_session(row, slice_positions, labels, min_brain_px)
        except DataError as error:
            if on_bad_session == "error":
                raise
            skipped.append(row.session)
            logger.warning("skipping session: %s", error)
            continue
        yield from subjects
    if skipped:
        logger.warning("nifti: skipped %d bad session(s): %s", len(skipped), ", ".join(skipped))
