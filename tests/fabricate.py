"""Small data the tests and benchmarks make themselves: an OASIS-1 tree and tiny study configs."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from advmri.data.oasis1 import OASIS_GRID
from advmri.metrics.sigmoid import sigmoid

#: The repository root (tests import it from here: several conftest.py files make `conftest` ambiguous).
REPO = Path(__file__).resolve().parents[1]

T1_NAME = "{session}_mpr_n4_anon_111_t88_masked_gfc"


def metrics_settings(**overrides) -> dict:
    """config.yaml's ``metrics`` section (the paper's settings) with ``overrides`` for a small test."""
    import yaml

    settings = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))["metrics"]
    return {**settings, **overrides}


def synthetic_labels(shift: int = 0) -> np.ndarray:
    """A brain-like FSL FAST label volume on the OASIS grid (RAS order): nested ellipsoids of
    WM (3) inside GM (2) inside CSF (1), shifted by ``shift`` voxels along x to vary sessions."""
    x, y, z = np.meshgrid(*(np.arange(n) - n / 2 for n in OASIS_GRID), indexing="ij")
    radius = np.sqrt(((x - shift) / 70) ** 2 + (y / 88) ** 2 + (z / 70) ** 2)
    labels = np.zeros(OASIS_GRID, dtype=np.uint8)
    labels[radius < 1.0] = 1
    labels[radius < 0.93] = 2
    labels[radius < 0.75] = 3
    # a ventricle-like CSF hole so the maps are not trivially nested
    labels[(np.abs(x - shift) < 6) & (np.abs(y) < 25) & (np.abs(z) < 20)] = 1
    return labels


def write_analyze(path: Path, data_ras: np.ndarray) -> None:
    """Write ``data_ras`` (x, y, z) as an Analyze 7.5 pair with a trailing unit time axis.

    Analyze stores no orientation; nibabel reads it as radiological (LAS), so the x axis is stored
    reversed, which is how the reader gets RAS back.
    """
    data = np.ascontiguousarray(data_ras[::-1])[..., None]
    image = nib.AnalyzeImage(data, np.diag([-1.0, 1.0, 1.0, 1.0]))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.to_filename(str(path.with_suffix(".hdr")))


def write_oasis_session(root: Path, session: str, shift: int = 0) -> Path:
    """One session folder in the OASIS-1 release layout; returns the session folder."""
    labels = synthetic_labels(shift)
    t1 = np.select([labels == 3, labels == 2, labels == 1], [900, 600, 200], 0).astype(np.int16)
    folder = root / session
    name = T1_NAME.format(session=session)
    write_analyze(folder / "PROCESSED" / "MPRAGE" / "T88_111" / f"{name}.img", t1)
    write_analyze(folder / "FSL_SEG" / f"{name}_fseg.img", labels)
    return folder


def write_oasis_tree(root: Path, sessions: list[str]) -> Path:
    for index, session in enumerate(sessions):
        write_oasis_session(root, session, shift=(index % 5) - 2)
    return root


#: Overrides (merged over config.yaml) for a study small enough for a test: 5 subjects x 2 samples.
TINY_STUDY = {
    "data": {"mni152": {"n_subjects": 5, "first_slice": 60, "slice_spacing": 9}},
    "synthesis": {"samples_per_subject": 2, "preview_samples": 2},
    "split": {"test_fraction": 0.2, "val_fraction": 0.25},
}

#: Overrides for tiny networks on the CPU: a depth-2 UNet, one random VGG block, a 2-cell grid.
TINY_TRAINING = {
    "model": {
        "generator": {"depth": 2, "width": 4},
        "discriminator": {"width": 4, "skip_connection": True},
    },
    "perceptual": {"weights": "random", "layers": ["conv1_2"], "layer_weights": [1.0]},
    "pretrain": {"epochs": 1, "batch_size": 4},
    "finetune": {"epochs": 1, "batch_size": 4, "checkpoint_every": 1},
    "grid": {"w_per": [1.0], "w_adv": [0, 0.1], "lr": [0.001]},
    "compute": {"device": "cpu"},
    "stats": {"figures": {"w_per": 1.0, "lr": 0.001}},  # the grid's only levels
    # a 1-epoch, 4-feature network blurs every edge wider than the robust profile (NaN by design);
    # the paper's short fit still gives the statistics a Sharpness to model
    "metrics": {"sharpness": {"method": "paper", "min_profiles": 1}},
}

#: The data stage's outputs (rules synthesize and split), as the contract names them.
DATA_OUTPUTS = [
    "results/dataset/hq.npy",
    "results/dataset/lq.npy",
    "results/dataset/lesion.npy",
    "results/dataset/samples.csv",
    "results/dataset/preview.png",
    "results/split/split.csv",
]

#: Sample positions of an edge profile: 21 samples over 5 pixels, centred on the edge.
PROFILE_X = np.linspace(-2.5, 2.5, 21)


def well_posed_profiles(n: int, seed: int = 0) -> np.ndarray:
    """(n, 21) noisy sigmoid edges on :data:`PROFILE_X`: edge within 1 pixel of the centre,
    contrast 0.2-0.8 either way, slope 0.8-3 per pixel, Gaussian noise 0.005."""
    rng = np.random.default_rng(seed)
    a0 = rng.uniform(-1.0, 1.0, n)
    a1 = rng.uniform(0.0, 0.5, n)
    a2 = rng.uniform(0.2, 0.8, n) * rng.choice([-1.0, 1.0], n)
    s = rng.uniform(0.8, 3.0, n)
    x = PROFILE_X
    clean = sigmoid(x[None, :], a0[:, None], a1[:, None], a2[:, None], s[:, None])
    return clean + rng.normal(0.0, 0.005, clean.shape)


def logistic_lesion(
    s: float,
    radii: tuple[float, float] = (12.0, 12.0),
    *,
    angle_deg: float = 0.0,
    centre: tuple[float, float] | None = None,
    shape: tuple[int, int] = (80, 80),
    background: float = 0.3,
    contrast: float = 0.4,
) -> tuple[np.ndarray, np.ndarray]:
    """A hyperintense ellipse whose edge is a logistic of growth rate ``s`` (1/pixel) across it.

    The image is ``background + contrast * expit(s * d)`` with ``d`` the signed distance (pixels,
    positive inside) of each pixel centre to the ellipse of semi-axes ``radii`` (rows, columns
    before rotation by ``angle_deg``), so every profile along the edge's normal is the logistic of
    growth rate ``s``. Returns the image and the mask ``d > 0``.
    """
    from scipy.spatial import cKDTree
    from scipy.special import expit

    if centre is None:
        centre = (shape[0] / 2 - 0.3, shape[1] / 2 + 0.4)
    a, b = radii
    turn = np.deg2rad(angle_deg)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    dr, dc = rows - centre[0], cols - centre[1]
    u = dr * np.cos(turn) + dc * np.sin(turn)  # along the first semi-axis
    v = -dr * np.sin(turn) + dc * np.cos(turn)
    if a == b:
        d = a - np.hypot(u, v)
    else:
        phi = np.linspace(0.0, 2 * np.pi, 20000, endpoint=False)
        tree = cKDTree(np.stack([a * np.cos(phi), b * np.sin(phi)], axis=1))
        dist, _ = tree.query(np.stack([u.ravel(), v.ravel()], axis=1))
        inside = (u / a) ** 2 + (v / b) ** 2 < 1.0
        d = np.where(inside.ravel(), dist, -dist).reshape(shape)
    return background + contrast * expit(s * d), d > 0


#: FSL FAST's file of each tissue: ``<base>_pve_0`` CSF, ``_pve_1`` GM, ``_pve_2`` WM.
FAST_SUFFIXES = {"csf": "_pve_0", "gm": "_pve_1", "wm": "_pve_2"}


def mni152_tissue_volumes() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The embedded MNI152 2009 template's GM, WM and CSF (brain mask - GM - WM) maps, 1 mm, RAS."""
    from nilearn import datasets

    gm = datasets.load_mni152_gm_template(resolution=1)
    wm = datasets.load_mni152_wm_template(resolution=1)
    mask = datasets.load_mni152_brain_mask(resolution=1)
    maps = {
        "gm": np.clip(gm.get_fdata(dtype=np.float32), 0, 1),
        "wm": np.clip(wm.get_fdata(dtype=np.float32), 0, 1),
    }
    maps["csf"] = np.clip(mask.get_fdata(dtype=np.float32) - maps["gm"] - maps["wm"], 0, 1)
    return maps, np.asarray(gm.affine, dtype=np.float64)


def write_fast_cohort(root: Path, sessions: dict[str, int], voxel_mm: float = 2.0) -> Path:
    """A "cohort" of FSL FAST outputs made from the MNI152 maps; returns its manifest (TSV).

    Each subject is the template scaled by its own factor (0.92 to 1.08) and each of its
    ``sessions[subject]`` sessions shifted a few mm, resampled (linearly) to ``voxel_mm`` voxels
    stored in LAS order (radiological, as many scanners write), and written as
    ``<subject>/<session>/anat/<subject>_<session>_T1w_brain_pve_{0,1,2}.nii.gz``.
    """
    from scipy import ndimage

    maps, template_affine = mni152_tissue_volumes()
    # LAS grid covering the template's 197 x 233 x 189 mm field of view
    shape = tuple(int(np.ceil(n / voxel_mm)) for n in maps["gm"].shape)
    corner = template_affine[:3, 3]
    stored = np.diag([-voxel_mm, voxel_mm, voxel_mm, 1.0])
    stored[:3, 3] = [corner[0] + (shape[0] - 1) * voxel_mm, corner[1], corner[2]]
    to_template = np.linalg.inv(template_affine)
    lines = ["subject\tsession\tgm\twm\tcsf"]
    for index, (subject, count) in enumerate(sorted(sessions.items())):
        scale = 1.0 + 0.04 * ((index % 5) - 2)
        for visit in range(1, count + 1):
            shift = np.array([1.5, -1.0, 2.0]) * (visit - 1)
            # world point p of the subject shows the template at p / scale - shift
            warp = np.eye(4)
            warp[:3, :3] /= scale
            warp[:3, 3] = -shift
            voxel_map = to_template @ warp @ stored
            session = f"{subject}_ses-{visit}"
            folder = root / subject / f"ses-{visit}" / "anat"
            folder.mkdir(parents=True, exist_ok=True)
            names = {}
            for tissue, suffix in FAST_SUFFIXES.items():
                data = ndimage.affine_transform(
                    maps[tissue], voxel_map[:3, :3], voxel_map[:3, 3], shape, order=1
                )
                name = f"{session}_T1w_brain{suffix}.nii.gz"
                image = nib.Nifti1Image(np.clip(data, 0, 1).astype(np.float32), stored)
                image.to_filename(folder / name)
                names[tissue] = (folder / name).relative_to(root).as_posix()
            lines.append(f"{subject}\t{session}\t{names['gm']}\t{names['wm']}\t{names['csf']}")
    manifest = root / "manifest.tsv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest
