"""The networks really learn: a short run of the real loop on miniature lesion images.

Every other training test checks plumbing (files, resume, hashes). These two check the science end
to end on data where the answer is known: L1 pretraining must bring the generator's validation L1
clearly below the LQ input's own L1, and a short adversarial fine-tune must teach the discriminator
to score real images above enhanced ones. A flipped loss sign or HQ/LQ pairs shuffled against each
other make them fail (see the module's note in the README's test section).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from tiny_training import make_tiny_config

from advmri.data.kspace import degrade
from advmri.grid import Cell
from advmri.models import load_generator
from advmri.train import effective_finetune_settings, effective_pretrain_settings, train_network
from advmri.train.data import TrainingData

SIZE = 48  # divisible by 2**depth; 1/4 of k-space keeps 12 x 12, upsampled x4 by nearest neighbour


def lesion_phantoms(n: int, seed: int) -> np.ndarray:
    """``n`` miniature brain slices in [0, 1]: a textured ellipse with one bright disc lesion."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    images = np.zeros((n, SIZE, SIZE))
    for i in range(n):
        cy, cx = rng.uniform(20, 28, 2)
        ay, ax = rng.uniform(15, 21, 2)
        brain = ((rows - cy) / ay) ** 2 + ((cols - cx) / ax) ** 2 <= 1.0
        tissue = 0.45 + 0.1 * np.sin(rows / rng.uniform(2, 4) + rng.uniform(0, 6)) * np.cos(
            cols / rng.uniform(2, 4)
        )
        image = np.where(brain, tissue, 0.0)
        ly, lx = cy + rng.uniform(-7, 7), cx + rng.uniform(-7, 7)
        radius = rng.uniform(3, 6)
        image[(rows - ly) ** 2 + (cols - lx) ** 2 <= radius**2] = rng.uniform(0.8, 1.0)
        images[i] = image
    return images


def make_learning_data(n_train: int = 48, n_val: int = 12, shuffle_pairs: bool = False):
    """HQ phantoms and their LQ (the project's k-space degradation); optionally mispaired."""
    hq = lesion_phantoms(n_train + n_val, seed=3)
    rng = np.random.default_rng(4)
    lq = np.stack([degrade(image, 0.25, 0.02, rng) for image in hq])
    if shuffle_pairs:  # each training target paired with another image's input
        order = np.roll(np.arange(n_train), 1)
        hq[:n_train] = hq[order]
    hq_t = torch.from_numpy(hq.astype(np.float32)).unsqueeze(1)
    lq_t = torch.from_numpy(lq.astype(np.float32)).unsqueeze(1)
    return TrainingData(
        train_lq=lq_t[:n_train].clone(),
        train_hq=hq_t[:n_train].clone(),
        val_lq=lq_t[n_train:].clone(),
        val_hq=hq_t[n_train:].clone(),
    )


def learning_config() -> dict:
    config = make_tiny_config()
    config["model"]["generator"] = {"depth": 2, "width": 8}
    config["model"]["discriminator"] = {"width": 8, "skip_connection": True}
    config["pretrain"].update(epochs=25, lr=0.002, batch_size=8, checkpoint_every=25)
    config["finetune"].update(epochs=20, batch_size=4, checkpoint_every=20)
    return config


def pretrain(config: dict, data: TrainingData, folder) -> tuple:
    out = folder / "pretrain"
    train_network(
        effective_pretrain_settings(config),
        data,
        generator_path=out / "generator.pt",
        log_path=out / "train_log.csv",
        checkpoint_dir=folder / "checkpoints" / "pretrain",
        checkpoint_every=config["pretrain"]["checkpoint_every"],
        threads=2,
    )
    return out / "generator.pt", pd.read_csv(out / "train_log.csv")


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("learning")
    data = make_learning_data()
    path, log = pretrain(learning_config(), data, folder)
    return folder, data, path, log


def test_pretraining_brings_validation_l1_well_below_the_lq_inputs(pretrained):
    _, data, path, log = pretrained
    lq_l1 = float((data.val_lq - data.val_hq).abs().mean())
    final = float(log["val_l1"].iloc[-1])
    # the saved network (eval mode, recalibrated batch norm) is what val_l1 measures
    generator, metadata = load_generator(path)
    with torch.no_grad():
        saved_l1 = float((generator.eval()(data.val_lq) - data.val_hq).abs().mean())
    assert saved_l1 == pytest.approx(final, rel=1e-4)
    assert metadata["val_l1"] == pytest.approx(final)
    assert final < 0.6 * lq_l1, f"val L1 {final:.4f} vs LQ input's {lq_l1:.4f}"
    assert log["l1"].iloc[-1] < 0.5 * log["l1"].iloc[0]


def test_adversarial_fine_tune_teaches_the_discriminator_to_tell_real_from_enhanced(pretrained):
    folder, data, path, _ = pretrained
    config = learning_config()
    # no VGG: the adversarial game alone beside L1, with a light W_adv so that G does not erase
    # every difference D finds at once (G moves faster than a spectral-normalised D)
    cell = Cell(0.0, 0.01, 0.001)
    out = folder / cell.name
    train_network(
        effective_finetune_settings(config, cell),
        data,
        generator_path=out / "generator.pt",
        log_path=out / "train_log.csv",
        checkpoint_dir=folder / "checkpoints" / cell.name,
        initial_generator=path,
        checkpoint_every=config["finetune"]["checkpoint_every"],
        threads=1,
    )
    log = pd.read_csv(out / "train_log.csv")
    # D's mean logit on real HQ minus on enhanced images, per epoch: 0 for a D that cannot tell
    # them apart, negative for a D trained the wrong way round (a flipped D loss: -7 to -11).
    # It is a game: D finds a difference, G erases it, D finds another, so the separation rises
    # and falls (on this project's CI CPUs it peaked at 0.19 in epoch 11, fell to 0.002 and rose
    # again); a claim about the last epochs alone depends on where the game stands then.
    separation = log["d_real"] - log["d_fake"]
    trace = separation.round(4).tolist()
    assert (separation > -0.01).all(), trace
    assert (separation.iloc[-5:] > 0).all(), trace
    assert separation.max() > 0.1, trace
    assert log["discriminator"].iloc[-5:].mean() < log["discriminator"].iloc[0]
    # the generator stays an enhancer while it plays: still well below the LQ input's L1
    lq_l1 = float((data.val_lq - data.val_hq).abs().mean())
    assert log["val_l1"].iloc[-1] < 0.8 * lq_l1
