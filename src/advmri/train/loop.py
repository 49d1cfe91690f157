"""One training loop for both stages: L1 pretraining of G, and fine-tuning of one grid cell.

:func:`train_network` reads as the table of contents: set up (settings, device, models, optimisers),
resume from the checkpoint if it was written under the same settings, then per epoch: shuffle, step,
validate, stop on a NaN, log, checkpoint; finally keep the last or best weights and save G. Each
step is a named function or small dataclass below the public helpers. The checkpoint
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
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class _Run:
    """What one run is, read from its settings: the stage, the network's name and the schedule."""

    stage: str
    name: str
    label: str
    epochs: int
    batch_size: int
    base_lr: float
    schedule: str
    keep: str
    recalibrate: bool
    w_per: float
    w_adv: float
    gan_loss: str
    seed: int
    settings_hash: str
    data_fingerprint: str
    checkpoint_every: int

    @property
    def finetune(self) -> bool:
        return self.stage == "finetune"


def _read_run(settings: dict, data: TrainingData, checkpoint_every: int) -> _Run:
    """The run's settings, checked; ConfigError/DataError name the key (nothing is built yet)."""
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
    if keep not in ("last", "best_val"):
        raise ConfigError(f"{stage}.keep = {keep!r}; use last or best_val")
    if keep == "best_val" and data.val_lq.shape[0] == 0:
        raise DataError(f"{label}: keep = best_val needs validation images, the val split is empty")
    if checkpoint_every < 1:
        raise ConfigError(f"{stage}.checkpoint_every = {checkpoint_every}; must be >= 1")
    return _Run(
        stage=stage,
        name=name,
        label=label,
        epochs=epochs,
        batch_size=batch_size,
        base_lr=base_lr,
        schedule=schedule,
        keep=keep,
        recalibrate=recalibrate,
        w_per=w_per,
        w_adv=w_adv,
        gan_loss=gan_loss,
        seed=seed,
        settings_hash=digest,
        data_fingerprint=fingerprint(data.train_lq, data.train_hq, data.val_lq, data.val_hq),
        checkpoint_every=checkpoint_every,
    )


@dataclass(frozen=True)
class _Hardware:
    """Where and how the run computes: device, bf16 autocast, memory format, speed switches."""

    device: torch.device
    bf16: bool
    memory_format: torch.memory_format
    data_on_device: bool
    fused_adam: bool
    compile: bool

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA when ``compute.bf16`` is on; otherwise a no-op context."""
        if self.bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def prepare(self, batch: torch.Tensor) -> torch.Tensor:
        """``batch`` on the device, in the run's memory format."""
        return batch.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)

    def training_split(self, data: TrainingData) -> tuple[torch.Tensor, torch.Tensor]:
        """(LQ, HQ) of the training split: on the device with ``data_on_device``, else as given."""
        if self.data_on_device:
            return self.prepare(data.train_lq), self.prepare(data.train_hq)
        return data.train_lq, data.train_hq


def _set_up_hardware(compute: dict, threads: int | None) -> _Hardware:
    """Resolve ``compute.device``, set torch's CPU threads and read the precision switches."""
    device = resolve_device(compute["device"])
    if threads:
        torch.set_num_threads(int(threads))
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    return _Hardware(
        device=device,
        bf16=cuda and bool(compute.get("bf16", False)),
        memory_format=(
            torch.channels_last
            if cuda and compute.get("channels_last", False)
            else torch.contiguous_format
        ),
        # The training split as one tensor on the device: a step indexes it there, with no host
        # copy (a 1,660-image split at 208 x 176 is 0.5 GB in fp32, small next to an H100's).
        data_on_device=cuda and bool(compute.get("data_on_device", False)),
        # fused: one kernel updates every parameter (CUDA); fp32 master weights either way
        fused_adam=cuda and bool(compute.get("fused_adam", False)),
        compile=bool(compute.get("compile", False)),
    )


@dataclass
class _Networks:
    """G, the optional D and perceptual loss, their optimisers and the (compiled) forwards."""

    generator: UNet
    discriminator: UNetDiscriminatorSN | None
    perceptual: PerceptualLoss | None
    weights_note: str
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    g_forward: nn.Module
    d_forward: nn.Module | None
    pretrained_fingerprint: str


def _build_networks(
    run: _Run,
    settings: dict,
    data: TrainingData,
    hardware: _Hardware,
    initial_generator: str | Path | None,
) -> _Networks:
    """Seed torch, build G (from the pretrained weights when given), D and the perceptual loss.

    The order of construction is the order of random draws: it must not change, or a run's weights
    change.
    """
    torch.manual_seed(run.seed)
    generator = UNet(**settings["model"]["generator"])
    generator.check_size(*data.image_size)
    pretrained_fingerprint = ""
    if initial_generator is not None:
        pretrained, _ = load_generator(initial_generator)
        if pretrained.architecture != generator.architecture:
            raise ConfigError(
                f"{run.label}: pretrained generator {initial_generator} is "
                f"{pretrained.architecture}, model.generator asks for {generator.architecture}; "
                "rerun the pretrain rule"
            )
        generator.load_state_dict(pretrained.state_dict())
        pretrained_fingerprint = fingerprint(*pretrained.state_dict().values())
    discriminator = None
    if run.w_adv > 0:  # W_adv = 0 (VGG-Enhanced) builds and steps no discriminator
        discriminator = UNetDiscriminatorSN(1, **settings["model"]["discriminator"])
    perceptual = None
    weights_note = "not used (W_per = 0)" if run.finetune else "not used (L1 pretraining)"
    if run.w_per > 0:
        perceptual = PerceptualLoss.from_config(settings["perceptual"], seed=run.seed)
        weights_note = perceptual.description
        if perceptual.is_random:
            logger.warning(
                "%s: the perceptual loss uses a %s; for demos and tests only",
                run.label,
                RANDOM_FLAG,
            )
    for module in (generator, discriminator, perceptual):
        if module is not None:
            module.to(device=hardware.device, memory_format=hardware.memory_format)
    betas = tuple(float(b) for b in settings[run.stage]["betas"])
    fused = True if hardware.fused_adam else None
    opt_g = torch.optim.Adam(generator.parameters(), lr=run.base_lr, betas=betas, fused=fused)
    opt_d = None
    if discriminator is not None:
        opt_d = torch.optim.Adam(
            discriminator.parameters(), lr=run.base_lr, betas=betas, fused=fused
        )
    g_forward: nn.Module = generator
    d_forward: nn.Module | None = discriminator
    if hardware.compile:
        g_forward = torch.compile(generator)
        d_forward = torch.compile(discriminator) if discriminator is not None else None
    return _Networks(
        generator=generator,
        discriminator=discriminator,
        perceptual=perceptual,
        weights_note=weights_note,
        opt_g=opt_g,
        opt_d=opt_d,
        g_forward=g_forward,
        d_forward=d_forward,
        pretrained_fingerprint=pretrained_fingerprint,
    )


@dataclass
class _Progress:
    """What a checkpoint carries over: epochs done, log rows, best weights, last checkpoint."""

    start_epoch: int = 0
    rows: list[dict] = field(default_factory=list)
    best: dict | None = None
    checkpoint_epoch: int | None = None

    def record(self, row: dict, generator: nn.Module, *, keep_best: bool) -> None:
        """Append the epoch's log row; with ``keep_best``, copy G's weights if val_l1 is lowest."""
        self.rows.append(row)
        if keep_best and (self.best is None or row["val_l1"] < self.best["val_l1"]):
            state = clean_state_dict(generator)
            self.best = {"epoch": row["epoch"], "val_l1": row["val_l1"], "state": state}


@dataclass(frozen=True)
class _Checkpoint:
    """``checkpoint.pt`` of one run; it continues only a run with the same ``run_key``.

    A checkpoint continues only the same run: same settings, same data and, for a fine-tune, the
    same pretrained weights (new data or a retrained G reruns the job with equal settings).
    """

    path: Path
    run: _Run
    run_key: str

    @classmethod
    def of_run(cls, run: _Run, nets: _Networks, checkpoint_dir: str | Path) -> _Checkpoint:
        """``checkpoint_dir/checkpoint.pt``, keyed by the settings, data and pretrained G."""
        inputs = run.data_fingerprint + nets.pretrained_fingerprint
        run_key = settings_hash({"settings": run.settings_hash, "inputs": inputs})
        return cls(Path(checkpoint_dir) / "checkpoint.pt", run, run_key)

    def resume(self, nets: _Networks, hardware: _Hardware) -> _Progress:
        """Load the checkpoint into ``nets`` and torch's RNG if it is this run's; else start over."""
        label = self.run.label
        if not self.path.is_file():
            return _Progress()
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise TrainingError(
                f"{label}: checkpoint {self.path} is unreadable ({type(error).__name__}); "
                "delete it to start this network over"
            ) from error
        if state.get("format") != CHECKPOINT_FORMAT or state.get("run_key") != self.run_key:
            # the settings, data or pretrained G changed (that is why Snakemake reran the job):
            # start over; the first new checkpoint replaces the stale one
            what = (
                "settings"
                if state.get("settings_hash") != self.run.settings_hash
                else "data or pretrained G"
            )
            logger.warning(
                "%s: ignoring checkpoint %s written with other %s (run key %s, now %s); "
                "training from epoch 0",
                label,
                self.path,
                what,
                state.get("run_key"),
                self.run_key,
            )
            return _Progress()
        nets.generator.load_state_dict(state["generator"])
        nets.opt_g.load_state_dict(state["opt_g"])
        if nets.discriminator is not None and nets.opt_d is not None:
            nets.discriminator.load_state_dict(state["discriminator"])
            nets.opt_d.load_state_dict(state["opt_d"])
        torch.set_rng_state(state["rng"]["torch"])
        if hardware.cuda and state["rng"].get("cuda"):
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        epoch = int(state["epoch"])
        logger.info("%s: resuming from %s after epoch %d", label, self.path, epoch)
        return _Progress(
            start_epoch=epoch,
            rows=list(state["log_rows"]),
            best=state["best"],
            checkpoint_epoch=epoch,
        )

    def save(self, epoch: int, nets: _Networks, hardware: _Hardware, progress: _Progress) -> None:
        """Write G, D, both optimisers, the RNG state, the log rows and the best weights.

        Records ``epoch`` as ``progress.checkpoint_epoch`` once the file is in place.
        """
        rng = {"torch": torch.get_rng_state()}
        if hardware.cuda:
            rng["cuda"] = torch.cuda.get_rng_state_all()
        discriminator, opt_d = nets.discriminator, nets.opt_d
        _save_atomic(
            {
                "format": CHECKPOINT_FORMAT,
                "settings_hash": self.run.settings_hash,
                "run_key": self.run_key,
                "name": self.run.name,
                "epoch": epoch,
                "generator": clean_state_dict(nets.generator),
                "discriminator": clean_state_dict(discriminator) if discriminator else None,
                "opt_g": nets.opt_g.state_dict(),
                "opt_d": opt_d.state_dict() if opt_d else None,
                "rng": rng,
                "log_rows": progress.rows,
                "best": progress.best,
            },
            self.path,
        )
        progress.checkpoint_epoch = epoch


def _train_one_epoch(
    run: _Run,
    nets: _Networks,
    hardware: _Hardware,
    train_lq: torch.Tensor,
    train_hq: torch.Tensor,
    epoch: int,
    lr: float,
) -> dict[str, float]:
    """Set ``lr``, shuffle, take every G (and D) step of epoch ``epoch`` (0-based).

    Returns
    -------
    dict
        Each loss term's mean over the epoch's images.
    """
    for optimizer in (nets.opt_g, nets.opt_d):
        if optimizer is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr
    n_train = train_lq.shape[0]
    # the order of an epoch depends on (seed, epoch) only: nothing to restore on resume
    order = torch.randperm(
        n_train, generator=torch.Generator().manual_seed(run.seed * 1_000_003 + epoch)
    )
    sums: dict[str, torch.Tensor] = {}
    if hardware.data_on_device:
        order = order.to(hardware.device)
    for start in range(0, n_train, run.batch_size):
        index = order[start : start + run.batch_size]
        terms = training_step(
            nets.g_forward,
            nets.opt_g,
            hardware.prepare(train_lq[index]),
            hardware.prepare(train_hq[index]),
            w_per=run.w_per,
            w_adv=run.w_adv,
            perceptual=nets.perceptual,
            discriminator=nets.d_forward,
            opt_d=nets.opt_d,
            autocast=hardware.autocast,
            gan_loss=run.gan_loss,
        )
        for key, value in terms.items():  # summed on the device: no sync per step
            sums[key] = sums.get(key, 0) + value.double() * index.numel()
    return {key: float(value) / n_train for key, value in sums.items()}


def _validate(run: _Run, hardware: _Hardware, generator: nn.Module, data: TrainingData) -> float:
    """:func:`validation_l1` of ``generator`` on the val split, in the run's batches and precision."""
    return validation_l1(
        generator, data.val_lq, data.val_hq, run.batch_size, hardware.prepare, hardware.autocast
    )


def _recalibrate(
    run: _Run, hardware: _Hardware, generator: nn.Module, train_lq: torch.Tensor
) -> None:
    """:func:`recalibrate_batch_norm` of ``generator`` on the training inputs, in the run's batches."""
    recalibrate_batch_norm(generator, train_lq, run.batch_size, hardware.prepare, hardware.autocast)


def _stop_if_diverged(
    run: _Run,
    checkpoint: _Checkpoint,
    progress: _Progress,
    epoch: int,
    means: dict[str, float],
    val: float,
    has_val: bool,
) -> None:
    """Raise TrainingError naming the first non-finite loss term and the checkpoint that stays.

    ``val`` is checked only when there are validation images (it is NaN without them).
    """
    terms = {**means, "val_l1": val} if has_val else means
    for term in (*_LOSS_TERMS, "val_l1"):
        value = terms.get(term)
        if value is not None and not math.isfinite(value):
            kept = (
                f"the checkpoint of epoch {progress.checkpoint_epoch} is kept in {checkpoint.path}"
                if progress.checkpoint_epoch
                else "no checkpoint was written yet"
            )
            raise TrainingError(
                f"{run.label}: loss '{term}' became {value} at epoch {epoch + 1}; {kept}"
            )


def _announce(
    run: _Run, data: TrainingData, hardware: _Hardware, progress: _Progress, interactive: bool
) -> tqdm:
    """Log what the run trains on and from which epoch; return its progress bar (a terminal only)."""
    logger.info(
        "%s: %d train / %d val images, epochs %d..%d of %d, batch %d, lr %g, device %s%s",
        run.label,
        data.train_lq.shape[0],
        data.val_lq.shape[0],
        progress.start_epoch + 1,
        run.epochs,
        run.epochs,
        run.batch_size,
        run.base_lr,
        hardware.device,
        " (bf16)" if hardware.bf16 else "",
    )
    return tqdm(
        total=run.epochs, initial=progress.start_epoch, desc=run.label, disable=not interactive
    )


def _log_epoch(run: _Run, row: dict, means: dict[str, float], bar: tqdm, interactive: bool) -> None:
    """Advance the progress bar; without a terminal, log the epoch's terms as one line."""
    bar.update(1)
    bar.set_postfix(l1=f"{means['l1']:.4f}", val_l1=f"{row['val_l1']:.4f}")
    if not interactive:
        logger.info(
            "%s epoch %d/%d: %s val_l1 %.5f (%.1f s)",
            run.label,
            row["epoch"],
            run.epochs,
            " ".join(f"{k} {v:.5g}" for k, v in means.items()),
            row["val_l1"],
            row["seconds"],
        )


def _keep_final_weights(
    run: _Run,
    nets: _Networks,
    hardware: _Hardware,
    progress: _Progress,
    data: TrainingData,
    train_lq: torch.Tensor,
) -> tuple[int, float]:
    """Load the weights ``keep`` asks for into G (recalibrating batch norm for a best epoch).

    Returns
    -------
    tuple
        (kept epoch, its validation L1).
    """
    rows = progress.rows
    kept_val_l1 = rows[-1]["val_l1"] if rows else float("nan")
    if run.keep != "best_val" or progress.best is None:
        return run.epochs, kept_val_l1
    nets.generator.load_state_dict(progress.best["state"])
    kept_epoch = int(progress.best["epoch"])
    kept_val_l1 = rows[kept_epoch - 1]["val_l1"]
    if run.recalibrate and kept_epoch != run.epochs:
        _recalibrate(run, hardware, nets.generator, train_lq)
        kept_val_l1 = _validate(run, hardware, nets.generator, data)
    return kept_epoch, kept_val_l1


def _generator_metadata(
    run: _Run,
    settings: dict,
    nets: _Networks,
    hardware: _Hardware,
    kept: tuple[int, float],
    synthesis: dict | None,
) -> dict:
    """What the generator file records: settings, inputs, kept epoch, device, versions."""
    kept_epoch, kept_val_l1 = kept
    metadata = {
        "stage": run.stage,
        "name": run.name,
        "settings": settings,
        "settings_hash": run.settings_hash,
        "inputs_fingerprint": run.data_fingerprint + nets.pretrained_fingerprint,
        "perceptual_weights": nets.weights_note,
        "epochs_run": run.epochs,
        "kept": run.keep,
        "kept_epoch": kept_epoch,
        "val_l1": kept_val_l1,
        "batch_norm_recalibrated": run.recalibrate,
        "device": str(hardware.device),
        "bf16": hardware.bf16,
        "torch_version": str(torch.__version__),
        "advmri_version": advmri.__version__,
    }
    if synthesis is not None:
        metadata["synthesis"] = {
            key: float(synthesis[key]) for key in ("noise_std", "kspace_fraction")
        }
    if nets.perceptual is not None and nets.perceptual.is_random:
        metadata["warning"] = f"{RANDOM_FLAG}: trained with a randomly initialised VGG19"
    return metadata


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
    # --- set up: settings, device, networks, resume ---------------------------------------------
    run = _read_run(settings, data, checkpoint_every)
    hardware = _set_up_hardware({**settings["compute"], **(speed or {})}, threads)
    train_lq, train_hq = hardware.training_split(data)
    nets = _build_networks(run, settings, data, hardware, initial_generator)
    checkpoint = _Checkpoint.of_run(run, nets, checkpoint_dir)
    progress = checkpoint.resume(nets, hardware)

    # --- epochs ---------------------------------------------------------------------------------
    interactive = sys.stderr.isatty()
    bar = _announce(run, data, hardware, progress, interactive)
    nets.generator.train()
    if nets.discriminator is not None:
        nets.discriminator.train()
    for epoch in range(progress.start_epoch, run.epochs):
        started = time.perf_counter()
        lr = learning_rate(run.base_lr, run.schedule, epoch, run.epochs)
        means = _train_one_epoch(run, nets, hardware, train_lq, train_hq, epoch, lr)
        last = epoch + 1 == run.epochs
        if run.recalibrate and last:
            # the last epoch's validation and checkpoint already see the statistics it saves
            _recalibrate(run, hardware, nets.generator, train_lq)
        val = _validate(run, hardware, nets.g_forward, data)
        _stop_if_diverged(run, checkpoint, progress, epoch, means, val, data.val_lq.shape[0] > 0)
        row = {
            "epoch": epoch + 1,
            "lr": lr,
            **means,
            "val_l1": val,
            "seconds": time.perf_counter() - started,
            "perceptual_weights": nets.weights_note,
        }
        progress.record(row, nets.generator, keep_best=run.keep == "best_val")
        if (epoch + 1) % run.checkpoint_every == 0 or last:
            checkpoint.save(epoch + 1, nets, hardware, progress)
        _write_log(progress.rows, Path(log_path))
        _log_epoch(run, row, means, bar, interactive)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, row)
    bar.close()

    # --- outputs --------------------------------------------------------------------------------
    kept = _keep_final_weights(run, nets, hardware, progress, data, train_lq)
    metadata = _generator_metadata(run, settings, nets, hardware, kept, synthesis)
    save_generator(nets.generator.to("cpu"), generator_path, metadata)
    _write_log(progress.rows, Path(log_path))
    logger.info("%s: wrote %s (epoch %d kept, %s)", run.label, generator_path, kept[0], run.keep)
    return metadata
