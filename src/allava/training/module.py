"""The LightningModule: one class for every stage; the stage config says what trains and how."""
from __future__ import annotations

import copy
from collections import Counter
from dataclasses import replace
from functools import partial
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch.distributed.fsdp import FSDPModule
from torch.optim.lr_scheduler import LambdaLR

from allava.data.samples import samples_in
from allava.models.build import VLMBundle
from allava.models.predictor import VLMPredictor
from allava.training.nonfinite_guard import NonFiniteGuard
from allava.training.objectives import CaptionWordsHead, caption_words_loss, check_objective
from allava.training.periodic_checkpoints import PeriodicCheckpoint, step_checkpoints
from allava.training.random_state import capture_random_state, restore_random_state
from allava.training.schedule import warmup_cosine
from allava.training.sharding import ENTRY_POINTS, copy_full_weights, data_parallel_mesh, shard
from allava.training.trainable import (MODULES, apply_trainable, keep_frozen_in_eval_mode,
                                       parameter_counts)


class VLMTrainingModule(L.LightningModule):
    """Wraps a built `VLMBundle` for one training stage.

    `stage` fields used: `name`, `train` (modules that learn), `lr` (peak LR per module),
    `weight_decay`, `warmup_ratio`, `min_lr_ratio`, `betas`, `loss_reduction`, `objective`
    (`next_token`, the default, or `caption_words`: see `allava.training.objectives`).
    """

    def __init__(self, bundle: VLMBundle, stage: dict[str, Any],
                 preview_examples: list[dict] | None = None, preview_max_new_tokens: int = 48,
                 max_bad_steps: int = 20):
        super().__init__()
        self.bundle = bundle
        self.model = bundle.model
        self.stage = stage
        self.preview_examples = preview_examples or []
        self.preview_max_new_tokens = preview_max_new_tokens
        self.rejected: Counter = Counter()
        self.truncated = 0  # training samples cut at the processor's max_length
        self.guard = NonFiniteGuard(max_bad_steps)
        self._loss_finite = True
        self._random_state_to_restore: dict | None = None
        apply_trainable(self.model, list(stage["train"]))
        self.objective = check_objective(stage.get("objective", "next_token"))
        # The caption-words head lives in this module only: it is not part of the exported VLM.
        self.caption_words_head = (
            CaptionWordsHead(self.model.vision.feature_dim, len(bundle.tokenizer))
            if self.objective == "caption_words" else None)

    def parameter_counts(self) -> dict[str, dict[str, int]]:
        return parameter_counts(self.model)

    def train(self, mode: bool = True):
        # Whoever switches the whole module to train mode: frozen parts (the toy tower after
        # its stage) stay in eval mode.
        super().train(mode)
        if mode:
            keep_frozen_in_eval_mode(self.model)
        return self

    def on_fit_start(self) -> None:
        # Lightning 2.x keeps the modes a module comes with (nn.Module's default: train) and
        # restores them after each validation; so the frozen parts go to eval mode here, or
        # a frozen tower's BatchNorm statistics would drift through the whole stage.
        self.train()

    # --- FSDP2 (Lightning's ModelParallelStrategy: configs/trainer/fsdp2.yaml) ---------------
    def configure_model(self) -> None:
        """Under ModelParallelStrategy (the only strategy that gives a device mesh), trains a
        copy of the model sharded with FSDP2; `gather_weights` brings the result back."""
        if self.device_mesh is None or self.sharded:
            return
        mesh = data_parallel_mesh(self.device_mesh)
        self.model = copy.deepcopy(self.bundle.model)
        if self.caption_words_head is not None:  # this objective runs the tower alone
            shard(self.model.vision, mesh)
            shard(self.caption_words_head, mesh)
        else:
            shard(self.model, mesh, ENTRY_POINTS)
        units = sum(isinstance(m, FSDPModule) for m in self.modules())
        rank_zero_info(f"[{self.stage['name']}] FSDP2: {units} units sharded over "
                       f"{mesh.size()} ranks")

    @property
    def sharded(self) -> bool:
        """Training a sharded copy (FSDP2) rather than the bundle's model itself."""
        return self.model is not self.bundle.model

    def gather_weights(self) -> None:
        """After a sharded stage, writes the trained weights into the bundle's plain model (on
        every rank: a collective). Nothing to do after an unsharded one."""
        if self.sharded:
            copy_full_weights(self.model, self.bundle.model)
            self.model = self.bundle.model

    def forward(self, batch: dict[str, Any]) -> torch.Tensor | None:
        if self.caption_words_head is not None:
            return caption_words_loss(self.model.vision, self.caption_words_head, batch,
                                      self.model.image_token_id, self.model.num_image_tokens)
        return self.model.supervised_loss(batch["input_ids"], batch["attention_mask"],
                                          batch["pixel_values"], batch["labels"],
                                          self.stage.get("loss_reduction", "token"),
                                          position_ids=batch.get("position_ids"),
                                          documents=batch.get("documents"))

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        size = samples_in(batch)
        self.rejected.update(batch.get("rejected", {}))
        if self.rejected:
            self.log_dict({f"data/rejected_{k}": float(v) for k, v in self.rejected.items()},
                          batch_size=size)
        self.truncated += int(batch.get("truncated", 0))
        if self.truncated:
            self.log("data/truncated", float(self.truncated), batch_size=size)
        loss = self(batch)
        if loss is None:  # nothing this objective can learn from (no image in the batch)
            return None
        self._loss_finite = bool(torch.isfinite(loss.detach()))
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        loss = self(batch)
        if loss is None:
            return None
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=samples_in(batch))
        return loss

    def on_train_epoch_start(self) -> None:
        # New shard and sample order each epoch; the loader's iterator is made after this hook.
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "set_epoch"):
            datamodule.set_epoch(self.current_epoch)

    def on_before_optimizer_step(self, optimizer) -> None:
        # Before gradient clipping, which would spread a NaN over every gradient.
        grads = [p.grad for group in optimizer.param_groups for p in group["params"]
                 if p.grad is not None]
        norm = torch.nn.utils.get_total_norm(grads, norm_type=2.0) if grads else None
        if hasattr(norm, "full_tensor"):  # sharded gradients (FSDP2): the norm of the whole
            norm = norm.full_tensor()
        finite = self._loss_finite and (norm is None or bool(torch.isfinite(norm)))
        # Ranks decide together (a sharded gradient is finite on some ranks only).
        finite = not self.trainer.strategy.reduce_boolean_decision(not finite, all=False)
        self._loss_finite = True
        last_checkpoint = None if finite else self._last_checkpoint()  # a directory listing
        if not self.guard.record(self.global_step, finite, last_checkpoint):
            for group in optimizer.param_groups:  # AdamW leaves parameters without grads alone
                for parameter in group["params"]:
                    parameter.grad = None
        elif norm is not None:
            self.log("train/grad_norm", norm, batch_size=1)
        if self.guard.skipped_total:
            self.log("train/skipped_steps", float(self.guard.skipped_total), batch_size=1)

    def _last_checkpoint(self) -> str | None:
        for callback in self.trainer.callbacks:
            if isinstance(callback, PeriodicCheckpoint):
                saved = step_checkpoints(callback.dirpath)
                return str(saved[-1]) if saved else None
        return None

    # --- resume: what Lightning's checkpoint does not hold by itself -------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["random_state"] = capture_random_state()
        checkpoint["rejected"] = dict(self.rejected)
        checkpoint["truncated"] = self.truncated
        checkpoint["skipped_steps"] = self.guard.skipped_total

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.rejected = Counter(checkpoint.get("rejected", {}))
        self.truncated = int(checkpoint.get("truncated", 0))
        self.guard.skipped_total = int(checkpoint.get("skipped_steps", 0))
        # Applied when training starts, after Lightning's setup (which the uninterrupted run
        # did not go through at this point) has run.
        self._random_state_to_restore = checkpoint.get("random_state")

    def on_train_start(self) -> None:
        if self._random_state_to_restore is not None:
            restore_random_state(self._random_state_to_restore)
            self._random_state_to_restore = None

    def on_validation_epoch_end(self) -> None:
        if (not self.preview_examples or self.trainer.sanity_checking
                or self.objective != "next_token"):
            return
        # Only loggers with tables (W&B) show previews; the same list on every rank, so that
        # all ranks generate or none does (a sharded model generates collectively).
        tables = [logger.log_table for logger in self.loggers if hasattr(logger, "log_table")]
        if not tables:
            return
        predictor = VLMPredictor(replace(self.bundle, model=self.model))  # sharded or not
        examples = self.preview_examples
        predictions = predictor.answer([e["question"] for e in examples],
                                       [e["image"] for e in examples],
                                       max_new_tokens=self.preview_max_new_tokens)
        for log_table in tables:
            import wandb

            rows = [[wandb.Image(e["image"]) if e["image"] is not None else None,
                     e["question"], e["reference"], p] for e, p in zip(examples, predictions)]
            log_table(key=f"{self.stage['name']}/val_samples",
                      columns=["image", "question", "reference", "prediction"], data=rows,
                      step=self.global_step)

    def configure_optimizers(self):
        groups = []
        for name in MODULES:
            params = [p for p in getattr(self.model, name).parameters() if p.requires_grad]
            if params:
                groups.append({"params": params, "lr": float(self.stage["lr"][name]),
                               "name": name})
        if self.caption_words_head is not None:  # trains with the tower, at its LR
            groups.append({"params": list(self.caption_words_head.parameters()),
                           "lr": float(self.stage["lr"]["vision"]), "name": "caption_words_head"})
        optimizer = torch.optim.AdamW(groups, weight_decay=float(self.stage["weight_decay"]),
                                      betas=tuple(self.stage.get("betas", (0.9, 0.999))))
        total = int(self.trainer.estimated_stepping_batches)
        warmup = int(round(float(self.stage["warmup_ratio"]) * total))
        schedule = partial(warmup_cosine, total_steps=total, warmup_steps=warmup,
                           min_lr_ratio=float(self.stage["min_lr_ratio"]))
        scheduler = LambdaLR(optimizer, schedule)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": "lr"}}
