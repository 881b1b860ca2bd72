"""The training loop ("Attention Is All You Need", section 5), resumable step for step.

One run lives in a directory: ``tokenizer.model``, ``run_config.json``, ``metrics.jsonl``,
``checkpoints/step-*/`` (the newest few), ``best/`` (the model with the best validation BLEU),
``averaged/`` (optional) and ``curves.png``. A run stopped at any moment (killed, even while it
writes a checkpoint) and started again with ``resume=True`` continues from its newest checkpoint
and ends with the same weights as a run that was never stopped: the batch order depends only on
the seed and the epoch, and the random-number state is saved with each checkpoint.

Faults stop training with a :class:`TrainingError` that names the run directory and the last good
checkpoint: a write that fails (full disk, read-only file system), or a loss or gradient that is
not finite for ``MAX_BAD_STEPS`` steps in a row (a single one skips its step, with a warning).

Under ``torchrun`` the same loop runs in every process (see :mod:`.distributed`): each step's
batches are shared out, gradients summed, and rank 0 alone validates and writes the run directory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from torch import nn

from selfattention.data import Batch, CorpusError, Example, Tokenizer, collate, token_batches
from selfattention.data.corpus_specs import load_pairs, parse_corpora, parse_corpus
from selfattention.data.pronoun_pairs import LinkedPair
from selfattention.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from selfattention.engine.onednn_linear import OneDNNLinears, onednn_available
from selfattention.model import Transformer, build_model
from selfattention.model_io import atomic_write, save_model
from selfattention.training.antecedent import AntecedentSupervision
from selfattention.training.checkpoint import (
    CHECKPOINTS,
    Progress,
    average_checkpoints,
    checkpoint_dir,
    list_checkpoints,
    load_checkpoint,
    remove_directory,
    remove_leftovers,
    replace_directory,
    save_checkpoint,
)
from selfattention.training.config import RunConfig
from selfattention.training.curves import plot_curves
from selfattention.training.distributed import (
    Distributed,
    DistributedError,
    setup_distributed,
    step_seed,
    wrap_model,
)
from selfattention.training.epoch_data import EpochData, encode_pairs
from selfattention.training.init_from import InitError, adopt_start, init_tokenizer, load_initial_weights
from selfattention.training.loss import label_smoothed_loss
from selfattention.training.metrics import MetricsLog
from selfattention.training.resume import (
    ResumeError,
    as_recorded,
    recorded_settings,
    refuse_changed_settings,
    refuse_lost_start,
)
from selfattention.training.run_log import TensorBoardLog, TextLog
from selfattention.training.schedule import scheduled_lr

log = logging.getLogger(__name__)

RUN_FILES = ("best", "tokenizer.model", "run_config.json", "metrics.jsonl")  # written by replacement
MAX_BAD_STEPS = 5  # consecutive steps with a non-finite loss or gradient before training gives up


class TrainingError(RuntimeError):
    """Training cannot go on; the message says why and where the last good checkpoint is."""


AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


TranslationScorer = Callable[[Transformer, Tokenizer, list[tuple[str, str]]], float | dict[str, float]]
"""Scores a model's translations of validation pairs (e.g. ``evaluation.greedy_bleu``): BLEU, or a dict with
"bleu" (which chooses the best model; higher is better) and other scores to record ("chrf")."""


class Trainer:
    def __init__(
        self,
        config: RunConfig,
        run_dir: Path | str,
        *,
        show_progress: bool = True,
        device: str = "cpu",
        distributed: Distributed | None = None,
        scorer: TranslationScorer | None = None,
    ) -> None:
        """``device``: ``cpu``, ``cuda`` or ``auto``; under torchrun, each process takes its LOCAL_RANK's GPU.

        ``scorer`` rates validation translations each epoch (the command line passes greedy BLEU);
        without one, the best model is the one with the lowest validation NLL.
        """
        self.scorer = scorer
        self.config = config
        self.run_dir = Path(run_dir)
        self.show_progress = show_progress
        self.metrics = MetricsLog(self.run_dir)
        self.device_request = device
        self.dist = distributed
        self.text_log: TextLog | None = None
        self.tensorboard: TensorBoardLog | None = None
        self.supervision: AntecedentSupervision | None = None  # train.antecedent_head's loss, set up by prepare
        self.antecedent_window: tuple[float, int] = (0.0, 0)  # its summed loss and linked sentences, to log

    # -- set-up ---------------------------------------------------------------------------------

    def prepare(self, resume: bool) -> None:
        recorded = recorded_settings(self.run_dir) if resume else None
        if recorded is not None:  # a resumed run: its own architecture, languages and start, unless the file says
            self.config = self._init(as_recorded, self.config, recorded)
        elif self.config.train.init_from and self.config.given:  # the starting model's, unless the file says
            self.config = self._init(adopt_start, self.config)
        train_cfg, data_cfg = self.config.train, self.config.data
        try:  # (layer, head) taught to find "it"'s antecedent, or None
            self.antecedent_head = self.config.supervised_head()
        except ValueError as error:
            raise TrainingError(str(error)) from None
        if train_cfg.threads > 0:
            torch.set_num_threads(train_cfg.threads)
        if self.dist is None:
            try:
                self.dist = setup_distributed(self.device_request)
            except DistributedError as error:
                raise TrainingError(str(error)) from None
        self.device = self.dist.device
        if train_cfg.precision == "fp16" and self.device.type != "cuda":
            raise TrainingError(
                f"train.precision=fp16 needs a CUDA device, and this run is on {self.device}; "
                "use train.precision=bf16 or float32 on CPU"
            )
        existing = list_checkpoints(self.run_dir)
        if existing and not resume:
            raise TrainingError(
                f"{self.run_dir} already holds checkpoints; pass --resume to continue it, or choose a new --out"
            )
        if recorded is not None:  # every process: each refuses alike, none waits for the others
            self._init(refuse_changed_settings, self.run_dir, self.config, recorded)
        main = self.dist.is_main
        if main:
            with self._writing("the run directory"):
                self.run_dir.mkdir(parents=True, exist_ok=True)
                remove_leftovers(self.run_dir, RUN_FILES)  # what a killed run left half-done
                remove_leftovers(self.run_dir / CHECKPOINTS)
                if self.text_log is not None:  # prepared before: one log
                    self.text_log.close()
                self.text_log = TextLog(self.run_dir)
        languages = {"source_lang": data_cfg.source_lang, "target_lang": data_cfg.target_lang}
        try:
            corpora = [
                load_pairs(spec, "train", data_cfg.data_dir, max_chars=data_cfg.max_chars, **languages)
                for spec in map(parse_corpus, data_cfg.corpora)
            ]
            # Several validation corpora ("multi30k+tatoeba"): the NLL over all their pairs, one BLEU over
            # train.valid_bleu_sentences of each, evenly spaced through it (so that no corpus is chosen for alone).
            valid_sets = [
                load_pairs(spec, "valid", data_cfg.data_dir, max_chars=data_cfg.max_chars, **languages)
                for spec in parse_corpora(data_cfg.valid_corpus)
            ]
        except CorpusError as error:
            raise TrainingError(str(error)) from None
        train_pairs = [pair for pairs in corpora for pair in pairs]
        self.valid_pairs = [pair for pairs in valid_sets for pair in pairs]
        self.bleu_pairs = [
            pair for pairs in valid_sets for pair in _spread(pairs, self.config.train.valid_bleu_sentences)
        ]
        if not train_pairs:
            raise TrainingError(f"the training corpora ({', '.join(data_cfg.corpora)}) hold no usable pairs")
        try:
            self.data = EpochData(corpora, data_cfg, train_cfg.seed)
        except ValueError as error:  # the corpora cannot make pronoun pairs
            raise TrainingError(str(error)) from None
        tokenizer_path = self.run_dir / "tokenizer.model"
        start = Path(train_cfg.init_from) if train_cfg.init_from and not (resume and existing) else None
        if resume and not existing and not train_cfg.init_from:
            self._init(refuse_lost_start, self.run_dir)
        if main:  # the others wait, then read what rank 0 wrote
            if start is not None:  # a fine-tuning run: the starting model's vocabulary
                self.tokenizer = self._init(init_tokenizer, start, data_cfg.case_markers)
                with self._writing("tokenizer.model"):
                    self.tokenizer.save(tokenizer_path)
            elif tokenizer_path.is_file():
                self.tokenizer = Tokenizer.load(tokenizer_path)
            else:
                # The text of the first epoch (each pair once, with its noise and pronoun pairs), so that
                # the vocabulary has pieces for capitals as well as for the corpora's own text.
                vocabulary_pairs = self.epoch_pairs(0, repeats=False)
                log.info("training a %d-piece joint vocabulary on %d pairs", data_cfg.vocab_size, len(vocabulary_pairs))
                self.tokenizer = Tokenizer.train(
                    [text for pair in vocabulary_pairs for text in pair],
                    data_cfg.vocab_size,
                    case_markers=data_cfg.case_markers,
                )
                with self._writing("tokenizer.model"):
                    self.tokenizer.save(tokenizer_path)
        self.dist.barrier()
        if not main:
            self.tokenizer = Tokenizer.load(tokenizer_path)
        model_cfg = replace(
            self.config.model,
            vocab_size=self.tokenizer.vocab_size,
            pad_id=PAD_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            source_lang=data_cfg.source_lang,  # the model records what it translates
            target_lang=data_cfg.target_lang,
        )
        self.config = replace(self.config, model=model_cfg)
        if main:
            text = json.dumps(self.config.to_dict(), indent=2) + "\n"
            with self._writing("run_config.json"):
                atomic_write(self.run_dir / "run_config.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))
        self.valid_examples = self._encode(self.valid_pairs)
        torch.manual_seed(train_cfg.seed)
        self.model = build_model(model_cfg)
        if start is not None:
            self._init(load_initial_weights, self.model, model_cfg, start)
            log.info("starting from the weights of %s", start)
        self.model = self.model.to(self.device)
        self.supervision = (
            None if self.antecedent_head is None else AntecedentSupervision(self.model, *self.antecedent_head)
        )
        self.optimizer = torch.optim.Adam(
            self.model.parameters(),
            lr=train_cfg.peak_lr,
            betas=train_cfg.adam_betas,
            eps=train_cfg.adam_eps,
            weight_decay=train_cfg.weight_decay,
        )
        self.scaler = torch.amp.GradScaler("cuda") if train_cfg.precision == "fp16" else None
        self.progress = Progress()
        self.saved_step = -1  # the step of the newest checkpoint on disk
        self.resumed_step = 0
        if resume and existing:
            self.progress, _ = load_checkpoint(existing[-1], self.model, self.optimizer, self.scaler)
            self.saved_step = self.resumed_step = self.progress.step
            log.info("resumed from %s (step %d, epoch %d)", existing[-1], self.progress.step, self.progress.epoch)
        if main:
            with self._writing("metrics.jsonl"):  # records after the checkpoint (all, without one) are redone
                self.metrics.truncate_after(self.progress.step)
            if existing and resume and self.progress.best_step == self.progress.step:  # publishing may have been cut
                self._publish(existing[-1], self.run_dir / "best")
        self.examples: list[Example] = []
        self.examples_epoch: int | None = None
        self._use_epoch(self.progress.epoch)
        self.network = wrap_model(self.model, self.dist)  # DistributedDataParallel under torchrun
        n_params = sum(p.numel() for p in self.model.parameters())
        log.info(
            "model: %.1fM parameters; %d training pairs, %d validation pairs; %s%s",
            n_params / 1e6,
            len(self.examples),
            len(self.valid_examples),
            self.device,
            f", {self.dist.world_size} processes" if self.dist.enabled else "",
        )

    def _init(self, step: Callable[..., Any], *args: Any) -> Any:
        """``step(*args)``, its refusal (a start or a resume that cannot be) raised as a TrainingError."""
        try:
            return step(*args)
        except (InitError, ResumeError) as error:
            raise TrainingError(str(error)) from None

    def epoch_pairs(self, epoch: int, *, repeats: bool = True) -> list[tuple[str, str]]:
        """The training pairs of ``epoch`` (:class:`~selfattention.training.epoch_data.EpochData`)."""
        return self.data.pairs(epoch, repeats=repeats)

    def _use_epoch(self, epoch: int) -> None:
        """Make ``self.examples`` the tokenised pairs of ``epoch`` (encoded once when no epoch draws anew)."""
        if epoch == self.examples_epoch:
            return
        if self.examples_epoch is None or self.data.draws_anew:
            pairs, links = self.data.linked_pairs(epoch)
            self.examples = self._encode(pairs, links if self.supervision is not None else None)
        self.examples_epoch = epoch

    def _encode(self, pairs: list[tuple[str, str]], links: list[LinkedPair | None] | None = None) -> list[Example]:
        """:func:`~selfattention.training.epoch_data.encode_pairs` with this run's tokenizer and model."""
        return encode_pairs(self.tokenizer, pairs, self.config.model.max_positions, links)

    # -- the loop -------------------------------------------------------------------------------

    def fit(self, resume: bool = False) -> Path:
        """Train until a stopping rule fires; return the directory of the best model.

        A run directory this call created is removed again if the start fails (bad data, bad
        settings): a failed start leaves nothing behind.
        """
        owned = self.dist is None  # a process group this trainer joins, it leaves
        created = not self.run_dir.exists()
        started = False
        try:
            self.prepare(resume)
            started = True
            return self._fit()
        except BaseException:
            first = self.dist.is_main if self.dist is not None else int(os.environ.get("RANK", "0")) == 0
            if created and not started and first and self.run_dir.is_dir() and not list_checkpoints(self.run_dir):
                self._close_logs()
                shutil.rmtree(self.run_dir, ignore_errors=True)
            raise
        finally:
            self._close_logs()
            if owned and self.dist is not None:
                self.dist.close()

    def _close_logs(self) -> None:
        for sink in (self.text_log, self.tensorboard):
            if sink is not None:
                sink.close()
        self.text_log = self.tensorboard = None

    def _fit(self) -> Path:
        assert self.dist is not None
        cfg = self.config.train
        group_size = cfg.accumulate * self.dist.world_size  # batches per optimiser step, over all processes
        started = time.monotonic() - self.progress.seconds
        stretch_start = time.monotonic()
        bad_steps = 0
        stop_reason = self._steps_used_up() or self._patience_used_up()  # a finished run, resumed, stays finished
        while self.progress.epoch < cfg.max_epochs and not stop_reason:
            self._use_epoch(self.progress.epoch)
            batches = token_batches(self.examples, cfg.max_tokens, seed=cfg.seed, epoch=self.progress.epoch)
            bar = self._bar(len(batches))
            window_tokens, window_start = 0, time.monotonic()
            while self.progress.batch_in_epoch < len(batches):
                group = batches[self.progress.batch_in_epoch : self.progress.batch_in_epoch + group_size]
                loss, nll, tokens = self._step([collate([self.examples[i] for i in b]) for b in group])
                self.progress.batch_in_epoch += len(group)
                if bar is not None:
                    bar.update(len(group))
                if loss is None:
                    bad_steps += 1
                    log.warning(
                        "step %d: loss or gradients not finite; update skipped (%d in a row)",
                        self.progress.step + 1,
                        bad_steps,
                    )
                    if bad_steps >= MAX_BAD_STEPS:
                        self.progress.seconds = time.monotonic() - started
                        raise TrainingError(
                            f"the loss or its gradients were not finite for {bad_steps} steps in a row; training "
                            f"in {self.run_dir} stopped. Last good checkpoint: {self._latest_name()}. "
                            "Try a lower train.peak_lr."
                        )
                    continue
                bad_steps = 0
                self.progress.tokens += tokens
                window_tokens += tokens
                now = time.monotonic()
                self.progress.seconds = now - started
                lr = self.optimizer.param_groups[0]["lr"]
                if self.dist.is_main and (self.progress.step % 25 == 0 or self.progress.step == 1):
                    rate = window_tokens / max(now - window_start, 1e-9)
                    self._write_metrics(
                        {
                            "kind": "train",
                            "step": self.progress.step,
                            "epoch": self.progress.epoch,
                            "loss": loss,
                            "nll": nll,
                            "lr": lr,
                            "tokens_per_s": rate,
                            "seconds": self.progress.seconds,
                            **self._antecedent_metric(),
                        }
                    )
                    window_tokens, window_start = 0, now
                    if bar is not None:
                        bar.set_postfix(loss=f"{nll:.3f}", lr=f"{lr:.2e}", tok_s=f"{rate:.0f}", step=self.progress.step)
                epoch_ends = self.progress.batch_in_epoch >= len(batches)  # its own checkpoint follows at once
                if cfg.valid_every and self.progress.step % cfg.valid_every == 0 and not epoch_ends:
                    stop_reason = self._validate(epoch_end=False)  # with its checkpoint
                elif cfg.checkpoint_every and self.progress.step % cfg.checkpoint_every == 0 and not epoch_ends:
                    self._checkpoint()
                stop_reason = stop_reason or self._steps_used_up()
                if not stop_reason and cfg.max_minutes and self.dist.any(now - stretch_start >= cfg.max_minutes * 60):
                    stop_reason = f"reached train.max_minutes={cfg.max_minutes:g} for this stretch"
                if stop_reason:
                    break
            if bar is not None:
                bar.close()
            if self.progress.batch_in_epoch >= len(batches):
                stop_reason = self._validate(epoch_end=True) or stop_reason
            elif self.saved_step != self.progress.step:
                self._checkpoint()
        if self.progress.best_step == 0 and self.progress.step > 0:  # a run of any length leaves a best/
            self._provisional_best()
        log.info("training stopped: %s", stop_reason or f"reached train.max_epochs={cfg.max_epochs}")
        if self.dist.is_main:
            self._finish()
        self.dist.barrier()  # the others return once rank 0 has written everything
        best = self.run_dir / "best"
        return best if best.is_dir() else Path(self._latest_name())

    def _step(self, batches: list[Batch]) -> tuple[float | None, float, int]:
        """One optimiser step over ``batches`` (gradient accumulation); loss per target token.

        Under torchrun ``batches`` are the step's batches of all processes: this one takes every
        ``world_size``-th from its rank on. Every process runs as many forward passes (one with no
        batch of its own repeats the first, weighted 0) so that DDP reduces the gradients together.
        """
        cfg = self.config.train
        assert self.dist is not None
        world, rank = self.dist.world_size, self.dist.rank
        self.network.train()
        self.optimizer.zero_grad(set_to_none=True)
        total_tokens = sum(batch.target_tokens for batch in batches)
        mine = batches[rank::world]
        passes = math.ceil(len(batches) / world)
        weights = [1.0] * len(mine) + [0.0] * (passes - len(mine))
        mine += [batches[0]] * (passes - len(mine))
        if self.dist.enabled:  # each process its own dropout masks, the same after a resume
            torch.manual_seed(step_seed(cfg.seed, self.progress.step, rank))
        # The supervised head's loss is a mean over the step's linked sentences (of all processes),
        # whatever their batches' token counts: train.antecedent_weight is its weight per linked sentence.
        total_links = sum(batch.links for batch in batches) if self.supervision is not None else 0
        loss_sum, nll_sum, antecedent_sum, finite = 0.0, 0.0, 0.0, True
        for index, (batch, weight) in enumerate(zip(mine, weights, strict=True)):
            batch = batch.to(self.device)
            with self._gradient_sync(index == passes - 1):
                with self._autocast(), self._linears(), self._capturing(batch):
                    real = batch.tgt_out != PAD_ID
                    logits = self.network(batch.src, batch.tgt_in, keep=real)  # (N, V): no padding rows
                    antecedent = self.supervision.losses(batch) if self.supervision is not None else None
                loss, nll = label_smoothed_loss(logits, batch.tgt_out[real], PAD_ID, cfg.label_smoothing)
                if not torch.isfinite(loss) or (antecedent is not None and not bool(torch.isfinite(antecedent).all())):
                    if not self.dist.enabled:
                        self.optimizer.zero_grad(set_to_none=True)
                        return None, math.nan, total_tokens
                    finite = False  # the others are already waiting in the all-reduce: go through with it
                share = loss / total_tokens if weight == 1.0 else loss * weight / total_tokens
                if antecedent is not None:
                    share = share + antecedent.sum() * (weight * cfg.antecedent_weight / total_links)
                (self.scaler.scale(share) if self.scaler is not None else share).backward()
            loss_sum += weight * float(loss.detach())
            nll_sum += weight * float(nll)
            if antecedent is not None:
                antecedent_sum += weight * float(antecedent.detach().sum())
        if self.dist.enabled:
            loss_sum, nll_sum, antecedent_sum, bad = self.dist.sum(
                [loss_sum, nll_sum, antecedent_sum, 0.0 if finite else 1.0]
            )
            if bad:
                self.optimizer.zero_grad(set_to_none=True)
                return None, math.nan, total_tokens
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        # The gradients' norm, clipped or not (with train.clip_norm=0 the factor is exactly 1): one
        # that is not finite skips the step, as a non-finite loss does.
        norm = nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip_norm if cfg.clip_norm > 0 else math.inf)
        if not torch.isfinite(norm) and self.scaler is None:  # fp16 overflows are the scaler's to skip
            self.optimizer.zero_grad(set_to_none=True)
            return None, math.nan, total_tokens
        lr = scheduled_lr(self.progress.step + 1, cfg.peak_lr, cfg.warmup_steps, cfg.max_steps, cfg.cooldown_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.progress.step += 1
        window_sum, window_links = self.antecedent_window
        self.antecedent_window = (window_sum + antecedent_sum, window_links + total_links)
        return loss_sum / total_tokens, nll_sum / total_tokens, total_tokens

    def _capturing(self, batch: Batch) -> contextlib.AbstractContextManager[None]:
        """The supervised head's input kept from this forward pass (nothing when it is off or the batch has no link)."""
        return contextlib.nullcontext() if self.supervision is None else self.supervision.capturing(batch)

    def _antecedent_metric(self) -> dict[str, float]:
        """The supervised head's mean loss per linked sentence since the last record (unweighted); then a new window."""
        total, links = self.antecedent_window
        self.antecedent_window = (0.0, 0)
        return {"antecedent_loss": total / links} if self.supervision is not None and links else {}

    def _gradient_sync(self, last: bool) -> contextlib.AbstractContextManager[None]:
        """DDP reduces gradients in the backward pass of the step's last batch only."""
        if last or not self.dist or not self.dist.enabled:
            return contextlib.nullcontext()
        return self.network.no_sync()  # type: ignore[operator]

    def _autocast(self) -> contextlib.AbstractContextManager[None]:
        dtype = AUTOCAST_DTYPES.get(self.config.train.precision)
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def _linears(self) -> contextlib.AbstractContextManager[object]:
        """Float32 CPU linear layers on oneDNN (its forward pass here, its backward with it)."""
        if not self.config.train.onednn_linear or self.device.type != "cpu" or not onednn_available():
            return contextlib.nullcontext()
        return OneDNNLinears()

    # -- validation, checkpoints ----------------------------------------------------------------

    def validate(self) -> dict[str, float]:
        """Validation NLL per token (teacher forcing) and greedy BLEU."""
        self.model.eval()
        nll_sum, tokens = 0.0, 0
        with torch.inference_mode():
            for indices in token_batches(self.valid_examples, self.config.train.max_tokens, seed=0, epoch=0):
                batch = collate([self.valid_examples[i] for i in indices]).to(self.device)
                logits = self.model(batch.src, batch.tgt_in)
                _, nll = label_smoothed_loss(logits, batch.tgt_out, PAD_ID, 0.0)
                nll_sum += float(nll)
                tokens += batch.target_tokens
        result = {"nll": nll_sum / max(tokens, 1)}
        pairs = self.bleu_pairs
        if self.scorer is not None and pairs:
            scores = self.scorer(self.model, self.tokenizer, pairs)
            result.update(scores if isinstance(scores, dict) else {"bleu": scores})
        return result

    def _validate(self, epoch_end: bool) -> str:
        """Validate, checkpoint, and publish ``best/`` when the score improved; a stop reason or "".

        At an epoch's end (``epoch_end``) the epoch counter moves on; with ``train.valid_every`` this
        also runs every N steps. Best-model choice and patience count validations, wherever they fall.
        """
        assert self.dist is not None
        result = self.dist.broadcast(self.validate() if self.dist.is_main else None)  # the others wait for it
        if self.dist.is_main:
            self._write_metrics(
                {
                    "kind": "valid",
                    "step": self.progress.step,
                    "epoch": self.progress.epoch,
                    "seconds": self.progress.seconds,
                    "at": "epoch end" if epoch_end else "step",
                    **result,
                }
            )
        where = f"epoch {self.progress.epoch}" if epoch_end else f"step {self.progress.step}"
        log.info("%s: validation %s", where, ", ".join(f"{k} {v:.3f}" for k, v in result.items()))
        score = result.get("bleu", -result["nll"])  # BLEU when a scorer is given, else minus NLL
        improved = self.progress.best_step == 0 or score > self.progress.best_bleu  # the first is the best so far
        if improved:
            self.progress.best_bleu, self.progress.best_step, self.progress.stale_epochs = (
                score,
                self.progress.step,
                0,
            )
        else:
            self.progress.stale_epochs += 1
        if epoch_end:
            self.progress.epoch += 1
            self.progress.batch_in_epoch = 0
        checkpoint = self._checkpoint(epoch_end=epoch_end)
        if improved and self.dist.is_main:
            self._publish(checkpoint, self.run_dir / "best")
        return self._patience_used_up()

    def _provisional_best(self) -> None:
        """Before any validation: ``best/`` is the newest checkpoint, its scores logged.

        Nothing is recorded in the run's state or metrics, so that a run stopped here and resumed
        stays the run that was never stopped; its first validation chooses ``best/`` again.
        """
        assert self.dist is not None
        if self.saved_step != self.progress.step:
            self._checkpoint()
        result = self.dist.broadcast(self.validate() if self.dist.is_main else None)
        log.info(
            "no validation yet: best/ is the model at step %d (%s)",
            self.progress.step,
            ", ".join(f"validation {k} {v:.3f}" for k, v in result.items()),
        )
        if self.dist.is_main:
            self._publish(checkpoint_dir(self.run_dir, self.progress.step), self.run_dir / "best")

    def _steps_used_up(self) -> str:
        max_steps = self.config.train.max_steps
        return f"reached train.max_steps={max_steps}" if max_steps and self.progress.step >= max_steps else ""

    def _patience_used_up(self) -> str:
        patience = self.config.train.patience
        if patience and self.progress.stale_epochs >= patience:
            return f"no better validation score for {patience} validations"
        return ""

    def _checkpoint(self, epoch_end: bool = False) -> Path:
        """Write a checkpoint (rank 0 only; every process gets its path)."""
        self.saved_step = self.progress.step
        if self.dist is not None and not self.dist.is_main:
            return checkpoint_dir(self.run_dir, self.progress.step)
        average_last = self.config.train.average_last
        with self._writing("a checkpoint"):
            if epoch_end and average_last > 1:  # before the checkpoint: a resumed run writes it again
                epochs = self.run_dir / "epochs"
                save_model(self.model, epochs / f"epoch-{self.progress.epoch:03d}")
                remove_leftovers(epochs)
                for old in sorted(epochs.glob("epoch-*"))[:-average_last]:
                    remove_directory(old)
            return save_checkpoint(
                self.run_dir,
                self.model,
                self.tokenizer,
                self.optimizer,
                self.progress,
                self.config.to_dict(),
                self.config.train.keep_checkpoints,
                grad_scaler=self.scaler,
            )

    def _publish(self, checkpoint: Path, target: Path) -> None:
        """Copy a checkpoint's model files to ``target`` (``best/``), which is never left half-written."""
        tmp = target.with_name(f".tmp-{target.name}")
        with self._writing(f"{target.name}/"):
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                tmp.mkdir(parents=True)
                for name in ("config.json", "model.safetensors", "tokenizer.model"):
                    shutil.copy2(checkpoint / name, tmp / name)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)  # a full disk gets its space back
                raise
            replace_directory(tmp, target)

    def _write_metrics(self, record: dict[str, Any]) -> None:
        with self._writing("metrics.jsonl"):
            self.metrics.write(record)
        if self.tensorboard is None and self.config.train.tensorboard and self.dist is not None and self.dist.is_main:
            # Steps after the checkpoint a resumed run starts from are redone: their old events go.
            self.tensorboard = TensorBoardLog(self.run_dir, purge_step=self.resumed_step + 1)
        if self.tensorboard is not None:
            self.tensorboard.write(record)

    @contextlib.contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """Turn a failed write into a TrainingError that names the run directory and the last good checkpoint."""
        try:
            yield
        except (OSError, SafetensorError) as error:  # safetensors reports I/O errors as SafetensorError
            reason = getattr(error, "strerror", None) or error
            where = getattr(error, "filename", None)
            raise TrainingError(
                f"cannot write {what} in {self.run_dir} ({reason}{f': {where}' if where else ''}); training "
                f"stopped. Last good checkpoint: {self._latest_name()}."
            ) from None

    def _finish(self) -> None:
        n = self.config.train.average_last
        if n > 1:
            epochs = sorted((self.run_dir / "epochs").glob("epoch-*"))[-n:]
            if len(epochs) >= 2:
                average_checkpoints(epochs, self.model)
                with self._writing("averaged/"):
                    save_model(self.model, self.run_dir / "averaged")
                    self.tokenizer.save(self.run_dir / "averaged")
                log.info("averaged %d epoch checkpoints into %s", len(epochs), self.run_dir / "averaged")
        try:
            plot_curves(self.run_dir)
        except (ImportError, OSError, ValueError) as error:  # FileNotFoundError is an OSError
            log.warning("learning curves not drawn: %s", error)

    def _latest_name(self) -> str:
        checkpoints = list_checkpoints(self.run_dir)
        return str(checkpoints[-1]) if checkpoints else "none yet"

    def _bar(self, total: int):  # type: ignore[no-untyped-def]
        if not self.show_progress or (self.dist is not None and not self.dist.is_main):
            return None
        from tqdm import tqdm

        return tqdm(
            total=total,
            initial=self.progress.batch_in_epoch,
            desc=f"epoch {self.progress.epoch}",
            unit="batch",
            dynamic_ncols=True,
            mininterval=2.0,
        )


def _spread(pairs: list[tuple[str, str]], count: int) -> list[tuple[str, str]]:
    """At most ``count`` of ``pairs``, evenly spaced (a corpus sorted by length gives every length)."""
    if len(pairs) <= count:
        return pairs
    return [pairs[i * len(pairs) // count] for i in range(count)]


def train(
    config: RunConfig,
    run_dir: Path | str,
    *,
    resume: bool = False,
    show_progress: bool = True,
    device: str = "cpu",
    scorer: TranslationScorer | None = None,
) -> Path:
    """Train a translator; returns the best model's directory (or, before any epoch ends, the newest checkpoint).

    Under torchrun (RANK, WORLD_SIZE, ... in the environment) this process joins the others.
    """
    return Trainer(config, run_dir, show_progress=show_progress, device=device, scorer=scorer).fit(resume=resume)
