"""DyadGAN-style two-stage generation of an agent's face from its partner's affect, as a
LightningModule (Interactive GAN, Nojavanasghari, Huang & Khan, arXiv 1801.09092).

Pipeline (paper Sec. 3): the interviewee's affect over the last ``history`` frames (the
condition) and a face-shape vector z -> **stage 1** cGAN -> the interviewer's sketch ->
**stage 2** U-Net cGAN -> the interviewer's face. z comes from the **affect-shape dictionary**
(Sec. 3.3, :mod:`zoo.dyadgan.dictionary`) or a **conditional LSTM** (Sec. 3.4) over the affect and
the agent's own last 100 shape vectors, overlapping (one frame ahead, FIFO) or non-overlapping
(the next 100 frames). ``architecture="one_stage"`` is the Figure 8 baseline: affect + z ->
face with one DCGAN pair.

Training (manual optimisation, every batch): the two C-LSTMs by MSE on standardised shape
parameters; each GAN with one discriminator update then ``generator_steps`` generator updates
(paper Sec. 4.3: "generators were updated twice for each discriminator update"), vanilla BCE
GAN loss, D loss x 0.5 and an L1 term to the real image (pix2pix; notes B.3, F.4). During training
z is the real frame's shape vector and stage 2 reads real sketches (the paper trains the two
networks on ground-truth pairs). Where the paper is silent: L1 weights 10 for the sketch stage
(DyadGAN shape GAN's class default, notes F.5) and 100 for the face stage (pix2pix); BatchNorm in
eval mode at validation and generation (pix2pix's ``--eval``).

Validation logs ``val/lstm_overlap_mse`` and ``val/lstm_nonoverlap_mse`` (Table 2, one window
ahead from real history), ``val/sketch_l1`` and ``val/face_l1`` (end to end from real z and
affect) and ``val/loss`` = ``val/face_l1``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor

from datamodules.features.face_state import AFFECT_CLASSES
from zoo.common.eval_mode import evaluation_mode
from zoo.common.pretrained import load_pretrained
from zoo.dyadgan.dictionary import AffectShapeDictionary, adjacent_step_limit
from zoo.dyadgan.nets import (
    AffectEncoder,
    ConditionalDCGANDiscriminator,
    ConditionalDCGANGenerator,
    ConditionalLSTM,
    PatchDiscriminator,
    UNetGenerator,
)

__all__ = ["DyadGAN", "pix2pix_adam", "lstm_adam", "ARCHITECTURES", "STRATEGIES"]

ARCHITECTURES = ("two_stage", "one_stage")
STRATEGIES = ("dictionary", "lstm", "lstm_nonoverlap")
NUM_AFFECTS = len(AFFECT_CLASSES)


def pix2pix_adam(params: Iterable) -> torch.optim.Optimizer:
    """Adam lr 2e-4, betas (0.5, 0.999): DCGAN / pix2pix / DyadGAN's TF code."""
    return torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999))


def lstm_adam(params: Iterable) -> torch.optim.Optimizer:
    """Adam lr 1e-3 for the C-LSTMs (the paper gives no LSTM optimiser settings)."""
    return torch.optim.Adam(params, lr=1e-3)


def _to_uint8(images: Tensor) -> Tensor:
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def affect_windows(affect: Tensor, history: int) -> Tensor:
    """Edge-padded windows (B, T, H, A): window n holds the ``history`` frames before frame n of
    ``affect`` (B, T, A); frames before the start repeat the first one."""
    padded = torch.cat([repeat(affect[:, :1], "b 1 a -> b h a", h=history), affect], dim=1)
    return rearrange(padded[:, :-1].unfold(1, history, 1), "b t a h -> b t h a")


class DyadGAN(L.LightningModule):
    """Affect -> (z) -> sketch -> face, with the dictionary and C-LSTM z strategies.

    Args (YAML primitives):
        shape_dim: P, the shape parameters per frame = 4 + the DataModule's ``num_modes``.
        history: partner affect frames before a generated frame, and C-LSTM history (paper 100).
        horizon: frames the non-overlapping C-LSTM emits at once (paper 100) = the data's ``horizon``.
        image_size: sketch / face side S (a power of two; the U-Net has log2(S) downs: 8 at 256).
        architecture: "two_stage" (paper) or "one_stage" (Figure 8 baseline).
        affect_summary: "flatten" (DyadGAN's flattened window) or "mean" descriptor.
        condition_dim: width of the encoded affect condition.
        ngf, ndf: DCGAN widths (stage 1 / one-stage); unet_ngf, patch_ndf: stage 2 widths.
        patch_layers: stride-2 layers of the PatchGAN (pix2pix 3 = 70x70 patches; needs S >= 3 * 2 ** n).
        unet_dropout: pix2pix dropout in the U-Net's inner decoder blocks.
        sketch_l1_weight, face_l1_weight: L1 weights of the stage-1 sketch and of the face (stage 2, or
            the one-stage baseline's face).
        generator_steps: generator updates per discriminator update (paper 2).
        lstm_hidden, lstm_layers: C-LSTM size (both settings).
        dictionary_min_cluster_size, dictionary_max_subclusters, dictionary_candidates,
        dictionary_step_quantile: see :mod:`zoo.dyadgan.dictionary` (paper: >= 100, 3-9 sub-clusters).
        eval_strategy: z strategy of ``generate_sequences`` / ``predict_step``.
        predict_num_samples: K of ``predict_step``.
        optimizer: GAN optimiser (default Adam 2e-4, (0.5, 0.999)); lstm_optimizer: C-LSTMs' (Adam 1e-3).
        binarize_sketch: threshold stage 1's sketch at 0 before stage 2 (generation and evaluation;
            training feeds stage 2 real sketches, as the paper).
        pretrained: a manifest name or weights file loaded (strictly) at construction, to fine-tune.
    """

    def __init__(
        self,
        shape_dim: int = 24,
        history: int = 100,
        horizon: int = 100,
        image_size: int = 64,
        architecture: str = "two_stage",
        affect_summary: str = "flatten",
        condition_dim: int = 64,
        ngf: int = 64,
        ndf: int = 64,
        unet_ngf: int = 64,
        patch_ndf: int = 64,
        patch_layers: int = 3,
        unet_dropout: float = 0.5,
        binarize_sketch: bool = True,
        sketch_l1_weight: float = 10.0,
        face_l1_weight: float = 100.0,
        generator_steps: int = 2,
        lstm_hidden: int = 256,
        lstm_layers: int = 2,
        dictionary_min_cluster_size: int = 100,
        dictionary_max_subclusters: int = 9,
        dictionary_candidates: int = 8,
        dictionary_step_quantile: float = 0.95,
        eval_strategy: str = "dictionary",
        predict_num_samples: int = 1,
        optimizer: OptimizerCallable = pix2pix_adam,
        lstm_optimizer: OptimizerCallable = lstm_adam,
        pretrained: str | None = None,
    ) -> None:
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture: expected one of {ARCHITECTURES}, got {architecture!r}")
        if eval_strategy not in STRATEGIES:
            raise ValueError(f"eval_strategy: expected one of {STRATEGIES}, got {eval_strategy!r}")
        if generator_steps < 1 or predict_num_samples < 1 or shape_dim < 1 or history < 1 or horizon < 1:
            raise ValueError("generator_steps, predict_num_samples, shape_dim, history, horizon: expected >= 1")
        if sketch_l1_weight < 0 or face_l1_weight < 0:
            raise ValueError("sketch_l1_weight, face_l1_weight: expected >= 0")
        if image_size < 8 or image_size & (image_size - 1):
            raise ValueError(f"image_size: expected a power of two >= 8, got {image_size}")
        if image_size < 3 * 2**patch_layers:
            raise ValueError(f"patch_layers={patch_layers}: the PatchGAN needs image_size >= {3 * 2**patch_layers}, "
                             f"got {image_size} (use fewer layers)")
        self.save_hyperparameters(ignore=["optimizer", "lstm_optimizer"])
        self.automatic_optimization = False
        self.optimizer, self.lstm_optimizer = optimizer, lstm_optimizer
        self.lstm_overlap = ConditionalLSTM(shape_dim, NUM_AFFECTS, lstm_hidden, lstm_layers, horizon=1)
        self.lstm_nonoverlap = ConditionalLSTM(shape_dim, NUM_AFFECTS, lstm_hidden, lstm_layers, horizon=horizon)
        self.dictionary = AffectShapeDictionary(shape_dim, NUM_AFFECTS, dictionary_min_cluster_size,
                                                dictionary_max_subclusters, dictionary_candidates)
        out_channels = 1 if architecture == "two_stage" else 3
        # stage 1 (or the one-stage baseline): affect + z -> sketch (or face)
        self.g_affect = AffectEncoder(history, NUM_AFFECTS, condition_dim, affect_summary)
        self.d_affect = AffectEncoder(history, NUM_AFFECTS, condition_dim, affect_summary)
        self.generator = ConditionalDCGANGenerator(shape_dim, condition_dim, image_size, out_channels, ngf)
        self.discriminator = ConditionalDCGANDiscriminator(out_channels, condition_dim, image_size, ndf)
        if architecture == "two_stage":
            self.translator = UNetGenerator(1, 3, int(math.log2(image_size)), unet_ngf, image_size, unet_dropout)
            self.translator_discriminator = PatchDiscriminator(4, patch_ndf, patch_layers)
        if pretrained is not None:  # fine-tune from published weights (zoo/common/pretrained.py)
            load_pretrained(self, pretrained)

    @property
    def two_stage(self) -> bool:
        return self.hparams.architecture == "two_stage"

    # ------------------------------------------------------------------ batch handling
    def _unpack(self, batch: Mapping[str, Any]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        for key in ("affect", "shape", "sketch", "face"):
            if key not in batch:
                raise ValueError(f"batch has no '{key}' (keys: {sorted(batch)}); DyadGAN reads InterviewDataModule batches")
        affect, shape, sketch, face = batch["affect"], batch["shape"], batch["sketch"], batch["face"]
        h, f, p, s = self.hparams.history, self.hparams.horizon, self.hparams.shape_dim, self.hparams.image_size
        if affect.ndim != 3 or affect.shape[1:] != (h + f, NUM_AFFECTS):
            raise ValueError(f"batch['affect']: expected (B, history + horizon = {h + f}, 8), got {tuple(affect.shape)} "
                             "(match model history/horizon to the data's)")
        if shape.shape[1:] != (h + f, p):
            raise ValueError(f"batch['shape']: expected (B, {h + f}, shape_dim={p}), got {tuple(shape.shape)} "
                             "(set model.shape_dim = 4 + data.num_modes)")
        if sketch.shape[1:] != (1, s, s) or face.shape[1:] != (3, s, s):
            raise ValueError(f"batch sketch {tuple(sketch.shape)} / face {tuple(face.shape)}: expected (B, 1, {s}, {s}) / "
                             f"(B, 3, {s}, {s}) (match model.image_size to data.image_size)")
        return affect, shape, sketch, face

    # ------------------------------------------------------------------ generation pieces
    def render(self, z: Tensor, window: Tensor) -> tuple[Tensor | None, Tensor]:
        """z (N, P) and affect windows (N, H, 8) -> (sketch (N, 1, S, S) or None, face (N, 3, S, S)) in [-1, 1]."""
        image = self.generator(z, self.g_affect(window))
        if not self.two_stage:
            return None, image
        if self.hparams.binarize_sketch:
            # Stage 2 is trained on clean binary sketches; stage 1's grey speckle would otherwise
            # become hair and skin texture. The released code cleaned generated sketches too
            # (MATLAB "openbw", bnojavan/Facial-Expressions-in-Dyadic-Interactions ReadMe_old.txt).
            image = torch.where(image > 0, 1.0, -1.0).to(image.dtype)
        return image, self.translator(image)

    @torch.no_grad()
    def sample_z(self, affect: Tensor, strategy: str, num_samples: int = 1, shape_history: Tensor | None = None,
                 generator: torch.Generator | None = None) -> Tensor:
        """z sequences (B, K, T, P) for per-frame partner affect (B, T, 8).

        ``dictionary``: the affect label of frame n is the argmax of the mean affect over the
        ``history`` frames before it. ``lstm`` / ``lstm_nonoverlap``: rolled out from
        ``shape_history`` (B, H, P) (default: zeros = the training mean shape), deterministic, so the
        K samples are copies.
        """
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy: expected one of {STRATEGIES}, got {strategy!r}")
        h = self.hparams.history
        if strategy == "dictionary":
            return self.dictionary.sample(affect_windows(affect, h).mean(dim=2), num_samples, generator)
        batch, frames = affect.shape[:2]
        if shape_history is None:
            shape_history = affect.new_zeros(batch, h, self.hparams.shape_dim)
        if shape_history.shape != (batch, h, self.hparams.shape_dim):
            raise ValueError(f"shape_history: expected ({batch}, {h}, {self.hparams.shape_dim}), got {tuple(shape_history.shape)}")
        padded = torch.cat([repeat(affect[:, :1], "b 1 a -> b h a", h=h), affect], dim=1)[:, :h + frames - 1]
        lstm = self.lstm_overlap if strategy == "lstm" else self.lstm_nonoverlap
        z = lstm.rollout(padded, shape_history, frames)
        return repeat(z, "b t p -> b k t p", k=num_samples)

    @torch.no_grad()
    def generate(self, affect_sequence, strategy: str = "dictionary", num_samples: int = 1,
                 shape_history: Tensor | None = None, chunk: int = 64,
                 generator: torch.Generator | None = None) -> dict[str, Tensor | None]:
        """Generate the agent's sketch sequence and face video for a partner affect sequence.

        ``affect_sequence``: (T, 8) or (B, T, 8) per-frame likelihoods, paper order
        (joy, anger, surprise, fear, contempt, disgust, sadness, neutral). Returns
        ``{"shape": float (B, K, T, P), "sketch": uint8 (B, K, T, S, S) or None (one-stage),
        "face": uint8 (B, K, T, S, S, 3)}``. Runs in eval mode and restores the mode after.
        """
        affect = torch.as_tensor(np.asarray(affect_sequence) if not isinstance(affect_sequence, Tensor) else affect_sequence,
                                 dtype=torch.float32, device=self.device)
        if affect.ndim == 2:
            affect = affect[None]
        if affect.ndim != 3 or affect.shape[-1] != NUM_AFFECTS or affect.shape[1] < 1:
            raise ValueError(f"affect_sequence: expected (T, 8) or (B, T, 8) likelihoods {AFFECT_CLASSES}, got {tuple(affect.shape)}")
        if not torch.isfinite(affect).all():
            raise ValueError("affect_sequence: contains NaN or inf")
        if chunk < 1:
            raise ValueError(f"chunk: expected >= 1, got {chunk}")
        with evaluation_mode(self):
            z = self.sample_z(affect, strategy, num_samples, shape_history, generator)
            batch, k, frames = z.shape[:3]
            windows = repeat(affect_windows(affect, self.hparams.history), "b t h a -> (b k t) h a", k=k)
            flat_z = rearrange(z, "b k t p -> (b k t) p")
            sketches, faces = [], []
            for start in range(0, len(flat_z), chunk):
                sketch, face = self.render(flat_z[start:start + chunk], windows[start:start + chunk])
                faces.append(_to_uint8(face).permute(0, 2, 3, 1).cpu())
                if sketch is not None:
                    sketches.append(_to_uint8(sketch)[:, 0].cpu())
        s = self.hparams.image_size
        return {
            "shape": z.float().cpu(),
            "sketch": torch.cat(sketches).reshape(batch, k, frames, s, s) if sketches else None,
            "face": torch.cat(faces).reshape(batch, k, frames, s, s, 3),
        }

    @torch.no_grad()
    def generate_sequences(self, batch: Mapping[str, Any], num_samples: int = 1) -> Tensor:
        """(B, K, F, P) z for the batch's last ``horizon`` frames (DyadicMetricsCallback): affect
        and, for the C-LSTMs, the real first ``history`` shape vectors come from the batch."""
        affect, shape, _, _ = self._unpack(batch)
        h = self.hparams.history
        strategy = self.hparams.eval_strategy
        if strategy == "dictionary":
            means = affect.unfold(1, h, 1)[:, :-1].mean(dim=-1)  # window before each of frames h..h+F-1
            return self.dictionary.sample(means, num_samples)
        lstm = self.lstm_overlap if strategy == "lstm" else self.lstm_nonoverlap
        z = lstm.rollout(affect[:, :-1], shape[:, :h], shape.shape[1] - h)
        return repeat(z, "b t p -> b k t p", k=num_samples)

    # ------------------------------------------------------------------ dictionary
    def fit_dictionary(self, datamodule, seed: int = 0) -> AffectShapeDictionary:
        """Fit the affect-shape dictionary on an InterviewDataModule's training frames."""
        if not hasattr(datamodule, "dictionary_data"):
            raise ValueError(f"{type(datamodule).__name__} has no dictionary_data(); use InterviewDataModule")
        shapes, affect = datamodule.dictionary_data()
        if shapes.shape[1] != self.hparams.shape_dim:
            raise ValueError(f"data has {shapes.shape[1]} shape parameters, model.shape_dim={self.hparams.shape_dim}")
        limit = adjacent_step_limit(datamodule.shape_parameters("train"), self.hparams.dictionary_step_quantile)
        return self.dictionary.fit(shapes, affect, np.maximum(limit, 1e-6), seed=seed).to(self.device)

    def on_fit_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if not self.dictionary.fitted and datamodule is not None and hasattr(datamodule, "dictionary_data"):
            self.fit_dictionary(datamodule)

    # ------------------------------------------------------------------ training
    def _gan_round(self, g_opt, d_opt, make_fake, discriminate, real: Tensor, l1_weight: float, prefix: str,
                   batch_size: int) -> None:
        """One discriminator update, then ``generator_steps`` generator updates (paper Sec. 4.3)."""
        self.toggle_optimizer(d_opt)
        fake = make_fake().detach()
        real_logits, fake_logits = discriminate(real), discriminate(fake)
        d_loss = 0.5 * (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                        + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
        d_opt.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        d_opt.step()
        self.untoggle_optimizer(d_opt)
        self.toggle_optimizer(g_opt)
        for _ in range(self.hparams.generator_steps):
            fake = make_fake()
            logits = discriminate(fake)
            adversarial = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
            l1 = F.l1_loss(fake, real)
            g_opt.zero_grad(set_to_none=True)
            self.manual_backward(adversarial + l1_weight * l1)
            g_opt.step()
        self.untoggle_optimizer(g_opt)
        self.log_dict({f"train/{prefix}_d_loss": d_loss.detach(), f"train/{prefix}_g_adv": adversarial.detach(),
                       f"train/{prefix}_l1": l1.detach()}, on_step=True, on_epoch=True, batch_size=batch_size)

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        affect, shape, sketch, face = self._unpack(batch)
        h, batch_size = self.hparams.history, affect.shape[0]
        optimizers = self.optimizers()
        lstm_opt, g_opt, d_opt = optimizers[:3]
        # C-LSTMs: one frame ahead (overlapping) and the next `horizon` frames (non-overlapping)
        self.toggle_optimizer(lstm_opt)
        overlap = F.mse_loss(self.lstm_overlap(affect[:, :h], shape[:, :h]), shape[:, h:h + 1])
        nonoverlap = F.mse_loss(self.lstm_nonoverlap(affect[:, :h], shape[:, :h]), shape[:, h:])
        lstm_opt.zero_grad(set_to_none=True)
        self.manual_backward(overlap + nonoverlap)
        lstm_opt.step()
        self.untoggle_optimizer(lstm_opt)
        self.log_dict({"train/lstm_overlap_mse": overlap.detach(), "train/lstm_nonoverlap_mse": nonoverlap.detach()},
                      on_step=True, on_epoch=True, batch_size=batch_size)

        window, z = affect[:, :h], shape[:, h]
        first_target = sketch if self.two_stage else face
        self._gan_round(g_opt, d_opt, lambda: self.generator(z, self.g_affect(window)),
                        lambda image: self.discriminator(image, self.d_affect(window)), first_target,
                        # the one-stage baseline makes faces: the face L1 weight, as stage 2 (with the
                        # sketch weight 10 its discriminator wins and the generator collapses to noise)
                        self.hparams.sketch_l1_weight if self.two_stage else self.hparams.face_l1_weight,
                        "sketch" if self.two_stage else "face", batch_size)
        if self.two_stage:
            # stage 2 reads real sketches, as the paper trains it on (sketch, face) pairs
            g2_opt, d2_opt = optimizers[3:5]
            self._gan_round(g2_opt, d2_opt, lambda: self.translator(sketch),
                            lambda image: self.translator_discriminator(sketch, image), face,
                            self.hparams.face_l1_weight, "translator", batch_size)

    # ------------------------------------------------------------------ evaluation
    def _evaluate(self, batch: Mapping[str, Any], stage: str) -> Tensor:
        affect, shape, sketch, face = self._unpack(batch)
        h, batch_size = self.hparams.history, affect.shape[0]
        made_sketch, made_face = self.render(shape[:, h], affect[:, :h])
        values = {
            "lstm_overlap_mse": F.mse_loss(self.lstm_overlap(affect[:, :h], shape[:, :h]), shape[:, h:h + 1]),
            "lstm_nonoverlap_mse": F.mse_loss(self.lstm_nonoverlap(affect[:, :h], shape[:, :h]), shape[:, h:]),
            "face_l1": F.l1_loss(made_face, face),
        }
        if made_sketch is not None:
            values["sketch_l1"] = F.l1_loss(made_sketch, sketch)
        self.log_dict({f"{stage}/{k}": v for k, v in values.items()}, on_epoch=True, batch_size=batch_size, sync_dist=True)
        self.log(f"{stage}/loss", values["face_l1"], on_epoch=True, prog_bar=True, batch_size=batch_size, sync_dist=True)
        return values["face_l1"]

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        return self._evaluate(batch, "val")

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        return self._evaluate(batch, "test")

    def predict_step(self, batch: Mapping[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict:
        result = {"shape": self.generate_sequences(batch, self.hparams.predict_num_samples)}
        for key in ("index", "start"):
            if key in batch:
                result[key] = batch[key]
        return result

    @torch.no_grad()
    def image_pairs(self, batch: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        """(generated, real) uint8 faces (B, 3, S, S) from the real z and affect (RealismCallback)."""
        affect, shape, _, face = self._unpack(batch)
        h = self.hparams.history
        _, made = self.render(shape[:, h], affect[:, :h])
        return _to_uint8(made), _to_uint8(face)

    @torch.no_grad()
    def media_samples(self, batch: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Rows of [generated sketch | generated face | real face] for the first 4 items (SampleMediaCallback)."""
        affect, shape, _, face = self._unpack(batch)
        h, n = self.hparams.history, min(4, affect.shape[0])
        made_sketch, made_face = self.render(shape[:n, h], affect[:n, :h])
        columns = [_to_uint8(made_face), _to_uint8(face[:n])]
        if made_sketch is not None:
            columns.insert(0, _to_uint8(made_sketch).expand(-1, 3, -1, -1))
        grid = rearrange(torch.stack(columns), "c n ch hh ww -> (n hh) (c ww) ch")
        return {"dyadgan_samples": grid.cpu().numpy()}

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self):
        lstm = self.lstm_optimizer(list(self.lstm_overlap.parameters()) + list(self.lstm_nonoverlap.parameters()))
        g = self.optimizer(list(self.generator.parameters()) + list(self.g_affect.parameters()))
        d = self.optimizer(list(self.discriminator.parameters()) + list(self.d_affect.parameters()))
        if not self.two_stage:
            return [lstm, g, d]
        return [lstm, g, d, self.optimizer(self.translator.parameters()),
                self.optimizer(self.translator_discriminator.parameters())]

    # ------------------------------------------------------------------ facezoo generate
    @classmethod
    def add_generate_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--affect", type=Path, required=True, action="append",
                            help="partner affect per frame: an interviewee_affect.csv (frame + 8 classes) or a (T, 8) "
                                 ".npy in the paper's order (repeatable)")
        parser.add_argument("--strategy", choices=STRATEGIES, default="dictionary",
                            help="z strategy: affect-shape dictionary (default) or a C-LSTM")
        parser.add_argument("--shape-history", type=Path, default=None,
                            help="(H, P) .npy of the agent's last H standardised shape vectors for the C-LSTMs "
                                 "(default: the training mean shape)")
        parser.add_argument("--fps", type=float, default=30.0, help="frame rate of the written videos (default 30)")

    def generate_to_files(self, args: argparse.Namespace, out_dir: Path) -> list[Path]:
        from datamodules.features.io import save_npy, write_video
        from datamodules.interview import read_affect_csv

        history = None
        if args.shape_history is not None:
            if not args.shape_history.is_file():
                raise FileNotFoundError(f"--shape-history {args.shape_history}: no such file")
            history = torch.as_tensor(np.load(args.shape_history), dtype=torch.float32, device=self.device)[None]
        written: list[Path] = []
        for path in args.affect:
            if not path.is_file():
                raise FileNotFoundError(f"--affect {path}: no such file")
            affect = read_affect_csv(path) if path.suffix.lower() == ".csv" else np.load(path)
            out = self.generate(affect, args.strategy, args.num_samples, history)
            stem = f"{path.stem}_{args.strategy}"
            target = out_dir / f"{stem}_shape.npy"
            save_npy(target, out["shape"][0].numpy())
            written.append(target)
            for k in range(args.num_samples):
                target = out_dir / f"{stem}_sample{k}_face.mp4"
                write_video(target, out["face"][0, k].numpy(), fps=args.fps)
                written.append(target)
                if out["sketch"] is not None:
                    target = out_dir / f"{stem}_sample{k}_sketch.mp4"
                    write_video(target, repeat(out["sketch"][0, k], "t h w -> t h w c", c=3).contiguous().numpy(), fps=args.fps)
                    written.append(target)
        return written
