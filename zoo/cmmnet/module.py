"""CMM-Net (Wang et al., "Every Smile is Unique", CVPR 2018) and its CRA-Net baseline as one
LightningModule.

Losses (paper Sec. 3; sums in the paper, means here so weights do not depend on the batch):

* VAE (phase ``vae``): BCE of decoded landmark images (summed over pixels, mean over images)
  + ``kl_weight`` x KL(q(h|y) || N(0, I)).
* conditional LSTM (phase ``clstm``, Eq. 1): BCE of the decoded sequence against y_1..y_T, the
  KL of h_0, and ``vae_weight`` x the VAE loss on the same frames (the VAE is fine-tuned).
* multi-mode (phase ``multimode``): the above + ``pull_weight`` x Eq. 2 + ``push_weight`` x
  Eq. 3, the mode discriminator cooperating with the K LSTMs (both minimise the push CE).
  ``best_of_k_weight`` > 0 adds a multiple-choice reconstruction term (off by default: not in
  the paper; see :meth:`CMMNet.best_of_k_reconstruction`).
* ``recurrent_loss: latent`` (not the paper's; off by default): the conditional LSTM and the K
  LSTMs regress the frozen VAE's encoder means of the real frames instead (squared error summed
  over the embedding, mean over frames and sequences), and best-of-K picks the closest mode in
  that space; see :meth:`CMMNet.latent_recurrent_losses`.
* translation (phase ``translation``, Eq. 4-6, fed ground-truth landmark images):
  D: BCE(D([z_0, z_t]), 1) + BCE(D([z_0, G(y_t, z_0)]), 0) per patch; G: ``l1_weight`` x
  L1(G, z_t) + BCE(D([z_0, G]), 1) (non-saturating form of Eq. 6, as pix2pix).
  ``translator_au_weight`` > 0 (not the paper's; off by default) adds GANimation's AU terms: D
  also regresses the real frame's AU6/AU12 (squared error) and G is penalised by D's reading of
  its face against the same intensities (``CMMNet._adversarial_step``).

``variant: cranet`` is the paper's CRA-Net baseline (Sec. 4.1): the same encoder / conditional
LSTM / decoder on face images (L1 reconstruction, tanh output), with the pair discriminator on
the generated frames; its phases are ``vae`` and ``clstm``. It is deterministic (mean h_0), so
its K "modes" are copies.

Schedule (Sec. 3.5): ``phases`` run in order for ``phase_epochs`` epochs each (paper: vae 50,
clstm 20, multimode 10, translation 20) inside one ``fit``; pass one phase to run it alone
(e.g. ``phases: [translation]``), usually after loading the earlier phases' checkpoint with
``--ckpt_path`` or ``init_from``. After the last phase's epochs it keeps training that phase.
A phase may be listed twice, with ``phase_lr`` scaling the recurrent optimiser per entry (a step decay).

Manual optimisation (conventions note Sec. 3): optimisers are, in order, the recurrent part
(encoder, decoder, LSTMs, mode discriminator), the translator G, and the discriminator D;
``global_step`` counts every optimiser step (two per translation batch).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from lightning.pytorch.cli import OptimizerCallable

from datamodules.smile import SMILE_AUS, SMILE_CLASSES
from zoo.cmmnet.nets import (
    ConditionalLSTM,
    ConvDecoder,
    ConvEncoder,
    MultiModeLSTM,
    PatchDiscriminator,
    UNetTranslator,
    pull_loss,
    push_loss,
    reparameterise,
)
from zoo.common.eval_mode import evaluation_mode
from zoo.common.pretrained import load_pretrained

__all__ = ["CMMNet", "PHASES", "VARIANTS", "pix2pix_adam"]

VARIANTS = ("cmmnet", "cranet")
PHASES = {"cmmnet": ("vae", "clstm", "multimode", "translation"), "cranet": ("vae", "clstm")}
RECURRENT_LOSSES = ("pixels", "latent")
MIRROR_SEED_OFFSET = 7919  # the mirror generator's seed = the run's seed + this (any fixed number)


def pix2pix_adam(params: Iterable) -> torch.optim.Optimizer:
    """pix2pix's Adam (lr 2e-4, betas 0.5 / 0.999); CMM-Net does not state its optimiser."""
    return torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999))


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


class CMMNet(L.LightningModule):
    """Landmark VAE + conditional LSTM + K multi-mode LSTMs + landmark-to-face translator.

    Args:
        variant: ``cmmnet`` or ``cranet`` (baseline, Sec. 4.1).
        phases, phase_epochs: the training schedule (see module docstring).
        latent_dim: VAE embedding size (paper: 100).
        num_modes: K (paper Sec. 4.2: 3).
        num_classes: smile classes (posed, spontaneous).
        base_channels: width of the VAE convolutions (paper 64).
        translator_channels, discriminator_channels: widths of G and D (paper 64).
        lstm_hidden, lstm_layers, label_dim: recurrent sizes (not in the paper).
        kl_weight, vae_weight, pull_weight, push_weight: loss weights (not in the paper).
        l1_weight: L1 weight against the adversarial term (pix2pix's 100; not in the paper).
        skip_connections: U-Net skips in the translator.
        translation_frames: frames per sequence used in a translation step (None = all T).
        translator_neutral_landmarks: also give the translator the neutral face's landmark image
            (a fifth input channel; the paper's has four, Sec. 4.1). Off by default. Reenactment
            generators see the source's keypoints next to the driving ones (Monkey-Net, Siarohin et
            al., CVPR 2019; FOMM, NeurIPS 2019), so the motion is the difference between two inputs
            rather than something to infer from the face. Measured on the 400-person world
            (docs/cmmnet.md, session 7): the mouth follows the landmarks about twice as fast.
        best_of_k_weight: weight of the multimode phase's best-of-K reconstruction
            (:meth:`best_of_k_reconstruction`); 0 (default) = the paper's losses only.
        phase_lr: one factor per entry of ``phases`` for the recurrent optimiser's learning rate
            (None, default = 1 throughout). A phase may be listed twice to lower the rate within
            it, e.g. ``phases: [vae, clstm, clstm, multimode, translation]``, ``phase_lr: [1, 1,
            0.25, 0.25, 1]`` (step decay); the translator and D keep their own optimisers' rates.
        best_of_k_epsilon: relaxed winner-take-all (Rupprecht et al., ICCV 2017): the closest
            mode's error weighs 1 - epsilon, every other mode's epsilon / (K - 1); 0 (default) =
            plain best-of-K. Keeps losing modes learning, against one mode winning every sequence.
        landmark_pos_weight: weight of the lit pixels in the landmark BCE (``pos_weight`` of
            :func:`torch.nn.functional.binary_cross_entropy_with_logits`); 1 (default) = the
            paper's plain BCE. See :meth:`reconstruction`.
        vae_frames: frames per sequence drawn at random for each VAE-phase step (None, default
            = all T, the paper's "set of landmark images"); fewer frames = cheaper steps, so more
            updates in the same time (frames of one smile are near duplicates).
        recurrent_loss: ``pixels`` (default, the paper's Eq. 1: BCE of the decoded sequence, the VAE
            fine-tuned) or ``latent``: the LSTMs regress the encoder means of the real frames on a
            VAE frozen after its phase (:meth:`latent_recurrent_losses`); needs ``vae_weight: 0``.
        class_trajectory_frames: > 0 gives the conditional LSTM a learned offset trajectory per class
            over that many frames (the datamodule's T; 0, default = the label among the LSTM's
            inputs only); see :class:`zoo.cmmnet.nets.ConditionalLSTM`. Not in the paper.
        teacher_forcing: probability that a training step of the conditional LSTM reads the
            encoder's mean of the real previous frame instead of its own previous output (0,
            default = the paper's free-running LSTM; see :meth:`recurrent_losses`).
        translator_au_weight: > 0 adds an AU-intensity head to D and an AU term to G's loss in the
            translation phase (0, default = the paper's L1 + PatchGAN). GANimation's expression loss
            (Pumarola et al., ECCV 2018, Eq. 4 and the D_y head): the L1 regression to the mean
            face draws smiles weaker than the landmarks ask (docs/cmmnet.md, session 10). Needs
            ``batch["au"]`` (B, T, 2), the AU6/AU12 intensities both smile DataModules provide.
        decoder_neutral_landmarks: the landmark decoder also reads the neutral face's landmark image
            (frame 0 of the sequence; at generation the given neutral landmark image), a conditional
            VAE decoder (:class:`zoo.cmmnet.nets.ConvDecoder` ``condition_channels``). Off by default
            (the paper decodes h_t alone, Sec. 3.2). Why: the paper's decoder draws the smiles of the
            people it trained on much better than unseen people's (docs/cmmnet.md, session 12).
        vae_mirror: probability that a VAE-phase step mirrors a sequence left-right (all its frames,
            the neutral one included; 0, default = the paper's data as they are). Label-preserving:
            which side of a smile is weaker is not what separates posed from spontaneous
            (Dibeklioglu et al., ECCV 2012, measure the asymmetry's size). Why: the decoder learns its
            training faces' shapes; mirrored faces are new ones (docs/cmmnet.md, session 12).
        recurrent_mirror: the same mirroring in the steps of the conditional LSTM and multimode
            phases (0, default = off). Why: the LSTMs learn their training people's smiles from
            the neutral face's embedding (train / held-out latent error 70 / 129 on the demo);
            mirrored people are new people (held-out 121, the best mode's 84 against 102;
            docs/cmmnet.md, session 13). CMM-Net only.
        translator_label: the translator also reads the smile class (one-hot planes, StarGAN's
            conditioning; :class:`zoo.cmmnet.nets.UNetTranslator` ``label_classes``): in training
            the sequence's label, at generation the requested one. Off by default (the paper's
            translator sees the landmark image and the neutral face, Sec. 3.4). Why: the Duchenne
            cheek raise that tells the classes apart hardly moves the landmarks, so from the
            landmark image alone the translator can only draw a cheek raise between the classes'
            (docs/cmmnet.md, session 14). CMM-Net only.
        optimizer, optimizer_g, optimizer_d: ``OptimizerCallable``s (default Adam 2e-4, 0.5/0.999).
        pretrained: a manifest name or weights file loaded (strictly) at construction, to fine-tune.
    """

    def __init__(
        self,
        variant: str = "cmmnet",
        phases: list[str] | None = None,
        phase_epochs: list[int] | None = None,
        latent_dim: int = 100,
        num_modes: int = 3,
        num_classes: int = 2,
        base_channels: int = 64,
        translator_channels: int = 64,
        discriminator_channels: int = 64,
        lstm_hidden: int = 256,
        lstm_layers: int = 1,
        label_dim: int = 16,
        kl_weight: float = 1.0,
        vae_weight: float = 1.0,
        pull_weight: float = 1.0,
        push_weight: float = 1.0,
        l1_weight: float = 100.0,
        adversarial_weight: float = 1.0,
        skip_connections: bool = True,
        translation_frames: int | None = None,
        translator_neutral_landmarks: bool = False,
        best_of_k_weight: float = 0.0,
        best_of_k_epsilon: float = 0.0,
        phase_lr: list[float] | None = None,
        landmark_pos_weight: float = 1.0,
        vae_frames: int | None = None,
        teacher_forcing: float = 0.0,
        recurrent_loss: str = "pixels",
        class_trajectory_frames: int = 0,
        translator_au_weight: float = 0.0,
        decoder_neutral_landmarks: bool = False,
        vae_mirror: float = 0.0,
        recurrent_mirror: float = 0.0,
        translator_label: bool = False,
        optimizer: OptimizerCallable = pix2pix_adam,
        optimizer_g: OptimizerCallable = pix2pix_adam,
        optimizer_d: OptimizerCallable = pix2pix_adam,
        pretrained: str | None = None,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant: expected one of {VARIANTS}, got {variant!r}")
        phases = list(phases) if phases is not None else list(PHASES[variant])
        phase_epochs = list(phase_epochs) if phase_epochs is not None else (
            [50, 20, 10, 20] if variant == "cmmnet" else [50, 20])
        unknown = [p for p in phases if p not in PHASES[variant]]
        if not phases or unknown:
            raise ValueError(f"phases: expected a non-empty list from {PHASES[variant]} for variant {variant!r}, got {phases}")
        if len(phase_epochs) != len(phases) or any(int(e) < 1 for e in phase_epochs):
            raise ValueError(f"phase_epochs: expected {len(phases)} positive epoch counts (one per phase), got {phase_epochs}")
        for name, value in dict(kl_weight=kl_weight, vae_weight=vae_weight, pull_weight=pull_weight,
                                push_weight=push_weight, l1_weight=l1_weight,
                                adversarial_weight=adversarial_weight, best_of_k_weight=best_of_k_weight,
                                translator_au_weight=translator_au_weight).items():
            if value < 0:
                raise ValueError(f"{name}: expected >= 0, got {value}")
        if translation_frames is not None and translation_frames < 1:
            raise ValueError(f"translation_frames: expected >= 1 or None, got {translation_frames}")
        if vae_frames is not None and vae_frames < 1:
            raise ValueError(f"vae_frames: expected >= 1 or None, got {vae_frames}")
        if phase_lr is not None and (len(phase_lr) != len(phases) or any(not float(f) > 0 for f in phase_lr)):
            raise ValueError(f"phase_lr: expected {len(phases)} positive factors (one per phase), got {phase_lr}")
        if not 0.0 <= best_of_k_epsilon < 1.0:
            raise ValueError(f"best_of_k_epsilon: expected a weight in [0, 1) (0 = plain best-of-K), got {best_of_k_epsilon}")
        for name, value in dict(vae_mirror=vae_mirror, recurrent_mirror=recurrent_mirror).items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: expected a probability in [0, 1], got {value}")
        if variant == "cranet" and recurrent_mirror:
            raise ValueError("recurrent_mirror: CRA-Net's discriminator pairs the generated frames with the unmirrored "
                             "real ones; leave it at 0")
        if not 0.0 <= teacher_forcing <= 1.0:
            raise ValueError(f"teacher_forcing: expected a probability in [0, 1], got {teacher_forcing}")
        if not landmark_pos_weight > 0:
            raise ValueError(f"landmark_pos_weight: expected > 0 (1 = plain BCE), got {landmark_pos_weight}")
        if class_trajectory_frames < 0:
            raise ValueError(f"class_trajectory_frames: expected >= 0 (0 = off), got {class_trajectory_frames}")
        if recurrent_loss not in RECURRENT_LOSSES:
            raise ValueError(f"recurrent_loss: expected one of {RECURRENT_LOSSES}, got {recurrent_loss!r}")
        if recurrent_loss == "latent" and variant == "cranet":
            raise ValueError("recurrent_loss: CRA-Net's discriminator needs decoded frames; use 'pixels'")
        if recurrent_loss == "latent" and vae_weight != 0:
            raise ValueError(f"vae_weight: recurrent_loss 'latent' trains the LSTMs on the VAE frozen after its "
                             f"phase; set vae_weight: 0 (got {vae_weight})")
        if variant == "cranet" and translator_neutral_landmarks:
            raise ValueError("translator_neutral_landmarks: CRA-Net has no translator; leave it off")
        if variant == "cranet" and decoder_neutral_landmarks:
            raise ValueError("decoder_neutral_landmarks: CRA-Net decodes faces, it has no neutral landmark image; leave it off")
        if variant == "cranet" and translator_label:
            raise ValueError("translator_label: CRA-Net has no translator; leave it off")
        if variant == "cranet" and translator_au_weight:
            raise ValueError("translator_au_weight: CRA-Net has no translator; leave it at 0")
        if variant == "cranet" and landmark_pos_weight != 1.0:
            raise ValueError("landmark_pos_weight: CRA-Net reconstructs faces with L1, it has no landmark BCE; leave it at 1")
        self.save_hyperparameters(ignore=["optimizer", "optimizer_g", "optimizer_d"])
        self.hparams["phases"], self.hparams["phase_epochs"] = phases, [int(e) for e in phase_epochs]
        if phase_lr is not None:
            self.hparams["phase_lr"] = [float(f) for f in phase_lr]
        self.automatic_optimization = False
        self._mirror_generator: torch.Generator | None = None  # mirror_generator(), made at first use
        self.optimizer, self.optimizer_g, self.optimizer_d = optimizer, optimizer_g, optimizer_d
        channels = 1 if variant == "cmmnet" else 3
        self.encoder = ConvEncoder(channels, latent_dim, base_channels)
        self.decoder = ConvDecoder(channels, latent_dim, base_channels,
                                   condition_channels=1 if decoder_neutral_landmarks else 0)
        self.clstm = ConditionalLSTM(latent_dim, num_classes, label_dim, lstm_hidden, lstm_layers,
                                     trajectory_frames=class_trajectory_frames)
        # the AU head only when asked for: published weights without it still load strictly
        self.discriminator = PatchDiscriminator(discriminator_channels,
                                                num_aus=len(SMILE_AUS) if translator_au_weight else 0)
        if variant == "cmmnet":
            self.modes = MultiModeLSTM(num_modes, latent_dim, lstm_hidden)
            self.translator = UNetTranslator(translator_channels, skip_connections,
                                             landmark_channels=2 if translator_neutral_landmarks else 1,
                                             label_classes=num_classes if translator_label else 0)
        if pretrained is not None:  # fine-tune from published weights (zoo/common/pretrained.py)
            load_pretrained(self, pretrained)

    # ------------------------------------------------------------------ schedule
    @property
    def phase_index(self) -> int:
        """Position in ``phases`` of the current epoch (the last once the schedule is over)."""
        bounds = np.cumsum(self.hparams.phase_epochs)
        return min(int(np.searchsorted(bounds, self.current_epoch, side="right")), len(bounds) - 1)

    @property
    def phase(self) -> str:
        """The phase of the current epoch (the last phase once the schedule is over)."""
        return self.hparams.phases[self.phase_index]

    def _apply_phase_lr(self, optimizer) -> None:
        """Scale the recurrent optimiser's learning rate by ``phase_lr`` of the current phase
        (its configured rate is kept in each param group as ``base_lr``, so resuming is exact)."""
        if self.hparams.phase_lr is None:
            return
        scale = float(self.hparams.phase_lr[self.phase_index])
        for group in getattr(optimizer, "optimizer", optimizer).param_groups:
            group.setdefault("base_lr", group["lr"])
            group["lr"] = group["base_lr"] * scale

    @property
    def is_cranet(self) -> bool:
        return self.hparams.variant == "cranet"

    # ------------------------------------------------------------------ batch
    def _inputs(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(targets (B, T, C, S, S), neutral face (B, 3, S, S), frames (B, T, 3, S, S), label (B,))."""
        if not isinstance(batch, Mapping):
            raise ValueError(f"CMMNet expects a dict batch (NEMODataModule), got {type(batch).__name__}")
        for key in ("video", "neutral", "landmark_images", "label"):
            if key not in batch:
                raise ValueError(f"batch has no '{key}' (keys: {sorted(batch)}); CMMNet needs NEMODataModule batches")
        video, label = batch["video"], batch["label"]
        targets = video if self.is_cranet else batch["landmark_images"]
        return targets, batch["neutral"], video, label

    # ------------------------------------------------------------------ pieces
    def pixel_error(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-pixel reconstruction error, same shape as ``target``: L1 of the tanh output
        (CRA-Net faces) or the landmark BCE, its lit pixels weighted by ``landmark_pos_weight``.

        The paper's BCE (Sec. 3.2) leaves the class balance open; landmark images are ~6 % lit
        (thin 1-px lines), so an unweighted BCE is lowest for a blurred, under-confident line and
        the decoder draws the moving mouth as speckle (docs/cmmnet.md). Up-weighting the positive
        class is the usual remedy for sparse line / edge maps (HED, Xie & Tu, ICCV 2015, Eq. 2,
        class-balanced BCE; here a fixed weight, torch's ``pos_weight``): -[w y log p + (1 - y) log(1 - p)].
        """
        if self.is_cranet:
            return (torch.tanh(logits) - target).abs()
        weight = self.hparams.landmark_pos_weight
        pos_weight = None if weight == 1.0 else torch.tensor(weight, dtype=logits.dtype, device=logits.device)
        return F.binary_cross_entropy_with_logits(logits, target, reduction="none", pos_weight=pos_weight)

    def reconstruction(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-image sum over pixels, mean over images: BCE (landmarks) or L1 (CRA-Net faces)."""
        return self.pixel_error(logits, target).flatten(1).sum(dim=1).mean()

    @staticmethod
    def kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(dim=1).mean()

    def vae_losses(self, frames: torch.Tensor, neutral: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """VAE on the frames (B, T, C, S, S) of B sequences, each frame on its own; ``neutral``
        (B, C, S, S), the sequences' first frames, conditions a ``decoder_neutral_landmarks`` decoder."""
        mu, logvar = self.encoder(rearrange(frames, "b t c h w -> (b t) c h w"))
        z = reparameterise(mu, logvar) if self.training else mu
        logits = self.decode(rearrange(z, "(b t) d -> b t d", b=frames.shape[0]), neutral)
        return {"vae_reconstruction": self.reconstruction(rearrange(logits, "b t c h w -> (b t) c h w"),
                                                          rearrange(frames, "b t c h w -> (b t) c h w")),
                "vae_kl": self.kl(mu, logvar)}

    def embed_sequence(self, first: torch.Tensor, label: torch.Tensor, steps: int,
                       teacher: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """h_0 statistics and h_1..h_T (B, T, D) from the first frame's image (``teacher``: see
        :meth:`ConditionalLSTM.forward`, fed with probability ``teacher_forcing``)."""
        mu, logvar = self.encoder(first)
        h0 = reparameterise(mu, logvar) if self.training else mu
        return mu, logvar, self.clstm(h0, label, steps, teacher, self.hparams.teacher_forcing)

    def decode(self, h: torch.Tensor, neutral: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings (B, ..., D) -> logits (B, ..., C, S, S). ``neutral`` (B, 1, S, S): the neutral
        landmark image of each of the B sequences, required iff ``decoder_neutral_landmarks``
        (ignored otherwise, so callers pass it whenever they have it)."""
        lead = h.shape[:-1]
        features = None
        if self.hparams.decoder_neutral_landmarks:
            if neutral is None:
                raise ValueError("decode: decoder_neutral_landmarks needs the neutral landmark image (B, 1, S, S)")
            if h.ndim < 2 or neutral.shape[0] != h.shape[0]:
                raise ValueError(f"decode: expected embeddings (B, ..., D) and neutral landmark images (B, 1, S, S), "
                                 f"got {tuple(h.shape)} and {tuple(neutral.shape)}")
            per_sequence = h[0].numel() // h.shape[-1]  # codes decoded per neutral face
            # encoded once per neutral face, repeated for each of its frames (and modes)
            features = [repeat(f, "b c x y -> (b n) c x y", n=per_sequence)
                        for f in self.decoder.condition_features(neutral.to(h.dtype))]
        return self.decoder(h.reshape(-1, h.shape[-1]), features).reshape(*lead, *self.decoder_output_shape)

    @property
    def decoder_output_shape(self) -> tuple[int, int, int]:
        return (3 if self.is_cranet else 1, 64, 64)

    def recurrent_losses(self, targets: torch.Tensor, label: torch.Tensor, phase: str) -> dict[str, torch.Tensor]:
        if self.hparams.recurrent_loss == "latent":
            return self.latent_recurrent_losses(targets, label, phase)
        steps = targets.shape[1]
        teacher = None
        if self.training and self.hparams.teacher_forcing > 0 and steps > 1:
            # Teacher forcing (Williams & Zipser 1989): not in the paper, which leaves the LSTM's
            # inputs open (Sec. 3.2). The real frames' embeddings (encoder means, no gradient into
            # the encoder from this path) replace the LSTM's own previous outputs as inputs.
            with torch.no_grad():
                teacher = self.encoder(rearrange(targets[:, :-1], "b t c h w -> (b t) c h w"))[0]
            teacher = rearrange(teacher, "(b t) d -> b t d", b=targets.shape[0])
        mu, logvar, h = self.embed_sequence(targets[:, 0], label, steps, teacher)
        logits = self.decode(h, targets[:, 0])
        losses = {"sequence_reconstruction": self.reconstruction(rearrange(logits, "b t c h w -> (b t) c h w"),
                                                                 rearrange(targets, "b t c h w -> (b t) c h w")),
                  "h0_kl": self.kl(mu, logvar)}
        if self.hparams.vae_weight > 0:
            losses.update(self.vae_losses(targets, targets[:, 0]))
        if phase == "multimode":
            losses.update(self.multimode_losses(
                h, lambda modes: self.best_of_k_reconstruction(modes, targets, return_winners=True)))
        losses["_logits"] = logits
        return losses

    def latent_recurrent_losses(self, targets: torch.Tensor, label: torch.Tensor, phase: str) -> dict[str, torch.Tensor]:
        """``recurrent_loss: latent``: the recurrent phases in the VAE's embedding space.

        The frozen encoder (eval mode, no gradient) gives the means of the real frames e_0..e_T-1;
        the conditional LSTM starts from h_0 = e_0 and its T outputs regress e_0..e_T-1, frame for
        frame as the pixel path's decoded outputs reproduce frames 0..T-1 (``sequence_latent``:
        squared error summed over the embedding, mean over frames and sequences). In the multimode
        phase the pull and push are the paper's, and best-of-K (``best_of_k_weight``) picks the mode
        closest to the real sequence in the same space. Not the paper's Eq. 1 (BCE of decoded frames, VAE
        fine-tuned): a VAE trained first, then a recurrent model on its frozen latents, is World
        Models' recipe (Ha & Schmidhuber 2018, "V" then "M"). Why here (docs/cmmnet.md, session 8):
        a step needs no decoding (~6x faster at demo size, benchmarks/cmmnet_step.py), and fine-tuning
        the VAE through the sequence BCE was measured to cost it the posed smiles' amplitude."""
        with torch.no_grad(), evaluation_mode(self.encoder):
            goal = self.encoder(rearrange(targets, "b t c h w -> (b t) c h w"))[0]
        goal = rearrange(goal, "(b t) d -> b t d", b=targets.shape[0])
        teacher = goal[:, :-1] if self.training and self.hparams.teacher_forcing > 0 else None
        h = self.clstm(goal[:, 0], label, goal.shape[1], teacher, self.hparams.teacher_forcing)
        losses = {"sequence_latent": self.latent_error(h, goal).mean()}
        if phase == "multimode":
            def closest_in_latent_space(modes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                return self.best_of_k(self.latent_error(modes, repeat(goal, "b t d -> b k t d", k=modes.shape[1])))

            losses.update(self.multimode_losses(h, closest_in_latent_space))
        return losses

    def multimode_losses(self, h: torch.Tensor, best_of_k) -> dict[str, torch.Tensor]:
        """The K LSTMs over the conditional LSTM's h (B, T, D): pull (Eq. 2), push (Eq. 3) and, with
        ``best_of_k_weight`` > 0, ``best_of_k(modes) -> (loss, winners (B,))`` of the recurrent loss's space."""
        modes = self.modes(h)
        losses = {"pull": pull_loss(h, modes)}
        if self.hparams.best_of_k_weight > 0:
            losses["best_of_k"], winners = best_of_k(modes)
            # share of the batch won by the most frequent mode: 1 = winner-take-all collapse (logged only)
            losses["best_of_k_top_share"] = (torch.bincount(winners, minlength=modes.shape[1]).max()
                                              / winners.numel()).float()
        losses["push"] = push_loss(self.modes.mode_logits(modes))
        return losses

    @staticmethod
    def latent_error(h: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """Squared error summed over the embedding, mean over frames: (..., T, D) -> (...)."""
        return (h - goal).pow(2).sum(dim=-1).mean(dim=-1)

    def best_of_k(self, error: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Multiple-choice loss of per-mode errors (B, K): the closest mode's error (relaxed by
        ``best_of_k_epsilon``), mean over sequences; and the winners (B,)."""
        winners = error.detach().argmin(dim=1)
        eps, k = self.hparams.best_of_k_epsilon, error.shape[1]
        best = F.one_hot(winners, k).to(error.dtype)
        weights = best * (1.0 - eps) + (1.0 - best) * (eps / max(k - 1, 1))
        return (weights * error).sum(dim=1).mean(), winners

    def best_of_k_reconstruction(self, modes: torch.Tensor, targets: torch.Tensor,
                                 return_winners: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Multiple-choice learning (Guzman-Rivera et al., NIPS 2012): each real sequence is
        reconstructed (BCE or L1 summed over pixels, mean over frames) by its *closest* mode only;
        mean over sequences. Not in the paper, whose K LSTMs see no data term (Sec. 3.3): with the
        push and pull alone the modes separate along latent directions the decoder barely renders
        (docs/cmmnet.md); this term ties each mode to a way people actually smile, with the same
        ground truth as the conditional LSTM. ``modes`` (B, K, T, D), ``targets`` (B, T, C, S, S).
        With ``best_of_k_epsilon`` = e > 0 the relaxed form (Rupprecht et al., "Learning in an
        Uncertain World", ICCV 2017, Eq. 6): (1 - e) x the closest mode's error + e / (K - 1) x each
        other's. ``return_winners`` also returns the closest mode per sequence (B,)."""
        if modes.ndim != 4 or targets.ndim != 5 or modes.shape[0] != targets.shape[0] or modes.shape[2] != targets.shape[1]:
            raise ValueError(f"best_of_k_reconstruction: expected modes (B, K, T, D) and targets (B, T, C, S, S) with "
                             f"matching B and T, got {tuple(modes.shape)} and {tuple(targets.shape)}")
        logits = self.decode(modes, targets[:, 0])  # (B, K, T, C, S, S)
        target = repeat(targets, "b t c h w -> b k t c h w", k=modes.shape[1])
        error = self.pixel_error(logits, target).flatten(3).sum(-1).mean(-1)  # (B, K)
        loss, winners = self.best_of_k(error)
        return (loss, winners) if return_winners else loss

    def weighted(self, losses: dict[str, torch.Tensor], phase: str) -> torch.Tensor:
        hp = self.hparams
        if phase == "vae":
            return losses["vae_reconstruction"] + hp.kl_weight * losses["vae_kl"]
        if "sequence_latent" in losses:  # recurrent_loss: latent (the VAE is frozen, no KL of h_0)
            total = losses["sequence_latent"]
        else:
            total = losses["sequence_reconstruction"] + hp.kl_weight * losses["h0_kl"]
        if "vae_reconstruction" in losses:
            total = total + hp.vae_weight * (losses["vae_reconstruction"] + hp.kl_weight * losses["vae_kl"])
        if phase == "multimode":
            total = total + hp.pull_weight * losses["pull"] + hp.push_weight * losses["push"]
            if "best_of_k" in losses:
                total = total + hp.best_of_k_weight * losses["best_of_k"]
        return total

    def mirrored(self, sequences: torch.Tensor, p: float) -> torch.Tensor:
        """Each sequence of ``sequences`` (B, T, C, H, W) flipped left-right with probability ``p``,
        all its frames together (its neutral frame, the decoder's condition, included). The draws
        come from the module's own generator (:meth:`mirror_generator`), not the global stream."""
        if p <= 0:
            return sequences
        flip = (torch.rand(sequences.shape[0], generator=self.mirror_generator()) < p).to(sequences.device)
        return torch.where(flip[:, None, None, None, None], sequences.flip(-1), sequences)

    def mirror_generator(self) -> torch.Generator:
        """The CPU generator of ``vae_mirror`` / ``recurrent_mirror``, seeded from the run's seed
        (``torch.initial_seed()``, set by ``seed_everything``) at first use and kept in checkpoints.
        Why its own: with mirroring on, the global stream (data order, frame draws) is the one of
        the same run without it, so the translator, which never sees the landmark path, comes out
        bit-identical and a comparison of the two runs' faces measures the landmark path alone
        (docs/cmmnet.md, session 13)."""
        if self._mirror_generator is None:
            self._mirror_generator = torch.Generator().manual_seed(torch.initial_seed() + MIRROR_SEED_OFFSET)
        return self._mirror_generator

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self._mirror_generator is not None:
            checkpoint["cmmnet_mirror_generator"] = self._mirror_generator.get_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "cmmnet_mirror_generator" in checkpoint:
            self._mirror_generator = torch.Generator()
            self._mirror_generator.set_state(checkpoint["cmmnet_mirror_generator"])

    @staticmethod
    def random_frames(x: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
        """Frames ``chosen`` (B, k) of each sequence of ``x`` (B, T, ...) -> (B, k, ...)."""
        return torch.gather(x, 1, chosen.view(*chosen.shape, *[1] * (x.ndim - 2)).expand(-1, -1, *x.shape[2:]))

    @staticmethod
    def draw_frames(x: torch.Tensor, k: int) -> torch.Tensor:
        """``k`` distinct frame indices per sequence of ``x`` (B, T, ...), drawn uniformly -> (B, k)."""
        return torch.stack([torch.randperm(x.shape[1], device=x.device)[:k] for _ in range(x.shape[0])])

    def _pairs(self, neutral: torch.Tensor, frames: torch.Tensor, landmarks: torch.Tensor | None,
               au: torch.Tensor | None = None, label: torch.Tensor | None = None):
        """Flatten (B, T, ...) frames with their neutral face; optionally a random frame subset.
        Returns (neutral faces, frames, landmarks, the landmarks' frame 0, AU intensities (B T', A),
        labels (B T',)), each (B T', ...); the last four are None when ``landmarks`` / ``au`` /
        ``label`` are."""
        steps = frames.shape[1]
        first = landmarks[:, 0] if landmarks is not None else None
        k = self.hparams.translation_frames
        if self.training and k is not None and k < steps:
            chosen = self.draw_frames(frames, k)
            frames, landmarks, au = (self.random_frames(x, chosen) if x is not None else None
                                     for x in (frames, landmarks, au))
            steps = k
        flat = lambda x: rearrange(x, "b t ... -> (b t) ...") if x is not None else None  # noqa: E731
        z0 = repeat(neutral, "b c h w -> (b t) c h w", t=steps)
        first = repeat(first, "b c h w -> (b t) c h w", t=steps) if first is not None else None
        label = repeat(label, "b -> (b t)", t=steps) if label is not None else None
        return z0, flat(frames), flat(landmarks), first, flat(au), label

    def translate(self, landmark_images: torch.Tensor, neutral: torch.Tensor,
                  neutral_landmark_image: torch.Tensor | None, label: torch.Tensor | None = None) -> torch.Tensor:
        """The translator: landmark images (N, 1, S, S) and neutral faces (N, 3, S, S) -> faces (N, 3, S, S);
        ``neutral_landmark_image`` (N, 1, S, S) is read only with ``translator_neutral_landmarks``,
        ``label`` (N,) only with ``translator_label`` (callers may pass None without them)."""
        if self.hparams.translator_neutral_landmarks:
            if neutral_landmark_image is None or neutral_landmark_image.shape != landmark_images.shape:
                got = None if neutral_landmark_image is None else tuple(neutral_landmark_image.shape)
                raise ValueError(f"neutral_landmark_image: expected {tuple(landmark_images.shape)} like the landmark "
                                 f"images, got {got}")
            landmark_images = torch.cat([landmark_images, neutral_landmark_image.to(landmark_images.dtype)], dim=1)
        return self.translator(landmark_images, neutral, label)  # a class-blind translator ignores label

    def translate_sequences(self, landmark_images: torch.Tensor, neutral: torch.Tensor,
                            neutral_landmark_image: torch.Tensor | None = None, label=None) -> torch.Tensor:
        """:meth:`translate` frame by frame: landmark-image sequences (B, T, 1, S, S), each with its
        neutral face (B, 3, S, S), its neutral landmark image (B, 1, S, S; read only with
        ``translator_neutral_landmarks``) and its class (an int, a name or (B,); read only with
        ``translator_label``) -> faces (B, T, 3, S, S)."""
        b, t = landmark_images.shape[:2]
        first = None
        if self.hparams.translator_neutral_landmarks and neutral_landmark_image is not None:
            first = repeat(neutral_landmark_image.float(), "b c h w -> (b t) c h w", t=t)
        if self.hparams.translator_label:
            if label is None:
                raise ValueError("label: this translator reads the smile class (translator_label); pass the "
                                 "sequences' labels")
            label = repeat(self._check_label(label, b).to(landmark_images.device), "b -> (b t)", t=t)
        faces = self.translate(rearrange(landmark_images.float(), "b t c h w -> (b t) c h w"),
                               repeat(neutral.float(), "b c h w -> (b t) c h w", t=t), first, label)
        return rearrange(faces, "(b t) c h w -> b t c h w", b=b)

    @staticmethod
    def gan_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
        """Eq. 5 per patch: one label per pixel of the coarsest map (Sec. 3.4)."""
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(real)))

    # ------------------------------------------------------------------ training
    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        targets, neutral, frames, label = self._inputs(batch)
        phase = self.phase
        optimizers = self.optimizers()
        opt_main, opt_d = optimizers[0], optimizers[-1]
        self._apply_phase_lr(opt_main)
        logs: dict[str, torch.Tensor] = {}
        if phase == "translation":
            au = self._smile_aus(batch) if self.hparams.translator_au_weight else None
            z0, real, landmarks, first, au, labels = self._pairs(neutral, frames, targets, au, label)
            fake = self.translate(landmarks, z0, first, labels)
            logs.update(self._adversarial_step(z0, real, fake, optimizers[1], opt_d, au))
        else:
            if phase == "vae":
                k = self.hparams.vae_frames
                targets = self.mirrored(targets, self.hparams.vae_mirror)
                first = targets[:, 0]  # the neutral frame, before the draw
                if k is not None and k < targets.shape[1]:
                    chosen = self.draw_frames(targets, k)
                    targets = self.random_frames(targets, chosen)
                losses = self.vae_losses(targets, first)
            else:
                targets = self.mirrored(targets, self.hparams.recurrent_mirror)
                losses = self.recurrent_losses(targets, label, phase)
            logits = losses.pop("_logits", None)
            loss = self.weighted(losses, phase)
            if self.is_cranet and phase == "clstm" and self.hparams.adversarial_weight > 0:
                # CRA-Net: a discriminator "on top of the generated images" (Sec. 4.1)
                z0, real, fake, _, _, _ = self._pairs(neutral, frames, torch.tanh(logits))
                self._discriminator_step(z0, real, fake, opt_d, logs)
                loss = loss + self.hparams.adversarial_weight * self.gan_loss(self.discriminator(z0, fake), True)
            opt_main.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            opt_main.step()
            logs.update({k: v.detach() for k, v in losses.items()}, loss=loss.detach())
        self.log_dict({f"train/{k}": v for k, v in logs.items()}, on_step=True, on_epoch=True,
                      batch_size=targets.shape[0])
        self.log("train/phase", float(self.phase_index), on_step=True, on_epoch=False,
                 batch_size=targets.shape[0])

    def _smile_aus(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """``batch["au"]`` checked: (B, T, 2) AU6/AU12 intensities, for ``translator_au_weight``."""
        au, video = batch.get("au"), batch["video"]
        want = (*video.shape[:2], len(SMILE_AUS))
        if not isinstance(au, torch.Tensor) or tuple(au.shape) != want:
            got = tuple(au.shape) if isinstance(au, torch.Tensor) else au
            raise ValueError(f"batch['au']: translator_au_weight needs the {'/'.join(SMILE_AUS)} intensities "
                             f"{want} (NEMODataModule / DISFADataModule batches), got {got}")
        return au.to(video.dtype)

    def _judge(self, z0: torch.Tensor, image: torch.Tensor, au: torch.Tensor | None):
        """D's per-patch logits of ``image`` and, when ``au`` is given (``translator_au_weight``), its
        AU head's reading of it from the same pass (else None)."""
        if au is None:
            return self.discriminator(z0, image), None
        return self.discriminator.patches_and_aus(z0, image)

    def _discriminator_step(self, z0, real, fake, opt_d, logs: dict, au: torch.Tensor | None = None) -> None:
        with self.toggled_optimizer(opt_d):
            (real_logits, on_real), (fake_logits, _) = self._judge(z0, real, au), self._judge(z0, fake.detach(), au)
            d_loss = 0.5 * (self.gan_loss(real_logits, True) + self.gan_loss(fake_logits, False))
            if au is not None:  # D_y learns the intensities from real frames only (GANimation Sec. 4)
                au_error = F.mse_loss(on_real, au)
                d_loss = d_loss + self.hparams.translator_au_weight * au_error
                logs["discriminator_au"] = au_error.detach()
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            opt_d.step()
        logs["discriminator"] = d_loss.detach()

    def _adversarial_step(self, z0, real, fake, opt_g, opt_d, au: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        logs: dict[str, torch.Tensor] = {}
        self._discriminator_step(z0, real, fake, opt_d, logs, au)
        with self.toggled_optimizer(opt_g):
            l1 = (fake - real).abs().mean()
            fake_logits, on_fake = self._judge(z0, fake, au)
            adversarial = self.gan_loss(fake_logits, True)
            g_loss = self.hparams.l1_weight * l1 + self.hparams.adversarial_weight * adversarial
            if au is not None:
                logs["translation_au"] = F.mse_loss(on_fake, au)
                g_loss = g_loss + self.hparams.translator_au_weight * logs["translation_au"]
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            opt_g.step()
        logs.update(translation_l1=l1, generator_adversarial=adversarial, loss=g_loss)
        return {k: v.detach() for k, v in logs.items()}

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def _evaluate(self, batch: Mapping[str, Any], stage: str) -> None:
        targets, neutral, frames, label = self._inputs(batch)
        phase = self.phase
        losses = self.vae_losses(targets, targets[:, 0])
        if phase != "vae":
            recurrent = self.recurrent_losses(targets, label, phase)
            recurrent.pop("_logits", None)
            losses.update(recurrent)
        logs = dict(losses, loss=self.weighted(losses, phase))
        if not self.is_cranet:
            z0, real, landmarks, first, _, labels = self._pairs(neutral, frames, targets, label=label)
            fake = self.translate(landmarks, z0, first, labels)
            logs["translation_l1"] = (fake - real).abs().mean()
            if phase == "translation":
                logs["loss"] = logs["translation_l1"]
            _, modes = self.generate_landmarks(targets[:, 0], label, num_frames=targets.shape[1])
            k = modes.shape[1]
            # mean pairwise L1 between the K modes' landmark images: 0 when the modes coincide
            gaps = [(modes[:, i] - modes[:, j]).abs().mean() for i in range(k) for j in range(i + 1, k)]
            logs["mode_gap"] = torch.stack(gaps).mean()
        self.log_dict({f"{stage}/{k}": v for k, v in logs.items()}, on_epoch=True, sync_dist=True,
                      batch_size=targets.shape[0])

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    # ------------------------------------------------------------------ generation
    def _check_label(self, label: torch.Tensor | int | str, batch: int) -> torch.Tensor:
        if isinstance(label, str):
            if label not in SMILE_CLASSES:
                raise ValueError(f"label: expected one of {SMILE_CLASSES} or a class index, got {label!r}")
            label = SMILE_CLASSES.index(label)
        label = torch.as_tensor(label, device=self.device)
        if label.ndim == 0:
            label = label.expand(batch)
        if label.shape != (batch,) or label.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"label: expected an int, a name or an integer tensor ({batch},), got {label.dtype} {tuple(label.shape)}")
        return label.long()

    @torch.no_grad()
    def generate_landmarks(self, neutral_landmark_image: torch.Tensor, label, num_frames: int = 32):
        """Landmark-image probabilities: conditional (B, T, 1, S, S) and modes (B, K, T, 1, S, S)."""
        if self.is_cranet:
            raise ValueError("generate_landmarks: CRA-Net generates faces directly, it has no landmark images")
        label = self._check_label(label, neutral_landmark_image.shape[0])
        with evaluation_mode(self):
            mu, _ = self.encoder(neutral_landmark_image.float())
            h = self.clstm(mu, label, num_frames)
            # one decode for the conditional path and the modes: the neutral condition is encoded once
            paths = torch.sigmoid(self.decode(torch.cat([h[:, None], self.modes(h)], dim=1), neutral_landmark_image))
        return paths[:, 0], paths[:, 1:]

    @torch.no_grad()
    def generate(self, neutral_image: torch.Tensor, label, k: int | None = None,
                 neutral_landmark_image: torch.Tensor | None = None, num_frames: int = 32,
                 include_conditional: bool = False) -> torch.Tensor:
        """K smile videos (B, K, T, 3, S, S) in [-1, 1] from neutral faces (B, 3, S, S) in [-1, 1].

        ``label``: 0 / "posed" or 1 / "spontaneous" (an int, a name or a (B,) tensor).
        ``neutral_landmark_image`` (B, 1, S, S) {0, 1}: the landmark image of the neutral face
        (CMM-Net; from :func:`datamodules.smile.eye_alignment` + ``landmark_image``).
        ``k``: modes to return (default all K); ``include_conditional`` prepends the conditional
        LSTM's video (the paper's "bottom" row of Fig. 6).
        """
        if not isinstance(neutral_image, torch.Tensor) or neutral_image.ndim != 4 or neutral_image.shape[1:] != (3, 64, 64):
            raise ValueError(f"neutral_image: expected (B, 3, 64, 64) in [-1, 1], got "
                             f"{tuple(neutral_image.shape) if isinstance(neutral_image, torch.Tensor) else type(neutral_image).__name__}")
        if num_frames < 1:
            raise ValueError(f"num_frames: expected >= 1, got {num_frames}")
        batch = neutral_image.shape[0]
        if self.is_cranet:
            k = 1 if k is None else k
            if k < 1:
                raise ValueError(f"k: expected >= 1, got {k}")
        else:
            k = self.hparams.num_modes if k is None else k
            if not 1 <= k <= self.hparams.num_modes:
                raise ValueError(f"k: expected 1..{self.hparams.num_modes} (the model's num_modes), got {k}")
        label = self._check_label(label, batch)
        with evaluation_mode(self):
            if self.is_cranet:
                mu, _ = self.encoder(neutral_image.float())
                video = torch.tanh(self.decode(self.clstm(mu, label, num_frames)))
                return repeat(video, "b t c h w -> b k t c h w", k=k + int(include_conditional)).contiguous()
            if neutral_landmark_image is None:
                raise ValueError("neutral_landmark_image: CMM-Net needs the landmark image of the neutral face "
                                 "(B, 1, 64, 64); see datamodules.smile.eye_alignment")
            conditional, modes = self.generate_landmarks(neutral_landmark_image, label, num_frames)
            sequences = modes[:, :k]
            if include_conditional:
                sequences = torch.cat([conditional[:, None], sequences], dim=1)
            kk = sequences.shape[1]
            faces = self.translate_sequences(rearrange(sequences, "b k t c h w -> b (k t) c h w"), neutral_image,
                                             neutral_landmark_image, label)
        return rearrange(faces, "b (k t) c h w -> b k t c h w", k=kk).contiguous()

    def image_pairs(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """(generated, real) uint8 (N, 3, S, S) frames for the realism callback: the conditional
        path's video against the real sequence, frame by frame (SSIM, IS, Delta-IS)."""
        targets, neutral, frames, label = self._inputs(batch)
        video = self.generate(neutral, label, 1, None if self.is_cranet else targets[:, 0], frames.shape[1],
                              include_conditional=not self.is_cranet)[:, 0]
        flat = lambda x: rearrange(_to_uint8(x), "b t c h w -> (b t) c h w")  # noqa: E731
        return flat(video), flat(frames)

    def media_samples(self, batch: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """A video of the first sequence: real | conditional | modes, faces over landmark images."""
        targets, neutral, frames, label = self._inputs(batch)
        one = slice(0, 1)
        videos = self.generate(neutral[one], label[one], None, None if self.is_cranet else targets[one, 0],
                               frames.shape[1], include_conditional=not self.is_cranet)[0]
        faces = torch.cat([frames[0][None], videos], dim=0)  # (1 + K', T, 3, S, S)
        rows = [rearrange(_to_uint8(faces), "k t c h w -> t h (k w) c")]
        if not self.is_cranet:
            conditional, modes = self.generate_landmarks(targets[one, 0], label[one], frames.shape[1])
            marks = torch.cat([targets[one], conditional, modes[0]], dim=0)  # (2 + K, T, 1, S, S)
            rows.append(repeat(_to_uint8(marks * 2 - 1), "k t 1 h w -> t h (k w) c", c=3))
        return {f"{self.hparams.variant}_{SMILE_CLASSES[int(label[0])]}": torch.cat(rows, dim=1).cpu().numpy()}

    # ------------------------------------------------------------------ facezoo generate
    @classmethod
    def add_generate_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--neutral-image", type=Path, required=True, help="image of a neutral face (png/jpg)")
        parser.add_argument("--neutral-landmarks", type=Path, default=None,
                            help="(68, 2) .npy iBUG landmarks of that face in its pixels (CMM-Net needs them)")
        parser.add_argument("--label", choices=SMILE_CLASSES, default="spontaneous", help="smile class")
        parser.add_argument("--num-frames", type=int, default=32, help="frames per video (default 32, the paper's T)")
        parser.add_argument("--fps", type=float, default=25.0, help="frame rate of the written mp4s")
        parser.add_argument("--grid", action="store_true", help="also write one png grid (modes x frames)")

    def generate_to_files(self, args: argparse.Namespace, out_dir: Path) -> list[Path]:
        import cv2

        from datamodules.features.drawing import landmark_image
        from datamodules.features.io import atomic_path, write_video
        from datamodules.smile import _apply, eye_alignment

        if not args.neutral_image.is_file():
            raise FileNotFoundError(f"--neutral-image {args.neutral_image}: no such file")
        image = cv2.imread(str(args.neutral_image), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"--neutral-image {args.neutral_image}: not a readable image")
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        marks = None
        if args.neutral_landmarks is not None:
            if not args.neutral_landmarks.is_file():
                raise FileNotFoundError(f"--neutral-landmarks {args.neutral_landmarks}: no such file")
            points = np.load(args.neutral_landmarks).astype(np.float64)
            if points.shape != (68, 2):
                raise ValueError(f"--neutral-landmarks: expected a (68, 2) array, got {points.shape}")
            # the same eye alignment as the training data (4x supersampled, then area-resized)
            matrix = eye_alignment(points[None], 256)
            image = cv2.resize(cv2.warpAffine(image, matrix[0], (256, 256), flags=cv2.INTER_LINEAR,
                                              borderMode=cv2.BORDER_REPLICATE), (64, 64), interpolation=cv2.INTER_AREA)
            aligned = (_apply(matrix, points[None]) + 0.5) / 4 - 0.5
            marks = torch.from_numpy(landmark_image(aligned[0], 64).astype(np.float32))[None, None].to(self.device)
        elif not self.is_cranet:
            raise ValueError("--neutral-landmarks is required for CMM-Net (its input is the face's landmark image)")
        else:
            image = cv2.resize(image, (64, 64), interpolation=cv2.INTER_AREA)
        face = torch.from_numpy(image).permute(2, 0, 1)[None].float().div(127.5).sub(1).to(self.device)
        k = None if self.is_cranet else min(args.num_samples, self.hparams.num_modes)
        videos = self.generate(face, args.label, k if not self.is_cranet else args.num_samples, marks, args.num_frames)
        frames = rearrange(_to_uint8(videos[0]), "k t c h w -> k t h w c").cpu().numpy()
        written = []
        for i, video in enumerate(frames):
            path = out_dir / f"{args.label}_mode{i + 1}.mp4"
            write_video(path, video, fps=args.fps)
            written.append(path)
        if args.grid:
            grid = rearrange(frames, "k t h w c -> (k h) (t w) c")
            path = out_dir / f"{args.label}_grid.png"
            with atomic_path(path) as tmp:  # the temporary name keeps the .png suffix
                if not cv2.imwrite(str(tmp), cv2.cvtColor(np.ascontiguousarray(grid), cv2.COLOR_RGB2BGR)):
                    raise RuntimeError(f"{path}: OpenCV could not write the grid")
            written.append(path)
        return written

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self):
        recurrent = [*self.encoder.parameters(), *self.decoder.parameters(), *self.clstm.parameters()]
        if not self.is_cranet:
            recurrent += list(self.modes.parameters())
            return [self.optimizer(recurrent), self.optimizer_g(self.translator.parameters()),
                    self.optimizer_d(self.discriminator.parameters())]
        return [self.optimizer(recurrent), self.optimizer_d(self.discriminator.parameters())]
