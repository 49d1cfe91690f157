"""Synthetic HQ/LQ lesion samples from anatomy (study §2, after Sharma et al. 2022).

Each subject gives ``samples_per_subject`` samples. A sample is made by (1) rotating and elastically
deforming the subject's tissue maps, (2) mixing the WM, GM and CSF maps with random weights into a
T1-like HQ image, (3) inserting one hyperintense lesion of random size, shape and position into WM or
GM, and (4) degrading the HQ image into the LQ network input (:mod:`advmri.data.kspace`). The lesion
is inserted after the deformation so its mask is exact rather than resampled.

Every random draw of a sample comes from one generator seeded by (global seed, session, augmentation
index), so any sample can be regenerated alone and the dataset is identical byte for byte whatever
the number of workers.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage
from skimage.measure import label

from advmri.data.anatomy import IMAGE_SHAPE, Subject
from advmri.data.kspace import degrade, normalize_unit
from advmri.errors import DataError

SAMPLE_COLUMNS = [
    "sample",
    "subject",
    "session",
    "augmentation",
    "bbox_r0",
    "bbox_c0",
    "bbox_r1",
    "bbox_c1",
    "lesion_tissue",
    "lesion_area_px",
]
#: Attempts at placing a lesion of at least ``min_area_px`` before the sample is declared impossible.
MAX_LESION_ATTEMPTS = 50


@dataclass
class Sample:
    """One synthesised sample: HQ truth, LQ input, lesion mask and its table row."""

    hq: np.ndarray
    lq: np.ndarray
    lesion: np.ndarray
    row: dict


@dataclass
class Dataset:
    """A whole synthesised dataset in the ``results/dataset/`` layout."""

    hq: np.ndarray
    lq: np.ndarray
    lesion: np.ndarray | None  # None when read without lesion.npy (read_dataset)
    samples: pd.DataFrame


def sample_rng(seed: int, session: str, augmentation: int) -> np.random.Generator:
    """The generator of one sample; the session name enters through a stable hash (not ``hash()``)."""
    digest = int.from_bytes(hashlib.sha256(session.encode()).digest()[:8], "little")
    return np.random.default_rng(np.random.SeedSequence([seed, digest, augmentation]))


def _deformation_coordinates(
    shape: tuple[int, int],
    angle_deg: float,
    alpha_px: float,
    sigma_px: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Sampling coordinates of a rotation about the centre followed by an elastic displacement."""
    rows, cols = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    center_r, center_c = (shape[0] - 1) / 2, (shape[1] - 1) / 2
    theta = np.deg2rad(angle_deg)
    dr, dc = rows - center_r, cols - center_c
    src_r = center_r + np.cos(theta) * dr - np.sin(theta) * dc
    src_c = center_c + np.sin(theta) * dr + np.cos(theta) * dc
    for target in (src_r, src_c):
        field = ndimage.gaussian_filter(rng.uniform(-1, 1, shape), sigma_px, mode="constant")
        peak = np.abs(field).max()
        target += alpha_px * field / peak if peak > 0 else 0.0
    return np.stack([src_r, src_c])


def _lesion_shape(
    shape: tuple[int, int], center: tuple[int, int], settings: dict, rng: np.random.Generator
) -> np.ndarray:
    """A random ellipse with a few low-order boundary harmonics, as a boolean mask."""
    radius = rng.uniform(*settings["radius_px"])
    aspect = rng.uniform(*settings["aspect"])
    orientation = rng.uniform(0, np.pi)
    harmonics = [(k, rng.uniform(-1, 1) / k, rng.uniform(0, 2 * np.pi)) for k in (2, 3, 4)]
    rows, cols = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    dr, dc = rows - center[0], cols - center[1]
    u = dc * np.cos(orientation) + dr * np.sin(orientation)
    v = (-dc * np.sin(orientation) + dr * np.cos(orientation)) / aspect
    angle = np.arctan2(v, u)
    boundary = radius * (
        1 + settings["irregularity"] * sum(a * np.cos(k * angle + p) for k, a, p in harmonics)
    )
    return np.hypot(u, v) <= boundary


def _insert_lesion(
    maps: dict[str, np.ndarray], settings: dict, session: str, rng: np.random.Generator
) -> tuple[np.ndarray, str]:
    """Draw the lesion's tissue, centre and shape; return its mask (one connected piece) and tissue."""
    tissues = list(settings["tissue_probabilities"])
    weights = np.array([settings["tissue_probabilities"][t] for t in tissues], dtype=float)
    brain = (maps["wm"] + maps["gm"] + maps["csf"]) > 0.5
    # Keep the lesion and the sharpness profiles around it (study §6) away from the border.
    margin = int(np.ceil(settings["radius_px"][1] * (1 + settings["irregularity"]))) + 4
    inner = np.zeros(brain.shape, dtype=bool)
    inner[margin:-margin, margin:-margin] = True
    for _ in range(MAX_LESION_ATTEMPTS):
        tissue = tissues[rng.choice(len(tissues), p=weights / weights.sum())]
        candidates = np.argwhere((maps[tissue] >= settings["min_tissue_fraction"]) & inner)
        if len(candidates) == 0:
            continue
        center = tuple(candidates[rng.integers(len(candidates))])
        mask = _lesion_shape(brain.shape, center, settings, rng) & brain
        pieces = label(mask, connectivity=1)
        mask = pieces == pieces[center] if pieces[center] else np.zeros_like(mask)
        if mask.sum() >= settings["min_area_px"]:
            return mask, tissue
    raise DataError(
        f"synthesis: {session}: no lesion of at least {settings['min_area_px']} px fits after "
        f"{MAX_LESION_ATTEMPTS} attempts (too little WM/GM in this slice; choose another slice or "
        "lower synthesis.lesion.min_area_px)"
    )


def synthesize_sample(subject: Subject, augmentation: int, settings: dict, seed: int) -> Sample:
    """Sample ``augmentation`` of ``subject``; ``settings`` is the config's ``synthesis`` section."""
    rng = sample_rng(seed, subject.session, augmentation)
    coords = _deformation_coordinates(
        IMAGE_SHAPE,
        rng.uniform(-settings["rotation_deg"], settings["rotation_deg"]),
        settings["elastic"]["alpha_px"],
        settings["elastic"]["sigma_px"],
        rng,
    )
    maps = {
        name: ndimage.map_coordinates(getattr(subject, name), coords, order=1, mode="constant")
        for name in ("wm", "gm", "csf")
    }
    weights = {name: rng.uniform(*settings["tissue_weights"][name]) for name in maps}
    hq = sum(weights[name] * maps[name] for name in maps)

    lesion_settings = settings["lesion"]
    lesion, tissue = _insert_lesion(maps, lesion_settings, subject.session, rng)
    level = weights["wm"] * rng.uniform(*lesion_settings["intensity"])
    edge = ndimage.gaussian_filter(lesion.astype(np.float64), lesion_settings["edge_blur_px"])
    hq = normalize_unit(hq * (1 - edge) + level * edge).astype(np.float32)

    lq = degrade(hq, settings["kspace_fraction"], settings["noise_std"], rng)
    rows, cols = np.nonzero(lesion)
    row = {
        "subject": subject.subject,
        "session": subject.session,
        "augmentation": augmentation,
        "bbox_r0": int(rows.min()),
        "bbox_c0": int(cols.min()),
        "bbox_r1": int(rows.max()) + 1,
        "bbox_c1": int(cols.max()) + 1,
        "lesion_tissue": tissue,
        "lesion_area_px": int(lesion.sum()),
    }
    return Sample(hq=hq, lq=lq, lesion=lesion, row=row)


def _synthesize_subject(args: tuple[Subject, dict, int]) -> list[Sample]:
    subject, settings, seed = args
    return [
        synthesize_sample(subject, augmentation, settings, seed)
        for augmentation in range(settings["samples_per_subject"])
    ]


def synthesize_dataset(
    subjects: list[Subject], settings: dict, seed: int, workers: int = 1
) -> Dataset:
    """All samples of ``subjects`` in subject order, augmentations 0..n-1 within each subject."""
    sessions = [s.session for s in subjects]
    if len(set(sessions)) != len(sessions):
        raise DataError("synthesis: two subjects share a session name; sessions must be unique")
    if not subjects:
        raise DataError("synthesis: the anatomy source yielded no subjects")
    per_subject = settings["samples_per_subject"]
    n = len(subjects) * per_subject
    hq = np.empty((n, *IMAGE_SHAPE), dtype=np.float32)
    lq = np.empty((n, *IMAGE_SHAPE), dtype=np.float32)
    lesion = np.empty((n, *IMAGE_SHAPE), dtype=bool)
    rows = []
    jobs = [(subject, settings, seed) for subject in subjects]
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = pool.map(_synthesize_subject, jobs, chunksize=1)
            rows = _collect(results, hq, lq, lesion)
    else:
        rows = _collect(map(_synthesize_subject, jobs), hq, lq, lesion)
    samples = pd.DataFrame(rows)
    samples.insert(0, "sample", np.arange(n))
    return Dataset(hq=hq, lq=lq, lesion=lesion, samples=samples[SAMPLE_COLUMNS])


def _collect(results, hq: np.ndarray, lq: np.ndarray, lesion: np.ndarray) -> list[dict]:
    rows = []
    for subject_samples in results:
        for sample in subject_samples:
            index = len(rows)
            hq[index], lq[index], lesion[index] = sample.hq, sample.lq, sample.lesion
            rows.append(sample.row)
    return rows
