"""One training loop for both stages: L1 pretraining of G, and fine-tuning of one grid cell.

Read top to bottom: set up (device, models, optimisers), resume from the checkpoint if it was written
under the same settings, then per epoch: shuffle, step, validate, log, checkpoint. The checkpoint
(G, D, both optimisers, RNG state, epoch, log rows, best weights) lives outside the rule's outputs,
so a killed job resumes where it stopped; on CPU the resumed run is bit-identical to an
uninterrupted one because every random draw is either seeded per epoch or restored.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

import advmri
from advmri.errors import ConfigError, DataError, TrainingError
from advmri.logs import logger
from advmri.models import PerceptualLoss, UNet, UNetDiscriminatorSN, load_generator, save_generator
from advmri.models.inference import resolve_device
from advmri.models.io import clean_state_dict
from advmri.models.perceptual import RANDOM_FLAG
from advmri.train.data import TrainingData
from advmri.train.objective import GAN_LOSSES, discriminator_loss, generator_loss
from advmri.train.settings import settings_hash

#: Columns of ``train_log.csv``; terms a stage does not compute are left empty.
LOG_COLUMNS = [
    "epoch",
    "lr",
    "l1",
    "perceptual",
    "adversarial",
    "total",
    "discriminator",
    "d_real",
    "d_fake",
    "val_l1",
    "seconds",
    "perceptual_weights",
]
CHECKPOINT_FORMAT = "advmri-checkpoint"
_LOSS_TERMS = ("l1", "perceptual", "adversarial", "total", "discriminator")


def learning_rate(base: float, schedule: str, epoch: int, epochs: int) -> float:
    """LR of epoch ``epoch`` (0-based): ``constant``, or ``cosine`` from ``base`` towards 0."""
    if schedule == "constant":
        return base
    if schedule == "cosine":
        return base * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
    raise ConfigError(f"finetune.schedule = {schedule!r}; use constant or cosine")


def training_step(
    generator: nn.Module,
    opt_g: torch.optim.Optimizer,
    lq: torch.Tensor,
    hq: torch.Tensor,
    *,
    w_per: float = 0.0,
    w_adv: float = 0.0,
    perceptual: nn.Module | None = None,
    discriminator: nn.Module | None = None,
    opt_d: torch.optim.Optimizer | None = None,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    gan_loss: str = "pixel",
) -> dict[str, torch.Tensor]:
    """One G step, then (when W_adv > 0) one D step on real and detached fake. Returns the terms.

    ``gan_loss`` (``pixel`` | ``image``, ``objective.gan_loss``) reduces D's logit maps in both
    adversarial losses (:mod:`advmri.train.objective`).
    """
    with autocast():
        fake = generator(lq)
        if discriminator is not None:
            # D is a fixed critic during G's step: no gradients into D's weights
            discriminator.requires_grad_(False)
        total, terms = generator_loss(
            fake,
            hq,
            w_per=w_per,
            w_adv=w_adv,
            perceptual=perceptual,
            discriminator=discriminator,
            gan_loss=gan_loss,
        )
    opt_g.zero_grad(set_to_none=True)
    total.backward()
    opt_g.step()
    if discriminator is not None and opt_d is not None:
        discriminator.requires_grad_(True)
        with autocast():
            loss_d, d_terms = discriminator_loss(discriminator, hq, fake, gan_loss)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        terms.update(d_terms)
    return terms


@torch.no_grad()
def validation_l1(
    generator: nn.Module,
    lq: torch.Tensor,
    hq: torch.Tensor,
    batch_size: int,
    prepare: Callable[[torch.Tensor], torch.Tensor],
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> float:
    """Mean |G(LQ) - HQ| over every pixel of the validation images (G in eval mode); NaN if none."""
    if lq.shape[0] == 0:
        return float("nan")
    was_training = generator.training
    generator.eval()
    total = torch.zeros((), dtype=torch.float64)
    for start in range(0, lq.shape[0], batch_size):
        with autocast():
            out = generator(prepare(lq[start : start + batch_size]))
        diff = (out.float() - prepare(hq[start : start + batch_size]).float()).abs().sum()
        total += diff.double().cpu()
    generator.train(was_training)
    return float(total / hq.numel())


@torch.no_grad()
def recalibrate_batch_norm(
    generator: nn.Module,
    lq: torch.Tensor,
    batch_size: int,
    prepare: Callable[[torch.Tensor], torch.Tensor],
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> int:
    """Re-estimate every batch-norm layer's running mean and variance with the final weights.

    During training a BatchNorm layer's running statistics are an exponential average (momentum
    0.1) of batches seen under *earlier* weights; eval mode uses them. After few steps, or after
    large steps (fine-tuning at LR 0.01), they lag the weights and the saved network's output
    drifts in intensity although its training loss is low. Here the statistics are reset and
    recomputed as the plain average over ``lq`` (the training inputs, in order) under the final
    weights ("precise BN"). No weight changes and nothing random happens, so a resumed run stays
    bit-identical on CPU.

    Returns
    -------
    int
        Number of batch-norm layers recalibrated (0 leaves the network untouched).
    """
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or lq.shape[0] == 0:
        return 0
    was_training = generator.training
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # None: cumulative average over the batches that follow
    generator.train()
    for start in range(0, lq.shape[0], batch_size):
        with autocast():
            generator(prepare(lq[start : start + batch_size]))
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    generator.train(was_training)
    return len(norms)


def fingerprint(*tensors: torch.Tensor) -> str:
    """SHA-256 (hex, 16 characters) of the tensors' shapes and bytes (order matters)."""
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _save_atomic(payload: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)  # a kill during the write leaves the previous checkpoint intact


def _write_log(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=LOG_COLUMNS).to_csv(path, index=False)


def train_network(
    settings: dict,
    data: TrainingData,
    *,
    generator_path: str | Path,
    log_path: str | Path,
    checkpoint_dir: str | Path,
    initial_generator: str | Path | None = None,
    checkpoint_every: int = 5,
    threads: int | None = None,
    speed: dict | None = None,
    synthesis: dict | None = None,
    on_epoch_end: Callable[[int, dict], None] | None = None,
) -> dict:
    """Train one network as ``settings`` say and write its generator file and train_log.csv.

    Parameters
    ----------
    settings : dict
        :func:`~advmri.train.settings.effective_pretrain_settings` or
        :func:`~advmri.train.settings.effective_finetune_settings` (``stage`` picks the stage).
    data : TrainingData
        Train and val tensors.
    generator_path, log_path : output files (``generator.pt``, ``train_log.csv``).
    checkpoint_dir : folder of ``checkpoint.pt`` (``results/checkpoints/<pretrain or cell>``).
    initial_generator : the pretrained ``generator.pt`` (fine-tuning only).
    checkpoint_every : epochs between checkpoints; one is also written after the last epoch.
    threads : CPU threads for torch (the rule's ``threads``); None leaves torch's default.
    speed : speed-only ``compute`` switches (:func:`~advmri.train.settings.speed_options`:
        ``data_on_device``, ``fused_adam``), outside ``settings`` so they rerun nothing.
    synthesis : the config's ``synthesis`` section; its ``noise_std`` and ``kspace_fraction`` are
        recorded in the generator file, so ``advmri enhance --degrade`` degrades as the data was.
    on_epoch_end : called as ``on_epoch_end(epoch, row)`` after each epoch (1-based) and its
        checkpoint; an exception raised there stops the run like a kill would.

    Returns
    -------
    dict
        The metadata written into the generator file.

    Raises
    ------
    TrainingError
        A loss term became NaN or infinite (the last checkpoint stays); an unreadable checkpoint.
    """
    stage = settings["stage"]
    finetune = stage == "finetune"
    section = settings[stage]
    name = settings["cell"]["name"] if finetune else "pretrain"
    label = f"finetune {name}" if finetune else "pretrain"
    epochs = int(section["epochs"])
    batch_size = int(section["batch_size"])
    base_lr = float(settings["cell"]["lr"] if finetune else section["lr"])
    schedule = section.get("schedule", "constant")
    keep = section.get("keep", "last")
    recalibrate = bool(section["recalibrate_bn"])
    w_per = float(settings["cell"]["w_per"]) if finetune else 0.0
    w_adv = float(settings["cell"]["w_adv"]) if finetune else 0.0
    # only VGG+GAN cells carry it (a W_adv = 0 cell does not depend on it); pixel is the default
    gan_loss = settings.get("objective", {}).get("gan_loss", "pixel")
    if gan_loss not in GAN_LOSSES:
        raise ConfigError(f"objective.gan_loss = {gan_loss!r}; use one of {', '.join(GAN_LOSSES)}")
    seed = int(settings["seed"])
    digest = settings_hash(settings)
    # A checkpoint continues only the same run: same settings, same data and, for a fine-tune,
    # the same pretrained weights (new data or a retrained G reruns the job with equal settings).
    data_print = fingerprint(data.train_lq, data.train_hq, data.val_lq, data.val_hq)
    checkpoint_path = Path(checkpoint_dir) / "checkpoint.pt"
    if keep not in ("last", "best_val"):
        raise ConfigError(f"{stage}.keep = {keep!r}; use last or best_val")
    if keep == "best_val" and data.val_lq.shape[0] == 0:
        raise DataError(f"{label}: keep = best_val needs validation images, the val split is empty")
    if checkpoint_every < 1:
        raise ConfigError(f"{stage}.checkpoint_every = {checkpoint_every}; must be >= 1")

    # --- device and precision -------------------------------------------------------------------
    compute = {**settings["compute"], **(speed or {})}
    device = resolve_device(compute["device"])
    if threads:
        torch.set_num_threads(int(threads))
    cuda = device.type == "cuda"
    bf16 = cuda and bool(compute.get("bf16", False))
    memory_format = (
        torch.channels_last
        if cuda and compute.get("channels_last", False)
        else torch.contiguous_format
    )
    if cuda:
        torch.backends.cudnn.benchmark = True

    def autocast() -> contextlib.AbstractContextManager:
        if bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def prepare(batch: torch.Tensor) -> torch.Tensor:
        return batch.to(device, non_blocking=True).contiguous(memory_format=memory_format)

    # The training split as one tensor on the device: a step indexes it there, with no host copy
    # (a 1,660-image split at 208 x 176 is 0.5 GB in fp32, small next to an H100's memory).
    on_device = cuda and bool(compute.get("data_on_device", False))
    if on_device:
        train_lq, train_hq = prepare(data.train_lq), prepare(data.train_hq)
    else:
        train_lq, train_hq = data.train_lq, data.train_hq

    # --- models and optimisers ------------------------------------------------------------------
    torch.manual_seed(seed)
    generator = UNet(**settings["model"]["generator"])
    generator.check_size(*data.image_size)
    if initial_generator is not None:
        pretrained, _ = load_generator(initial_generator)
        if pretrained.architecture != generator.architecture:
            raise ConfigError(
                f"{label}: pretrained generator {initial_generator} is {pretrained.architecture}, "
                f"model.generator asks for {generator.architecture}; rerun the pretrain rule"
            )
        generator.load_state_dict(pretrained.state_dict())
        data_print += fingerprint(*pretrained.state_dict().values())
    run_key = settings_hash({"settings": digest, "inputs": data_print})
    discriminator = None
    if w_adv > 0:  # W_adv = 0 (VGG-Enhanced) builds and steps no discriminator
        disc = settings["model"]["discriminator"]
        discriminator = UNetDiscriminatorSN(1, **disc)
    perceptual = None
    weights_note = "not used (L1 pretraining)" if not finetune else "not used (W_per = 0)"
    if w_per > 0:
        perceptual = PerceptualLoss.from_config(settings["perceptual"], seed=seed)
        weights_note = perceptual.description
        if perceptual.is_random:
            logger.warning(
                "%s: the perceptual loss uses a %s; for demos and tests only", label, RANDOM_FLAG
            )
    for module in (generator, discriminator, perceptual):
        if module is not None:
            module.to(device=device, memory_format=memory_format)
    betas = tuple(float(b) for b in section["betas"])
    # fused: one kernel updates every parameter (CUDA); fp32 master weights either way
    fused = True if cuda and compute.get("fused_adam", False) else None
    opt_g = torch.optim.Adam(generator.parameters(), lr=base_lr, betas=betas, fused=fused)
    opt_d = None
    if discriminator is not None:
        opt_d = torch.optim.Adam(discriminator.parameters(), lr=base_lr, betas=betas, fused=fused)
    g_forward: nn.Module = generator
    d_forward: nn.Module | None = discriminator
    if compute.get("compile", False):
        g_forward = torch.compile(generator)
        d_forward = torch.compile(discriminator) if discriminator is not None else None

    # --- resume ---------------------------------------------------------------------------------
    start_epoch, rows, best, checkpoint_epoch = 0, [], None, None
    if checkpoint_path.is_file():
        try:
            state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise TrainingError(
                f"{label}: checkpoint {checkpoint_path} is unreadable ({type(error).__name__}); "
                "delete it to start this network over"
            ) from error
        if state.get("format") != CHECKPOINT_FORMAT or state.get("run_key") != run_key:
            # the settings, data or pretrained G changed (that is why Snakemake reran the job):
            # start over; the first new checkpoint replaces the stale one
            what = "settings" if state.get("settings_hash") != digest else "data or pretrained G"
            logger.warning(
                "%s: ignoring checkpoint %s written with other %s (run key %s, now %s); "
                "training from epoch 0",
                label,
                checkpoint_path,
                what,
                state.get("run_key"),
                run_key,
            )
        else:
            generator.load_state_dict(state["generator"])
            opt_g.load_state_dict(state["opt_g"])
            if discriminator is not None and opt_d is not None:
                discriminator.load_state_dict(state["discriminator"])
                opt_d.load_state_dict(state["opt_d"])
            torch.set_rng_state(state["rng"]["torch"])
            if cuda and state["rng"].get("cuda"):
                torch.cuda.set_rng_state_all(state["rng"]["cuda"])
            start_epoch = checkpoint_epoch = int(state["epoch"])
            rows = list(state["log_rows"])
            best = state["best"]
            logger.info("%s: resuming from %s after epoch %d", label, checkpoint_path, start_epoch)

    def save_checkpoint(epoch: int) -> None:
        rng = {"torch": torch.get_rng_state()}
        if cuda:
            rng["cuda"] = torch.cuda.get_rng_state_all()
        _save_atomic(
            {
                "format": CHECKPOINT_FORMAT,
                "settings_hash": digest,
                "run_key": run_key,
                "name": name,
                "epoch": epoch,
                "generator": clean_state_dict(generator),
                "discriminator": clean_state_dict(discriminator) if discriminator else None,
                "opt_g": opt_g.state_dict(),
                "opt_d": opt_d.state_dict() if opt_d else None,
                "rng": rng,
                "log_rows": rows,
                "best": best,
            },
            checkpoint_path,
        )

    # --- epochs ---------------------------------------------------------------------------------
    n_train = data.train_lq.shape[0]
    interactive = sys.stderr.isatty()
    logger.info(
        "%s: %d train / %d val images, epochs %d..%d of %d, batch %d, lr %g, device %s%s",
        label,
        n_train,
        data.val_lq.shape[0],
        start_epoch + 1,
        epochs,
        epochs,
        batch_size,
        base_lr,
        device,
        " (bf16)" if bf16 else "",
    )
    bar = tqdm(total=epochs, initial=start_epoch, desc=label, disable=not interactive)
    generator.train()
    if discriminator is not None:
        discriminator.train()
    for epoch in range(start_epoch, epochs):
        started = time.perf_counter()
        lr = learning_rate(base_lr, schedule, epoch, epochs)
        for optimizer in (opt_g, opt_d):
            if optimizer is not None:
                for group in optimizer.param_groups:
                    group["lr"] = lr
        # the order of an epoch depends on (seed, epoch) only: nothing to restore on resume
        order = torch.randperm(
            n_train, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        )
        sums: dict[str, torch.Tensor] = {}
        if on_device:
            order = order.to(device)
        for start in range(0, n_train, batch_size):
            index = order[start : start + batch_size]
            terms = training_step(
                g_forward,
                opt_g,
                prepare(train_lq[index]),
                prepare(train_hq[index]),
                w_per=w_per,
                w_adv=w_adv,
                perceptual=perceptual,
                discriminator=d_forward,
                opt_d=opt_d,
                autocast=autocast,
                gan_loss=gan_loss,
            )
            for key, value in terms.items():  # summed on the device: no sync per step
                sums[key] = sums.get(key, 0) + value.double() * index.numel()
        means = {key: float(value) / n_train for key, value in sums.items()}
        if recalibrate and epoch + 1 == epochs:
            # the last epoch's validation and checkpoint already see the statistics it saves
            recalibrate_batch_norm(generator, train_lq, batch_size, prepare, autocast)
        val = validation_l1(g_forward, data.val_lq, data.val_hq, batch_size, prepare, autocast)
        checked = {**means, "val_l1": val} if data.val_lq.shape[0] else means  # NaN if no val
        for term in (*_LOSS_TERMS, "val_l1"):
            value = checked.get(term)
            if value is not None and not math.isfinite(value):
                kept = (
                    f"the checkpoint of epoch {checkpoint_epoch} is kept in {checkpoint_path}"
                    if checkpoint_epoch
                    else "no checkpoint was written yet"
                )
                raise TrainingError(
                    f"{label}: loss '{term}' became {value} at epoch {epoch + 1}; {kept}"
                )
        row = {
            "epoch": epoch + 1,
            "lr": lr,
            **means,
            "val_l1": val,
            "seconds": time.perf_counter() - started,
            "perceptual_weights": weights_note,
        }
        rows.append(row)
        if keep == "best_val" and (best is None or val < best["val_l1"]):
            best = {"epoch": epoch + 1, "val_l1": val, "state": clean_state_dict(generator)}
        if (epoch + 1) % checkpoint_every == 0 or epoch + 1 == epochs:
            save_checkpoint(epoch + 1)
            checkpoint_epoch = epoch + 1
        _write_log(rows, Path(log_path))
        bar.update(1)
        bar.set_postfix(l1=f"{means['l1']:.4f}", val_l1=f"{val:.4f}")
        if not interactive:
            logger.info(
                "%s epoch %d/%d: %s val_l1 %.5f (%.1f s)",
                label,
                epoch + 1,
                epochs,
                " ".join(f"{k} {v:.5g}" for k, v in means.items()),
                val,
                row["seconds"],
            )
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, row)
    bar.close()

    # --- outputs --------------------------------------------------------------------------------
    kept_val_l1 = rows[-1]["val_l1"] if rows else float("nan")
    if keep == "best_val" and best is not None:
        generator.load_state_dict(best["state"])
        kept_epoch = int(best["epoch"])
        kept_val_l1 = rows[kept_epoch - 1]["val_l1"]
        if recalibrate and kept_epoch != epochs:
            recalibrate_batch_norm(generator, train_lq, batch_size, prepare, autocast)
            kept_val_l1 = validation_l1(
                generator, data.val_lq, data.val_hq, batch_size, prepare, autocast
            )
    else:
        kept_epoch = epochs
    metadata = {
        "stage": stage,
        "name": name,
        "settings": settings,
        "settings_hash": digest,
        "inputs_fingerprint": data_print,
        "perceptual_weights": weights_note,
        "epochs_run": epochs,
        "kept": keep,
        "kept_epoch": kept_epoch,
        "val_l1": kept_val_l1,
        "batch_norm_recalibrated": recalibrate,
        "device": str(device),
        "bf16": bf16,
        "torch_version": str(torch.__version__),
        "advmri_version": advmri.__version__,
    }
    if synthesis is not None:
        metadata["synthesis"] = {
            key: float(synthesis[key]) for key in ("noise_std", "kspace_fraction")
        }
    if perceptual is not None and perceptual.is_random:
        metadata["warning"] = f"{RANDOM_FLAG}: trained with a randomly initialised VGG19"
    save_generator(generator.to("cpu"), generator_path, metadata)
    _write_log(rows, Path(log_path))
    logger.info("%s: wrote %s (epoch %d kept, %s)", label, generator_path, kept_epoch, keep)
    return metadata
