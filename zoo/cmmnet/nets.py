"""CMM-Net networks (Wang et al., "Every Smile is Unique", CVPR 2018), plain ``nn.Module``s.

Layer tables from the paper's Sec. 4.1 (notes A.6); Conv(k, s, p) = kernel, stride, padding:

* :class:`ConvEncoder` / :class:`ConvDecoder`: the landmark VAE, 4 x Conv(4,2,1) 64-128-256-512
  (LeakyReLU, BatchNorm but on the first) then two Conv(4,1,0) heads of 100 (mean, log-variance),
  and the symmetric decoder 512-256-128-64-1 (LeakyReLU + BatchNorm on the first four, sigmoid
  output: the decoder returns logits, the sigmoid is applied by the caller or by the BCE).
  The paper's heads are "mean and standard deviation"; a log-variance head is the usual stable
  parameterisation of the same thing (Kingma & Welling).
* :class:`ConditionalLSTM`: h_0 and the encoded label in, h_1..h_T out (Sec. 3.2). The paper
  does not give its inputs per step, hidden size or depth; here each step sees the previous
  embedding, h_0 and the label embedding, and outputs an offset from h_0 (identity kept).
  Optionally (``trajectory_frames``) each class also has a learned offset per frame, added to the
  LSTM's (see the class docstring).
* :class:`MultiModeLSTM` + a one-layer mode discriminator (Sec. 3.3): K LSTMs over h_1..h_T,
  each output an offset from h_t.
* :class:`UNetTranslator`: 6 x Conv(4,2,1) 64-128-256-512-512-512 (LeakyReLU on the first
  five, BatchNorm but on the first and last, ReLU on the last), the mirrored decoder (ReLU +
  BatchNorm, tanh last) with U-Net skips (Sec. 3.4 "U-Net like", pix2pix); 4 input channels
  (neutral RGB + landmark image), 3 output; optionally (not the paper's) the smile class as
  one-hot planes (StarGAN's conditioning).
* :class:`PatchDiscriminator`: 3 x Conv(4,2,1) + 2 x Conv(4,1,1) 64-128-256-512-1 on image pairs
  (6 channels), LeakyReLU after all but the last, BatchNorm on the middle three (pix2pix
  ``basic`` with ``n_layers_D 3``); a 6x6 map of logits on 64x64 input.

``base_channels`` scales every width (64 in the paper) so the demo config can train on a CPU.
"""

from __future__ import annotations

import torch
from einops import rearrange, repeat
from torch import nn

__all__ = [
    "ConvEncoder",
    "ConvDecoder",
    "ConditionalLSTM",
    "MultiModeLSTM",
    "UNetTranslator",
    "PatchDiscriminator",
    "reparameterise",
    "check_image",
    "pull_loss",
    "push_loss",
]

PAPER_IMAGE_SIZE = 64
_SLOPE = 0.2  # LeakyReLU slope (DCGAN / pix2pix; the paper does not give it)


def check_image(x: torch.Tensor, channels: int, name: str, size: int = PAPER_IMAGE_SIZE) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != (channels, size, size):
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name}: expected (N, {channels}, {size}, {size}), got {got}")


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


def downsampling_stack(in_channels: int, base_channels: int) -> nn.Sequential:
    """The VAE encoder's 4 x Conv(4, 2, 1) base x 1-2-4-8, LeakyReLU, BatchNorm but on the first: 64 -> 4 px."""
    layers: list[nn.Module] = []
    previous = in_channels
    for i, width in enumerate(base_channels * m for m in (1, 2, 4, 8)):
        layers.append(nn.Conv2d(previous, width, 4, 2, 1, bias=i == 0))
        if i > 0:
            layers.append(nn.BatchNorm2d(width))
        layers.append(nn.LeakyReLU(_SLOPE, inplace=True))
        previous = width
    return nn.Sequential(*layers)


class ConvEncoder(nn.Module):
    """64x64 image -> (mean, log-variance) of a ``latent_dim`` Gaussian (paper VAE encoder)."""

    def __init__(self, in_channels: int = 1, latent_dim: int = 100, base_channels: int = 64) -> None:
        super().__init__()
        self.features = downsampling_stack(in_channels, base_channels)
        previous = 8 * base_channels
        self.mean = nn.Conv2d(previous, latent_dim, 4, 1, 0)
        self.logvar = nn.Conv2d(previous, latent_dim, 4, 1, 0)
        self.in_channels, self.latent_dim = in_channels, latent_dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_image(x, self.in_channels, "encoder input")
        h = self.features(x)
        return self.mean(h).flatten(1), self.logvar(h).flatten(1)


class ConvDecoder(nn.Module):
    """``latent_dim`` code -> 64x64 logits (paper VAE decoder, symmetric to the encoder).

    ``condition_channels`` > 0 (not in the paper, 0 by default) makes it a conditional VAE decoder
    p(y | h, c) (Sohn et al., NeurIPS 2015): a condition image c (N, condition_channels, 64, 64), the
    neutral face's landmark image, is encoded by the encoder's four Conv(4, 2, 1) layers and each of
    their feature maps (32, 16, 8 and 4 px) is concatenated to the decoder's input at the same
    resolution (U-Net style). The person's face shape then comes from c at full resolution, and h
    has only to say how it moves (docs/cmmnet.md, session 12: the paper's decoder draws unseen
    people's smiles less faithfully than its training people's). With 0 the weights are the paper's,
    unchanged (published checkpoints load strictly).
    """

    def __init__(self, out_channels: int = 1, latent_dim: int = 100, base_channels: int = 64,
                 condition_channels: int = 0) -> None:
        super().__init__()
        if condition_channels < 0:
            raise ValueError(f"condition_channels: expected >= 0, got {condition_channels}")
        widths = [base_channels * m for m in (8, 4, 2, 1)]
        # a ConvTranspose after the first also reads the condition's features at its input size
        extra = widths if condition_channels else [0, 0, 0, 0]
        layers: list[nn.Module] = [nn.ConvTranspose2d(latent_dim, widths[0], 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(widths[0]), nn.LeakyReLU(_SLOPE, inplace=True)]
        for previous, width, more in zip(widths, widths[1:], extra):
            layers += [nn.ConvTranspose2d(previous + more, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width),
                       nn.LeakyReLU(_SLOPE, inplace=True)]
        layers.append(nn.ConvTranspose2d(widths[-1] + extra[-1], out_channels, 4, 2, 1))
        self.net = nn.Sequential(*layers)
        if condition_channels:
            self.condition = downsampling_stack(condition_channels, base_channels)
        self.latent_dim, self.condition_channels = latent_dim, condition_channels

    def condition_features(self, condition: torch.Tensor) -> list[torch.Tensor]:
        """Condition images (N, condition_channels, 64, 64) -> their feature maps, coarsest first
        ((N, 8w, 4, 4) .. (N, w, 32, 32)): computed once per neutral face, repeated per frame by the caller."""
        if not self.condition_channels:
            raise ValueError("condition_features: this decoder has no condition (condition_channels 0)")
        check_image(condition, self.condition_channels, "decoder condition")
        features = []
        for layer in self.condition:
            condition = layer(condition)
            if isinstance(layer, nn.LeakyReLU):
                features.append(condition)
        return features[::-1]

    def forward(self, z: torch.Tensor, features: list[torch.Tensor] | None = None) -> torch.Tensor:
        """``features``: :meth:`condition_features` of each code's condition image (needed iff
        ``condition_channels`` > 0)."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"decoder input: expected (N, {self.latent_dim}), got {tuple(z.shape)}")
        if (features is None) != (not self.condition_channels):
            raise ValueError("decoder: condition features are expected iff condition_channels > 0 "
                             f"(condition_channels {self.condition_channels}, features given: {features is not None})")
        if features is not None and (len(features) != 4 or any(f.shape[0] != z.shape[0] for f in features)):
            raise ValueError(f"decoder: expected 4 condition feature maps of batch {z.shape[0]}, got "
                             f"{[tuple(f.shape) for f in features]}")
        x = z[:, :, None, None]
        transposed = 0
        for layer in self.net:
            if isinstance(layer, nn.ConvTranspose2d):
                if features is not None and transposed > 0:
                    x = torch.cat([x, features[transposed - 1]], dim=1)
                transposed += 1
            x = layer(x)
        return x


class ConditionalLSTM(nn.Module):
    """h_0 (B, D) and a class label (B,) -> h_1..h_T (B, T, D) (Sec. 3.2).

    ``trajectory_frames`` > 0 adds a learned offset trajectory per class, (C, frames, D), zero at
    start: h_t = h_0 + a_label(t) + LSTM(...), a_label(t) held at its last frame beyond ``frames``
    (the smile stays at its apex). Not in the paper, which does not say how the label enters.
    Why: with the label only among the LSTM's inputs, the class hardly changed its output for
    people it had not seen (docs/cmmnet.md, session 9: ROC AUC of the landmark-path classifier
    0.57 against 0.80 with the trajectory); a per-class mean path is the part of the sequence the
    label explains, and the LSTM is left the person-dependent rest."""

    def __init__(self, latent_dim: int = 100, num_classes: int = 2, label_dim: int = 16,
                 hidden_size: int = 256, num_layers: int = 1, trajectory_frames: int = 0) -> None:
        super().__init__()
        if trajectory_frames < 0:
            raise ValueError(f"trajectory_frames: expected >= 0 (0 = no class trajectory), got {trajectory_frames}")
        self.label = nn.Embedding(num_classes, label_dim)
        self.lstm = nn.LSTM(2 * latent_dim + label_dim, hidden_size, num_layers, batch_first=True)
        self.out = nn.Linear(hidden_size, latent_dim)
        nn.init.zeros_(self.out.weight)  # starts as "stay neutral": h_t = h_0
        nn.init.zeros_(self.out.bias)
        self.trajectory = (nn.Parameter(torch.zeros(num_classes, trajectory_frames, latent_dim))
                           if trajectory_frames else None)
        self.num_classes, self.latent_dim = num_classes, latent_dim

    def forward(self, h0: torch.Tensor, label: torch.Tensor, steps: int, teacher: torch.Tensor | None = None,
                teacher_ratio: float = 1.0) -> torch.Tensor:
        """``teacher`` (B, >= steps - 1, D): embeddings of the real frames 1..T-1; when given, step t + 1
        reads ``teacher[:, t - 1]`` instead of its own previous output with probability
        ``teacher_ratio`` per sequence and step (teacher forcing, Williams & Zipser 1989; a ratio < 1
        is scheduled sampling's mixture, Bengio et al., NIPS 2015). Inference never passes it."""
        if h0.ndim != 2 or h0.shape[1] != self.latent_dim:
            raise ValueError(f"h0: expected (B, {self.latent_dim}), got {tuple(h0.shape)}")
        if label.shape != h0.shape[:1] or label.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"label: expected integer (B,) = ({h0.shape[0]},), got {label.dtype} {tuple(label.shape)}")
        if ((label < 0) | (label >= self.num_classes)).any():
            raise ValueError(f"label: expected classes in 0..{self.num_classes - 1}, got {label.tolist()}")
        if steps < 1:
            raise ValueError(f"steps: expected >= 1, got {steps}")
        if teacher is not None and (teacher.ndim != 3 or teacher.shape[0] != h0.shape[0]
                                    or teacher.shape[1] < steps - 1 or teacher.shape[2] != self.latent_dim):
            raise ValueError(f"teacher: expected (B, >= steps - 1, D) = ({h0.shape[0]}, >= {steps - 1}, "
                             f"{self.latent_dim}), got {tuple(teacher.shape)}")
        if not 0.0 <= teacher_ratio <= 1.0:
            raise ValueError(f"teacher_ratio: expected a probability in [0, 1], got {teacher_ratio}")
        context = torch.cat([h0, self.label(label)], dim=-1)
        if self.trajectory is not None:  # (B, steps, D); the last frame held beyond the trajectory
            frames = torch.arange(steps, device=h0.device).clamp(max=self.trajectory.shape[1] - 1)
            start = h0[:, None] + self.trajectory[label][:, frames]
        else:
            start = repeat(h0, "b d -> b t d", t=steps)
        previous, state, outputs = h0, None, []
        for t in range(steps):  # autoregressive: each step sees the embedding it produced last
            out, state = self.lstm(torch.cat([previous, context], dim=-1)[:, None], state)
            previous = start[:, t] + self.out(out[:, 0])
            outputs.append(previous)
            if teacher is not None and t + 1 < steps:
                use = torch.rand(h0.shape[0], 1, device=h0.device) < teacher_ratio
                previous = torch.where(use, teacher[:, t], previous)
        return torch.stack(outputs, dim=1)


class MultiModeLSTM(nn.Module):
    """K LSTMs over h_1..h_T (B, T, D) -> K sequences (B, K, T, D) (Sec. 3.3), label-blind."""

    def __init__(self, num_modes: int = 3, latent_dim: int = 100, hidden_size: int = 256) -> None:
        super().__init__()
        if num_modes < 2:
            raise ValueError(f"num_modes: expected >= 2 (push needs modes to tell apart), got {num_modes}")
        self.lstms = nn.ModuleList(nn.LSTM(latent_dim, hidden_size, batch_first=True) for _ in range(num_modes))
        self.outs = nn.ModuleList(nn.Linear(hidden_size, latent_dim) for _ in range(num_modes))
        self.discriminator = nn.Linear(latent_dim, num_modes)  # phi: one FC layer (+ softmax in the CE)
        self.num_modes, self.latent_dim = num_modes, latent_dim

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if h.ndim != 3 or h.shape[-1] != self.latent_dim:
            raise ValueError(f"h: expected (B, T, {self.latent_dim}), got {tuple(h.shape)}")
        modes = [h + out(lstm(h)[0]) for lstm, out in zip(self.lstms, self.outs)]
        return torch.stack(modes, dim=1)

    def mode_logits(self, modes: torch.Tensor) -> torch.Tensor:
        """phi over the temporal average of each mode: (B, K, T, D) -> (B, K, K) logits."""
        return self.discriminator(modes.mean(dim=2))


def pull_loss(h: torch.Tensor, modes: torch.Tensor) -> torch.Tensor:
    """Eq. 2: ||h_t - h_t*||_2 with h_t* the mode average, averaged over sequences and frames."""
    return (h - modes.mean(dim=1)).norm(dim=-1).mean()


def push_loss(logits: torch.Tensor) -> torch.Tensor:
    """Eq. 3: cross-entropy of phi recognising which LSTM produced each temporally averaged mode."""
    batch, k, _ = logits.shape
    target = repeat(torch.arange(k, device=logits.device), "k -> (b k)", b=batch)
    return nn.functional.cross_entropy(rearrange(logits, "b k c -> (b k) c"), target)


class UNetTranslator(nn.Module):
    """(landmark image (N, 1, 64, 64), neutral face (N, 3, 64, 64) in [-1, 1]) -> face (N, 3, 64, 64).

    ``label_classes`` > 0 (not CMM-Net's) also feeds the smile class, StarGAN's way (Choi et al.,
    CVPR 2018, Sec. 3: the target label as one-hot planes "spatially replicated" next to the image):
    :meth:`forward` then takes ``label`` (N,). The planes go through a convolution of their own,
    added to the first layer's before its activation, which is the first convolution over the
    concatenated input split in two (convolution is linear in its input channels). Drawn from a
    forked RNG, so every other weight, hence the run's random stream, is as without it.
    """

    def __init__(self, base_channels: int = 64, skip_connections: bool = True, landmark_channels: int = 1,
                 label_classes: int = 0) -> None:
        super().__init__()
        if label_classes < 0:
            raise ValueError(f"label_classes: expected >= 0 (0 = no label input), got {label_classes}")
        widths = [base_channels * m for m in (1, 2, 4, 8, 8, 8)]
        self.down = nn.ModuleList()
        previous = 3 + landmark_channels
        for i, width in enumerate(widths):
            layers: list[nn.Module] = [nn.Conv2d(previous, width, 4, 2, 1, bias=i in (0, len(widths) - 1))]
            if 0 < i < len(widths) - 1:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU(inplace=True) if i == len(widths) - 1 else nn.LeakyReLU(_SLOPE, inplace=True))
            self.down.append(nn.Sequential(*layers))
            previous = width
        self.up = nn.ModuleList()
        outs = widths[-2::-1] + [3]  # 512, 512, 256, 128, 64, 3
        for i, width in enumerate(outs):
            skip = widths[len(widths) - 1 - i] if skip_connections and i > 0 else 0
            last = i == len(outs) - 1
            layers = [nn.ConvTranspose2d(previous + skip, width, 4, 2, 1, bias=last)]
            layers += [nn.Tanh()] if last else [nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            self.up.append(nn.Sequential(*layers))
            previous = width
        self.skip_connections, self.landmark_channels, self.label_classes = skip_connections, landmark_channels, label_classes
        if label_classes:
            with torch.random.fork_rng(devices=[]):
                self.label_in = nn.Conv2d(label_classes, widths[0], 4, 2, 1, bias=False)

    def label_planes(self, label: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
        """One-hot label planes (N, label_classes, S, S) for images ``like`` (N, C, S, S)."""
        n, _, height, width = like.shape
        if not isinstance(label, torch.Tensor) or label.shape != (n,) or label.is_floating_point():
            got = f"{label.dtype} {tuple(label.shape)}" if isinstance(label, torch.Tensor) else type(label).__name__
            raise ValueError(f"label: this translator reads the class (label_classes={self.label_classes}); "
                             f"expected an integer tensor ({n},), got {got}")
        low, high = torch.stack(torch.aminmax(label)).tolist() if label.numel() else (0, 0)  # one device sync
        if not 0 <= low <= high < self.label_classes:
            raise ValueError(f"label: expected class indices in 0..{self.label_classes - 1}, got {label.unique().tolist()}")
        one_hot = nn.functional.one_hot(label.long(), self.label_classes).to(like.dtype)
        return repeat(one_hot, "n c -> n c h w", h=height, w=width)

    def forward(self, landmark_image: torch.Tensor, neutral: torch.Tensor,
                label: torch.Tensor | None = None) -> torch.Tensor:
        check_image(landmark_image, self.landmark_channels, "landmark_image")
        check_image(neutral, 3, "neutral")
        x = torch.cat([neutral, landmark_image], dim=1)
        skips = []
        for i, layer in enumerate(self.down):
            if i == 0 and self.label_classes:
                x = layer[1:](layer[0](x) + self.label_in(self.label_planes(label, x)))
            else:
                x = layer(x)
            skips.append(x)
        for i, layer in enumerate(self.up):
            if self.skip_connections and i > 0:
                x = torch.cat([x, skips[len(skips) - 1 - i]], dim=1)
            x = layer(x)
        return x


class PatchDiscriminator(nn.Module):
    """Image pair ([z_0, z_t], (N, 6, 64, 64)) -> per-patch real/fake logits (N, 1, 6, 6) (Eq. 5).

    ``num_aus`` > 0 adds GANimation's second head (Pumarola et al., ECCV 2018, Sec. 4: "D_y"), a
    convolution over the whole last feature map that regresses the frame's AU intensities (N, A);
    :meth:`patches_and_aus` returns both. Not in CMM-Net; see ``CMMNet(translator_au_weight)``.
    """

    def __init__(self, base_channels: int = 64, in_channels: int = 6, num_aus: int = 0) -> None:
        super().__init__()
        if num_aus < 0:
            raise ValueError(f"num_aus: expected >= 0 (0 = no AU head), got {num_aus}")
        widths = [base_channels * m for m in (1, 2, 4, 8)]
        layers: list[nn.Module] = []
        previous = in_channels
        for i, width in enumerate(widths):
            stride = 2 if i < 3 else 1
            layers.append(nn.Conv2d(previous, width, 4, stride, 1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.LeakyReLU(_SLOPE, inplace=True))
            previous = width
        layers.append(nn.Conv2d(previous, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)  # one Sequential, as before the AU head: published keys unchanged
        self.in_channels, self.num_aus = in_channels, num_aus
        if num_aus:
            # three stride-2 convolutions and one stride-1 (k 4, p 1): 64 px -> 7 x 7 cells. Drawn from a
            # forked RNG, so the random stream, hence every other module's initialisation and the data
            # order, stays as without the head (an ablation differs by the head alone, not the seed)
            with torch.random.fork_rng(devices=[]):
                self.au_head = nn.Conv2d(previous, num_aus, PAPER_IMAGE_SIZE // 8 - 1)

    def _pair(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        pair = torch.cat([first, second], dim=1)
        check_image(pair, self.in_channels, "discriminator pair")
        return pair

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        return self.net(self._pair(first, second))

    def patches_and_aus(self, first: torch.Tensor, second: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-patch logits (N, 1, 6, 6) and the AU head's intensities (N, A), from one pass."""
        if not self.num_aus:
            raise RuntimeError("patches_and_aus: this discriminator has no AU head (num_aus = 0)")
        features = self.net[:-1](self._pair(first, second))
        return self.net[-1](features), rearrange(self.au_head(features), "n a 1 1 -> n a")
