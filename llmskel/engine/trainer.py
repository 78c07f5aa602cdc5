"""The training loop, on Hugging Face Accelerate.

:func:`training_function` is what ``accelerate launch scripts/train.py`` runs and what tests call.
It works the same on one CPU, several CPU processes (gloo), one or many GPUs and several nodes:
Accelerate decides from the launcher's environment.

Checkpoints and exact resume
    ``save_state`` writes ``<run>/checkpoints/checkpoint_<i>`` every ``train.checkpoint_every``
    optimizer steps and at every epoch end, always at a gradient-sync boundary; older ones beyond
    ``train.keep_checkpoints`` are removed. The state holds model, optimizer, scheduler, RNG states
    and a small :class:`TrainProgress` (epoch, batches done in the epoch, step, best score, the
    interrupted epoch's loss sum, history) kept as JSON in ``checkpoint.json``. Checkpoints are
    written to a ``.partial`` folder and renamed when complete, and read back without unpickling
    anything (see :mod:`llmskel.engine.checkpoints`). Resuming (``resume=True`` for the latest, or a
    path) restores all of it and skips the batches already consumed in the interrupted epoch. The sampler is seeded by (seed, epoch) and
    augmentation by (seed, epoch, sample index), so a resumed run sees the same batches with the
    same augmentation and ends with the same parameters as an uninterrupted one.

Reading order: :func:`training_function` checks the config and claims the run folder; ``_train``
is the loop: :func:`setup_run`, :func:`resume_run`, then per epoch :func:`train_epoch`,
:func:`evaluate_epoch`, :func:`log_epoch` and a checkpoint; :func:`finish_run` writes the outputs.

Host syncs: on a CPU each micro-batch's loss is read and checked for NaN/inf at once, before that
batch touches the weights. On an accelerator the losses stay on the device and are read in one
transfer every ``train.log_every`` optimizer steps, before every checkpoint and at the epoch end
(:class:`LossReader`): a non-finite loss still stops the run naming its epoch and batch, up to
``log_every`` steps late, and never after a checkpoint was written. Sums and logs are the same.

The run folder is locked (``run.lock``) while a run trains; a fresh run refuses a folder that holds
another run's checkpoints or results unless ``overwrite=True``.

Outputs in ``<run>``: ``config.yaml`` (resolved), ``metrics.json``, ``best/`` and ``last/`` model
folders (Hub format), ``per_class_accuracy.csv``, ``confusion_matrix.png``, ``curves.png``,
``scores/test_scores.npz`` (for ``llmskel ensemble``) and ``logs/`` (TensorBoard, metrics.jsonl).
"""

from __future__ import annotations

import gc
import logging
import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed

from .. import jsonio
from ..config import save_config, to_dict
from ..errors import CheckpointError, ConfigError, LlmskelError
from .checkpoints import (
    CheckpointWriter,
    RunLock,
    list_checkpoints,
    next_checkpoint_index,
    on_main,
    prepare_run_dir,
    select_checkpoint,
)
from .config import ExperimentConfig
from .data import DataBundle, build_data, make_eval_loader, make_loaders
from .metrics import classification_report, write_per_class_csv
from .optim import build_optimizer, build_scheduler

logger = logging.getLogger(__name__)


class TrainingDivergedError(LlmskelError, RuntimeError):
    """The loss became NaN or infinite; training stopped before the weights were touched."""


@dataclass
class TrainProgress:
    """Where training is; saved as JSON in every checkpoint's ``checkpoint.json``."""

    epoch: int = 0  # epochs fully done
    batches_in_epoch: int = 0  # batches of the current epoch already consumed
    global_step: int = 0  # optimizer steps done
    samples_seen: int = 0
    best_score: float = -1.0
    best_epoch: int = -1
    # the current epoch's running train loss (main process), so a resumed epoch averages all batches
    epoch_loss_sum: float = 0.0
    epoch_loss_batches: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any], source: str = "checkpoint.json") -> None:
        """Restore from JSON; keys and types are checked (the file comes from disk)."""
        for f in fields(self):
            if f.name not in state:
                continue
            v, default = state[f.name], getattr(self, f.name)
            ok = (
                isinstance(v, list) if isinstance(default, list)
                else isinstance(v, (int, float)) and not isinstance(v, bool) if isinstance(default, float)
                else isinstance(v, int) and not isinstance(v, bool)
            )  # fmt: skip
            if not ok:
                raise CheckpointError(f"{source}: progress.{f.name} has the wrong type ({type(v).__name__})")
            setattr(self, f.name, float(v) if isinstance(default, float) else v)


def find_checkpoint(run_dir: Path, resume: bool | str) -> Path:
    """``True`` -> the newest complete checkpoint of the run; a path -> that checkpoint. Verified
    (see :func:`llmskel.engine.checkpoints.select_checkpoint`)."""
    return select_checkpoint(run_dir, resume)[0]


class _QuietCheckpointRotation(logging.Filter):
    """Drops Accelerate's warning when it removes the oldest checkpoint to respect ``total_limit``:
    that rotation is what ``train.keep_checkpoints`` asks for, not a problem, and it was printed
    at every checkpoint."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "checkpoints to make room for new checkpoint" not in record.getMessage()


def _quiet_checkpoint_rotation() -> None:
    log = logging.getLogger("accelerate.accelerator")
    if not any(isinstance(f, _QuietCheckpointRotation) for f in log.filters):
        log.addFilter(_QuietCheckpointRotation())


def hide_library_progress_bars() -> None:
    """Turn off the progress bars of transformers (e.g. "Loading weights") and huggingface_hub
    (downloads) in this process: used when ``train.progress`` is off (logs to a file) and on every
    process but the local main one (one bar per machine, not one per rank)."""
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    disable_progress_bars()


def make_accelerator(cfg: ExperimentConfig, run_dir: Path) -> Accelerator:
    """The run's Accelerator: ``train.trackers`` checked and resolved (see
    :func:`llmskel.engine.trackers.resolve_trackers`), checkpoints named by llmskel, the seedable
    sampler that exact resume needs, and the launcher's world size verified."""
    from .trackers import resolve_trackers

    trackers = resolve_trackers(cfg.train.trackers, cfg.name, run_dir / "logs")
    project = ProjectConfiguration(
        project_dir=str(run_dir),
        logging_dir=str(run_dir / "logs"),
        automatic_checkpoint_naming=False,  # llmskel.engine.checkpoints names, seals and rotates them
    )
    accelerator = Accelerator(
        mixed_precision=cfg.train.mixed_precision,  # None: the launcher's choice wins
        gradient_accumulation_steps=cfg.train.grad_accum,
        log_with=trackers or None,
        project_config=project,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=cfg.seed),
        step_scheduler_with_optimizer=True,
    )
    check_world_size(accelerator)
    _quiet_checkpoint_rotation()
    return accelerator


def _expected_files(accelerator: Accelerator) -> list[str]:
    """What Accelerate's ``load_state`` reads on the plain (DDP / one process) path; FSDP and
    DeepSpeed write their own layouts, checked through the manifest only."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED,
                                        DistributedType.MEGATRON_LM):  # fmt: skip
        return []
    names = ["model.safetensors", "optimizer.bin", "scheduler.bin"]
    if accelerator.scaler is not None:
        names.append("scaler.pt")
    return names


def finish(accelerator: Accelerator) -> None:
    """End a run: close the trackers and destroy the process group.

    The prepared model holds the process group (DDP keeps it for its gradient buckets). If that model
    is still alive when the interpreter shuts down, gloo's worker threads are torn down during
    finalisation and the process can abort ("terminate called without an active exception",
    SIGABRT) after the work is done, so torchrun reports a failure. Drop the accelerator's references
    and collect before the group goes away; the caller's own references die when it returns.
    """
    accelerator.free_memory()
    gc.collect()
    accelerator.end_training()


def check_world_size(accelerator: Accelerator) -> None:
    """torchrun without a GPU and without ACCELERATE_USE_CPU=1 starts N independent rank-0 jobs that
    each train on everything: silently wrong. Refuse instead."""
    import os

    want = int(os.environ.get("WORLD_SIZE", "1"))
    if want != accelerator.num_processes:
        raise LlmskelError(
            f"the launcher started {want} processes (WORLD_SIZE={want}) but Accelerate sees "
            f"{accelerator.num_processes}; on a machine without GPUs set ACCELERATE_USE_CPU=1 "
            "(e.g. ACCELERATE_USE_CPU=1 torchrun --nproc_per_node 2 scripts/train.py ...)"
        )


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        elif isinstance(v, (int, float, str, bool)):
            out[key] = v
        else:
            out[key] = str(v)
    return out


@torch.no_grad()
def evaluate(model, loader, accelerator: Accelerator, method, split: str = "test") -> dict[str, np.ndarray]:
    """Scores, labels and dataset indices of every sample of a split, each counted once across processes."""
    model.eval()
    scores, labels, indices = [], [], []
    for batch in loader:
        s = method.scores(model, batch, split)
        s, y, i = accelerator.gather_for_metrics((s.float(), method.targets(batch, split), batch["index"]))
        scores.append(s.cpu())
        labels.append(y.cpu())
        indices.append(i.cpu())
    model.train()
    if not scores:
        return {"scores": np.zeros((0, len(method.classes_for(split))), np.float32), "labels": np.zeros(0, np.int64),
                "indices": np.zeros(0, np.int64)}  # fmt: skip
    return {
        "scores": torch.cat(scores).numpy(),
        "labels": torch.cat(labels).numpy(),
        "indices": torch.cat(indices).numpy(),
    }


def training_function(
    cfg: ExperimentConfig,
    resume: bool | str | None = None,
    stop_after_steps: int | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train ``cfg``; returns the final metrics. ``stop_after_steps`` simulates a kill (tests).

    The main process locks the run folder first; a fresh run (no ``resume``) into a folder that
    holds another run's checkpoints or results is refused unless ``overwrite`` (which removes
    them). Both happen before anything in the folder is written."""
    if resume and overwrite:
        raise ConfigError("--resume continues the run in the folder and --overwrite replaces it: choose one")
    from .config import check_experiment

    check_experiment(cfg)  # the whole config, before any run folder or data
    run_dir = Path(cfg.run_dir)
    accelerator = make_accelerator(cfg, run_dir)
    lock = RunLock(run_dir)

    def claim() -> int:
        lock.acquire()
        try:
            prepare_run_dir(run_dir, bool(resume), overwrite)
            return next_checkpoint_index(run_dir)
        except BaseException:
            lock.release()
            raise

    try:
        first_index = on_main(accelerator, claim)
    except BaseException:
        finish(accelerator)
        raise
    try:
        return _train(cfg, accelerator, run_dir, resume, stop_after_steps, first_index)
    finally:
        lock.release()


def _train(cfg: ExperimentConfig, accelerator: Accelerator, run_dir: Path, resume: bool | str | None,
           stop_after_steps: int | None, first_index: int) -> dict[str, Any]:  # fmt: skip
    """The run, top to bottom: set up, resume, then per epoch train / evaluate / log / checkpoint,
    then write the outputs."""
    run = setup_run(cfg, accelerator, run_dir, first_index)
    if resume:
        resume_run(run, resume)
    if cfg.train.trackers:
        accelerator.init_trackers(cfg.name, config=_flat(to_dict(cfg)))

    run.model.train()
    for epoch in range(run.progress.epoch, run.epochs):
        entry = train_epoch(run, epoch, stop_after_steps)
        if entry is None:  # stop_after_steps reached: what a kill leaves behind (tests)
            finish(accelerator)
            return {**run.counts(), "stopped_early": True}
        last_epoch = run.progress.epoch >= run.epochs or run.max_steps_done()
        if last_epoch or run.progress.epoch % max(cfg.train.eval_every, 1) == 0:
            entry.update(evaluate_epoch(run))
        log_epoch(run, entry)
        run.save_checkpoint()
        accelerator.wait_for_everyone()
        if last_epoch:
            break
    return finish_run(run)


@dataclass
class TrainRun:
    """What one training run holds once set up (:func:`setup_run`): the prepared objects, where
    training is (``progress``) and the last evaluation."""

    cfg: ExperimentConfig
    accelerator: Accelerator
    run_dir: Path
    bundle: DataBundle
    method: Any
    model: torch.nn.Module
    optimizer: Any
    scheduler: Any
    train_loader: Any
    test_loader: Any
    val_loader: Any
    writer: CheckpointWriter
    epochs: int
    progress: TrainProgress = field(default_factory=TrainProgress)
    last_report: dict[str, Any] | None = None  # the last test report (classifying methods)
    last_val: dict[str, float] = field(default_factory=dict)  # the last validation metrics
    last_extra: dict[str, float] = field(default_factory=dict)  # the last metrics of other methods

    def save_checkpoint(self) -> None:
        self.writer.save(self.progress.state_dict())  # all processes must call it

    def max_steps_done(self) -> bool:
        return bool(self.cfg.train.max_steps and self.progress.global_step >= self.cfg.train.max_steps)

    def counts(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "epochs": self.progress.epoch,
            "steps": self.progress.global_step,
        }

    def record(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The training record saved with a model folder (its card and config)."""
        cfg, bundle, progress = self.cfg, self.bundle, self.progress
        rec = {
            "name": cfg.name, "dataset": bundle.dataset, "protocol": bundle.protocol,
            "num_train": len(bundle.train_idx), "num_test": len(bundle.test_idx),
            "epochs": progress.epoch, "steps": progress.global_step, "seed": cfg.seed,
            "method": cfg.method,
        }  # fmt: skip
        rec["metrics"] = dict(extra or {})
        return rec


def setup_run(cfg: ExperimentConfig, accelerator: Accelerator, run_dir: Path, first_index: int) -> TrainRun:
    """Seeds, the resolved config, data, method, model, loaders, optimizer and schedule, prepared."""
    from ..methods.base import get_method

    if not cfg.train.progress or not accelerator.is_local_main_process:
        hide_library_progress_bars()
    set_seed(cfg.seed, deterministic=cfg.train.deterministic)
    if accelerator.is_main_process:
        save_config(cfg, run_dir / "config.yaml")

    bundle: DataBundle = build_data(cfg.data, seed=cfg.seed)
    method = get_method(cfg.method)(cfg, bundle)
    model = method.build_model()
    if cfg.train.compile:
        model = torch.compile(model)

    train_loader, test_loader = make_loaders(bundle, cfg.train.batch_size, cfg.train.eval_batch_size,
                                             cfg.data.num_workers, cfg.seed)  # fmt: skip
    val_loader = None
    if bundle.val is not None:
        val_loader = make_eval_loader(bundle.val, cfg.train.eval_batch_size, cfg.data.num_workers)
    # schedule sized from the unprepared loader (see llmskel.engine.optim)
    steps_per_epoch = max(math.ceil(len(train_loader) / cfg.train.grad_accum), 1)
    total_steps = cfg.train.max_steps or cfg.train.epochs * steps_per_epoch
    epochs = cfg.train.epochs if not cfg.train.max_steps else math.ceil(cfg.train.max_steps / steps_per_epoch)
    lr = cfg.optim.lr
    if cfg.optim.scale_lr:
        lr *= cfg.train.batch_size * accelerator.num_processes * cfg.train.grad_accum / 16
    optimizer = build_optimizer(cfg.optim, method.param_groups(model), lr)
    scheduler = build_scheduler(optimizer, cfg.optim, steps_per_epoch, total_steps)

    model, optimizer, train_loader, test_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, test_loader, scheduler
    )
    if val_loader is not None:
        val_loader = accelerator.prepare(val_loader)
    method.setup(accelerator.unwrap_model(model), accelerator.device)
    return TrainRun(
        cfg=cfg, accelerator=accelerator, run_dir=run_dir, bundle=bundle, method=method, model=model,
        optimizer=optimizer, scheduler=scheduler, train_loader=train_loader, test_loader=test_loader,
        val_loader=val_loader, writer=CheckpointWriter(accelerator, run_dir, cfg.train.keep_checkpoints, first_index),
        epochs=epochs,
    )  # fmt: skip


def resume_run(run: TrainRun, resume: bool | str) -> None:
    """Load the model, optimizer, scheduler and RNG states and ``progress`` of a verified checkpoint
    (``progress`` is kept in checkpoint.json, never registered: Accelerate would pickle it)."""
    accelerator = run.accelerator

    def pick() -> tuple[str, dict[str, Any]]:
        ckpt, meta = select_checkpoint(run.run_dir, resume, _expected_files(accelerator))
        return str(ckpt), meta

    ckpt_name, meta = on_main(accelerator, pick)
    ckpt = Path(ckpt_name)
    if meta.get("num_processes") != accelerator.num_processes:
        logger.warning("%s was written by %s processes and is resumed with %d: the random streams differ, "
                       "so the run will not match an uninterrupted one exactly", ckpt,
                       meta.get("num_processes"), accelerator.num_processes)  # fmt: skip
    try:
        # every file was verified above without unpickling; Accelerate reads them weights-only too
        accelerator.load_state(str(ckpt), load_kwargs={"weights_only": True})
    except Exception as e:  # mismatched state (another model or optimizer): say which folder and why
        raise CheckpointError(
            f"cannot resume from {ckpt}: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        ) from e
    progress = run.progress
    progress.load_state_dict(meta["progress"], str(ckpt / "checkpoint.json"))
    accelerator.print(f"resumed from {ckpt}: epoch {progress.epoch}, batch {progress.batches_in_epoch}, "
                      f"step {progress.global_step}", file=sys.stderr)  # fmt: skip


def reads_loss_every_batch(device: torch.device) -> bool:
    """Whether the training loop reads each micro-batch's loss on the host right away.

    On a CPU that read costs nothing, and the non-finite check then runs before the batch touches
    the weights. On an accelerator each read (``.item()``) makes the host wait for the device, so
    the losses stay on the device and are read together every ``train.log_every`` optimizer steps,
    before every checkpoint and at every epoch end (see :class:`LossReader`)."""
    return device.type == "cpu"


class LossReader:
    """The micro-batch losses of an epoch on their way to the host: the non-finite check, the epoch's
    loss sum (kept in ``progress`` for exact resume) and the last loss for logs and the progress bar.

    :meth:`add` keeps a loss; :meth:`read` copies every kept loss to the host in one transfer, checks
    them (across processes) and adds them to ``progress`` in batch order, so the sums are the same
    whether losses are read after every batch or in groups. A non-finite loss stops the run with
    :class:`TrainingDivergedError` naming the epoch and batch; when losses are read in groups (not on
    a CPU) that is up to ``train.log_every`` optimizer steps after the batch, and the weights have
    been updated since (no checkpoint is written in between: :meth:`read` runs before each)."""

    def __init__(self, run: TrainRun, epoch: int):
        self.run, self.epoch = run, epoch
        self.every_batch = reads_loss_every_batch(run.accelerator.device)
        self.pending: list[tuple[torch.Tensor, int, int]] = []  # (loss, batch in epoch, step)
        self.last: float | None = None  # the newest loss read

    def add(self, loss: torch.Tensor) -> None:
        p = self.run.progress
        self.pending.append((loss.detach(), p.batches_in_epoch + 1, p.global_step))
        if self.every_batch:
            self.read()

    def read(self) -> bool:
        """Copy the kept losses to the host and check them; False when there were none."""
        if not self.pending:
            return False
        accelerator, progress = self.run.accelerator, self.run.progress
        losses = torch.stack([loss for loss, _, _ in self.pending])
        values = losses.tolist()  # the one host sync for all kept batches
        if accelerator.num_processes > 1:  # every process stops at the same batch
            bad = (~torch.isfinite(losses)).float()
            bad_any = [b > 0 for b in accelerator.reduce(bad, reduction="sum").tolist()]
        else:
            bad_any = [not math.isfinite(v) for v in values]
        if any(bad_any):
            self._diverged(bad_any.index(True), values)
        for v in values:
            progress.epoch_loss_sum += v
            progress.epoch_loss_batches += 1
        self.last = values[-1]
        self.pending.clear()
        return True

    def _diverged(self, i: int, values: list[float]) -> None:
        _, batch, step = self.pending[i]
        late = len(self.pending) - 1 - i
        cps = list_checkpoints(self.run.run_dir)
        last = cps[-1] if cps else None
        finish(self.run.accelerator)
        if not late:
            when = "stopped before updating the weights"
        else:
            when = (f"found {late} batch(es) later (losses are read from the {self.run.accelerator.device.type} "
                    "device every train.log_every steps), so the weights were updated since; no checkpoint "
                    "was written after it")  # fmt: skip
        raise TrainingDivergedError(
            f"loss is {values[i]} at epoch {self.epoch + 1}, batch {batch} (step {step}); {when}. Last good "
            f"checkpoint: {last or 'none yet'}. Lower optim.lr, enable optim.clip_grad_norm, or check the "
            f"data for NaN/huge coordinates."
        )


def train_epoch(run: TrainRun, epoch: int, stop_after_steps: int | None) -> dict[str, Any] | None:
    """One epoch (or its rest, after a resume); checkpoints every ``train.checkpoint_every`` steps.
    Returns the epoch's history entry, or None when ``stop_after_steps`` ended the run."""
    cfg, accelerator, progress = run.cfg, run.accelerator, run.progress
    model, optimizer, scheduler, method = run.model, run.optimizer, run.scheduler, run.method
    run.bundle.train.set_epoch(epoch)
    run.train_loader.set_epoch(epoch)
    skip = progress.batches_in_epoch
    loader = accelerator.skip_first_batches(run.train_loader, skip) if skip else run.train_loader
    bar = None
    if cfg.train.progress and accelerator.is_local_main_process:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(run.train_loader), initial=skip, desc=f"epoch {epoch + 1}/{run.epochs}",
                   dynamic_ncols=True, leave=False)  # fmt: skip
    world_batch = cfg.train.batch_size * accelerator.num_processes
    t0, seen = time.perf_counter(), 0
    if not skip:  # a resumed epoch keeps the loss of the batches before the interruption
        progress.epoch_loss_sum, progress.epoch_loss_batches = 0.0, 0
    losses = LossReader(run, epoch)
    stopped = False

    def show() -> None:
        if bar is not None and losses.last is not None:
            bar.set_postfix(loss=f"{losses.last:.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}",
                            samples_s=f"{seen / max(time.perf_counter() - t0, 1e-9):.0f}")  # fmt: skip

    for batch in loader:
        with accelerator.accumulate(model):
            loss, logs = method.loss(model, batch)
            losses.add(loss)  # on a CPU: read and checked here, before the weights change
            accelerator.backward(loss)
            if accelerator.sync_gradients and cfg.optim.clip_grad_norm:
                accelerator.clip_grad_norm_(model.parameters(), cfg.optim.clip_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        progress.batches_in_epoch += 1
        progress.samples_seen += world_batch
        seen += world_batch
        if bar is not None:
            bar.update(1)
            if losses.every_batch:
                show()
        if not accelerator.sync_gradients:
            continue
        progress.global_step += 1
        if progress.global_step % max(cfg.train.log_every, 1) == 0:
            if losses.read():
                show()
            if cfg.train.trackers:
                accelerator.log({"train/loss": losses.last, "train/lr": scheduler.get_last_lr()[0],
                                 **{f"train/{k}": _host(v) for k, v in logs.items()}},
                                step=progress.global_step)  # fmt: skip
        if cfg.train.checkpoint_every and progress.global_step % cfg.train.checkpoint_every == 0:
            losses.read()  # progress holds every loss so far, and none of them is NaN
            run.save_checkpoint()
        if stop_after_steps is not None and progress.global_step >= stop_after_steps:
            stopped = True
            break
        if run.max_steps_done():
            break
    losses.read()
    if bar is not None:
        bar.close()
    if stopped:
        return None
    epoch_loss = progress.epoch_loss_sum / max(progress.epoch_loss_batches, 1)
    train_rate = seen / max(time.perf_counter() - t0, 1e-9)
    progress.epoch = epoch + 1
    progress.batches_in_epoch = 0
    progress.epoch_loss_sum, progress.epoch_loss_batches = 0.0, 0
    return {"epoch": progress.epoch, "train_loss": epoch_loss, "train_samples_s": train_rate}


def _host(v: Any) -> Any:
    """A logged value as a Python number (methods may log 0-d tensors: read only at log steps)."""
    return v.item() if isinstance(v, torch.Tensor) else v


def evaluate_epoch(run: TrainRun) -> dict[str, Any]:
    """Evaluate after an epoch; saves ``best/`` when the selection split's top-1 improves. Returns
    the metrics for the epoch's history entry."""
    accelerator, method, progress = run.accelerator, run.method, run.progress
    if not method.classifies:
        # e.g. a skeleton tokenizer: the method reports its own metrics (reconstruction, codebook use)
        extra = method.validation_metrics(run.model, run.val_loader or run.test_loader, accelerator)
        run.last_extra.update(extra)
        return dict(extra)
    entry: dict[str, Any] = {}
    reports: dict[str, dict[str, Any]] = {}
    for split, split_loader in (("val", run.val_loader), ("test", run.test_loader)):
        if split_loader is None:
            continue
        res = evaluate(run.model, split_loader, accelerator, method, split)
        if len(res["labels"]):
            rep = classification_report(res["scores"], res["labels"], method.classes_for(split))
            reports[split] = {**rep, **res}
    if "test" in reports:
        rep = reports["test"]
        entry.update(top1=rep["top1"], top5=rep["top5"], mean_class_accuracy=rep["mean_class_accuracy"])
        run.last_report = rep
    if "val" in reports:
        entry.update(val_top1=reports["val"]["top1"])
        run.last_val = _metrics_of(reports["val"], "val")
    # the best model is picked on the validation split when there is one
    pick = reports.get("val") or reports.get("test")
    if pick is not None and pick["top1"] > progress.best_score:
        progress.best_score, progress.best_epoch = pick["top1"], progress.epoch
        if accelerator.is_main_process:
            # no test split (every source is use: train, e.g. a pre-training run): the record
            # carries the validation metrics the epoch was chosen on
            shown = "test" if "test" in reports else "val"
            best_record = run.record(_metrics_of(reports[shown], shown))
            best_record["model_selection"] = _selection_note(
                "val" in reports, progress.epoch, "test" in reports
            )
            method.save_model(accelerator.unwrap_model(run.model), run.run_dir / "best", best_record)
    # methods adapt to the validation split only, never to the test set
    method.on_epoch_end(accelerator.unwrap_model(run.model), progress.epoch, reports.get("val"))
    return entry


def log_epoch(run: TrainRun, entry: dict[str, Any]) -> None:
    """Add the epoch to the history, the trackers and the console."""
    accelerator, progress = run.accelerator, run.progress
    progress.history.append(entry)
    if run.cfg.train.trackers:
        accelerator.log(
            {f"epoch/{k}": v for k, v in entry.items() if k != "epoch"}, step=progress.global_step
        )
    accelerator.print(
        f"epoch {progress.epoch}/{run.epochs}: loss {entry['train_loss']:.4f}, "
        f"{entry['train_samples_s']:.1f} samples/s"
        + (f", val top-1 {100 * entry['val_top1']:.2f} %" if "val_top1" in entry else "")
        + (f", test top-1 {100 * entry['top1']:.2f} %" if "top1" in entry else ""),
        file=sys.stderr,  # stdout is for results (--json prints exactly one object there)
    )


def finish_run(run: TrainRun) -> dict[str, Any]:
    """Write the outputs (main process), end the run and return its final metrics."""
    cfg, accelerator, method, progress, run_dir = run.cfg, run.accelerator, run.method, run.progress, run.run_dir  # fmt: skip
    if accelerator.is_main_process and run.last_report is not None:
        _write_outputs(cfg, run_dir, run.bundle, method, accelerator.unwrap_model(run.model), run.last_report,
                       progress, run.record)  # fmt: skip
    elif accelerator.is_main_process:
        # a method that reports its own metrics, or a classifier trained without a test split
        # (last/ and metrics.json carry the last validation metrics, when there were any)
        metrics = {**run.last_extra, **run.last_val, "epochs": progress.epoch, "steps": progress.global_step,
                   "num_train": len(run.bundle.train_idx), "history": progress.history}  # fmt: skip
        if method.classifies and run.last_val:  # no validation split either: no best to report
            metrics.update(best_val_top1=progress.best_score, best_epoch=progress.best_epoch)
        (run_dir / "metrics.json").write_text(jsonio.dumps(metrics, indent=2))
        last = run_dir / "last"
        if last.exists():
            shutil.rmtree(last)
        method.save_model(
            accelerator.unwrap_model(run.model), last, run.record({**run.last_extra, **run.last_val})
        )
    accelerator.wait_for_everyone()
    result = run.counts()
    result.update(run.last_extra)
    result.update(run.last_val)
    if run.last_report is not None:
        result.update(_metrics_of(run.last_report, "test"))
        result.update(best_top1=progress.best_score, best_epoch=progress.best_epoch,
                      best_selected_on="validation" if run.bundle.val is not None else "test")  # fmt: skip
    finish(accelerator)
    return result


def _selection_note(on_validation: bool, epoch: int, has_test: bool = True) -> str:
    """How ``best/`` was chosen, for its model card and metrics.json."""
    if not has_test:
        return (f"epoch {epoch} of training, the one with the highest validation top-1 (samples held out "
                "of the training split, data.val_fraction); the run had no test split")  # fmt: skip
    if on_validation:
        return (f"epoch {epoch} of training, the one with the highest validation top-1 (samples held out "
                "of the training split, data.val_fraction); the test metrics are of that epoch")  # fmt: skip
    return (f"epoch {epoch} of training, the one with the highest TEST top-1: there was no validation "
            "split, so the epoch was chosen on the test set and its test metrics are optimistic. Set "
            "data.val_fraction > 0 to choose on held-out training samples, or report last/")  # fmt: skip


def _metrics_of(rep: dict[str, Any], prefix: str) -> dict[str, float]:
    return {f"{prefix}_top1": rep["top1"], f"{prefix}_top5": rep["top5"],
            f"{prefix}_mean_class_accuracy": rep["mean_class_accuracy"]}  # fmt: skip


def _write_outputs(cfg, run_dir: Path, bundle, method, model, rep, progress: TrainProgress, record) -> None:
    from .plots import plot_confusion, plot_curves

    metrics = {
        **_metrics_of(rep, "test"),
        "best_top1": progress.best_score,
        "best_epoch": progress.best_epoch,
        # best_top1 is the validation top-1 when there is a validation split, else the test top-1
        # (then best/ was chosen on the test set: optimistic; the model card says so too)
        "best_selected_on": "validation" if bundle.val is not None else "test",
        "epochs": progress.epoch,
        "steps": progress.global_step,
        "num_train": len(bundle.train_idx),
        "num_test": int(rep["num_samples"]),
        "classes": method.classes_for("test"),
        "per_class_accuracy": rep["per_class"],
        "history": progress.history,
    }
    (run_dir / "metrics.json").write_text(jsonio.dumps(metrics, indent=2))
    write_per_class_csv(run_dir / "per_class_accuracy.csv", rep)
    plot_confusion(rep["confusion"], method.classes_for("test"), run_dir / "confusion_matrix.png",
                   title=f"{cfg.name}")  # fmt: skip
    plot_curves(progress.history, run_dir / "curves.png")
    (run_dir / "scores").mkdir(exist_ok=True)
    np.savez(run_dir / "scores" / "test_scores.npz", scores=rep["scores"], labels=rep["labels"],
             indices=rep["indices"], classes=np.array(method.classes_for("test")), stream=cfg.data.stream)  # fmt: skip
    last = run_dir / "last"
    if last.exists():
        shutil.rmtree(last)
    method.save_model(model, last, record(_metrics_of(rep, "test")))
