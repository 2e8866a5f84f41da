"""Networks of the DyadGAN-style two-stage generator (Interactive GAN, arXiv 1801.09092).

* :class:`AffectEncoder`: the partner's affect over the last ``history`` frames -> condition.
* :class:`ConditionalLSTM`: C-LSTM over (affect, own shape parameters) of the last 100 frames ->
  the next frame (overlapping) or the next 100 frames (non-overlapping) (Sec. 3.4).
* :class:`ConditionalDCGANGenerator` / :class:`ConditionalDCGANDiscriminator`: stage 1 (affect
  + z -> sketch) and the one-stage baseline (affect + z -> face); DCGAN conv-BatchNorm-ReLU
  modules (Radford et al., paper Sec. 4.3).
* :class:`UNetGenerator` / :class:`PatchDiscriminator`: stage 2 (sketch -> face), the pix2pix
  U-Net with skips between layer i and n - i and the pix2pix PatchGAN conditioned on the sketch
  (paper Sec. 4.3; pix2pix ``models/networks.py``, notes B.3).
"""

from __future__ import annotations

import math

import torch
from einops import rearrange, repeat
from torch import Tensor, nn

__all__ = [
    "AffectEncoder",
    "ConditionalLSTM",
    "ConditionalDCGANGenerator",
    "ConditionalDCGANDiscriminator",
    "UNetGenerator",
    "PatchDiscriminator",
    "init_gan_weights",
]

AFFECT_SUMMARIES = ("flatten", "mean")


def init_gan_weights(module: nn.Module, std: float = 0.02) -> None:
    """DCGAN / pix2pix init: conv weights N(0, 0.02), BatchNorm weight N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


def _check_image_size(image_size: int, minimum: int = 8) -> int:
    if image_size < minimum or image_size & (image_size - 1):
        raise ValueError(f"image_size: expected a power of two >= {minimum}, got {image_size}")
    return image_size


class AffectEncoder(nn.Module):
    """(B, H, A) affect window -> (B, dim) condition.

    ``flatten`` follows DyadGAN's shape GAN, which feeds the whole flattened window (17 AUs x 100
    frames there, ``shape_gan/model.py``); ``mean`` uses the window's mean descriptor.
    """

    def __init__(self, history: int, num_affects: int = 8, dim: int = 64, summary: str = "flatten") -> None:
        super().__init__()
        if summary not in AFFECT_SUMMARIES:
            raise ValueError(f"affect_summary: expected one of {AFFECT_SUMMARIES}, got {summary!r}")
        self.history, self.num_affects, self.summary = history, num_affects, summary
        width = history * num_affects if summary == "flatten" else num_affects
        self.net = nn.Sequential(nn.Linear(width, dim), nn.LeakyReLU(0.2))
        self.dim = dim

    def forward(self, window: Tensor) -> Tensor:
        if window.ndim != 3 or window.shape[1:] != (self.history, self.num_affects):
            raise ValueError(f"affect window: expected (B, {self.history}, {self.num_affects}), got {tuple(window.shape)}")
        x = rearrange(window, "b h a -> b (h a)") if self.summary == "flatten" else window.mean(dim=1)
        return self.net(x)


class ConditionalLSTM(nn.Module):
    """C-LSTM: per step the partner's affect concatenated with the agent's shape parameters; the
    last hidden state predicts ``horizon`` future frames as offsets from the last input frame.

    ``horizon=1`` is the overlapping C-LSTM (rolled forward FIFO by :meth:`rollout`),
    ``horizon=history`` the non-overlapping one. The paper does not say how 100 frames are emitted
    at once; here one linear layer reads them out of the final hidden state.
    """

    def __init__(self, shape_dim: int, num_affects: int = 8, hidden: int = 256, layers: int = 2,
                 horizon: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        if horizon < 1 or hidden < 1 or layers < 1:
            raise ValueError(f"horizon, hidden, layers: expected >= 1, got {horizon}, {hidden}, {layers}")
        self.shape_dim, self.num_affects, self.horizon = shape_dim, num_affects, horizon
        self.lstm = nn.LSTM(shape_dim + num_affects, hidden, layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(hidden, horizon * shape_dim)

    def forward(self, affect: Tensor, shape: Tensor) -> Tensor:
        """affect (B, H, A), shape (B, H, P) -> (B, horizon, P)."""
        if affect.ndim != 3 or shape.ndim != 3 or affect.shape[:2] != shape.shape[:2]:
            raise ValueError(f"affect {tuple(affect.shape)} and shape {tuple(shape.shape)}: expected (B, H, A) and (B, H, P)")
        if shape.shape[-1] != self.shape_dim or affect.shape[-1] != self.num_affects:
            raise ValueError(f"expected {self.num_affects} affects and {self.shape_dim} shape parameters, "
                             f"got {affect.shape[-1]} and {shape.shape[-1]}")
        out, _ = self.lstm(torch.cat([affect, shape], dim=-1))
        offsets = rearrange(self.head(out[:, -1]), "b (f p) -> b f p", f=self.horizon)
        return shape[:, -1:] + offsets

    @torch.no_grad()
    def rollout(self, affect: Tensor, history: Tensor, frames: int) -> Tensor:
        """Generate ``frames`` frames after ``history`` (B, H, P) given the affect stream
        (B, H + frames - 1, A) aligned so ``affect[:, n : n + H]`` precedes generated frame n.

        Each step predicts ``horizon`` frames, appends them and drops as many of the oldest (FIFO):
        one at a time for the overlapping C-LSTM, blocks of H for the non-overlapping one.
        """
        window = history.shape[1]
        if affect.shape[1] < window + frames - 1:
            raise ValueError(f"affect: need {window + frames - 1} frames for {frames} generated after {window}, "
                             f"got {affect.shape[1]}")
        shapes, made = history, []
        produced = 0
        while produced < frames:
            step = self(affect[:, produced:produced + window], shapes[:, -window:])
            made.append(step)
            shapes = torch.cat([shapes[:, step.shape[1]:], step], dim=1)
            produced += step.shape[1]
        return torch.cat(made, dim=1)[:, :frames]


class ConditionalDCGANGenerator(nn.Module):
    """(z (B, Z), condition (B, C)) -> image (B, out_channels, S, S) in [-1, 1].

    DCGAN: a linear projection to 4x4, then stride-2 ConvTranspose-BatchNorm-ReLU blocks, tanh out.
    """

    def __init__(self, z_dim: int, cond_dim: int, image_size: int = 64, out_channels: int = 1, ngf: int = 64) -> None:
        super().__init__()
        _check_image_size(image_size)
        ups = int(math.log2(image_size // 4))
        widths = [ngf * min(2 ** (ups - 1 - i), 8) for i in range(ups)]
        self.z_dim, self.cond_dim = z_dim, cond_dim
        self.project = nn.Sequential(nn.Linear(z_dim + cond_dim, widths[0] * 16, bias=False), nn.BatchNorm1d(widths[0] * 16),
                                     nn.ReLU(True))
        blocks = []
        for i in range(ups - 1):
            blocks += [nn.ConvTranspose2d(widths[i], widths[i + 1], 4, 2, 1, bias=False), nn.BatchNorm2d(widths[i + 1]), nn.ReLU(True)]
        blocks += [nn.ConvTranspose2d(widths[-1], out_channels, 4, 2, 1), nn.Tanh()]
        self.body = nn.Sequential(*blocks)
        self.first_width = widths[0]
        init_gan_weights(self)

    def forward(self, z: Tensor, condition: Tensor) -> Tensor:
        x = self.project(torch.cat([z, condition], dim=-1))
        return self.body(rearrange(x, "b (c h w) -> b c h w", h=4, w=4))


class ConditionalDCGANDiscriminator(nn.Module):
    """(image (B, in_channels, S, S), condition (B, C)) -> real/fake logits (B,).

    DCGAN strided Conv-BatchNorm-LeakyReLU down to 4x4; the condition is tiled onto the 4x4 map
    (as in Reed et al.'s text-conditional DCGAN) before the final convolutions.
    """

    def __init__(self, in_channels: int, cond_dim: int, image_size: int = 64, ndf: int = 64) -> None:
        super().__init__()
        _check_image_size(image_size)
        downs = int(math.log2(image_size // 4))
        widths = [ndf * min(2**i, 8) for i in range(downs)]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for i in range(1, downs):
            layers += [nn.Conv2d(widths[i - 1], widths[i], 4, 2, 1, bias=False), nn.BatchNorm2d(widths[i]), nn.LeakyReLU(0.2, True)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Conv2d(widths[-1] + cond_dim, widths[-1], 1, bias=False), nn.BatchNorm2d(widths[-1]),
                                  nn.LeakyReLU(0.2, True), nn.Conv2d(widths[-1], 1, 4))
        init_gan_weights(self)

    def forward(self, image: Tensor, condition: Tensor) -> Tensor:
        x = self.body(image)
        tiled = repeat(condition, "b c -> b c h w", h=x.shape[-2], w=x.shape[-1])
        return rearrange(self.head(torch.cat([x, tiled], dim=1)), "b 1 1 1 -> b")


class UNetGenerator(nn.Module):
    """pix2pix U-Net: ``num_downs`` stride-2 4x4 convolutions down to 1x1 and back up, with the
    encoder output at depth i concatenated to the decoder input at depth i (pix2pix ``UnetGenerator``).

    Widths ngf, 2ngf, 4ngf, then 8ngf; no norm on the outermost and innermost downs; dropout 0.5 on
    the ``num_downs - 5`` decoder blocks after the innermost one; tanh output. ``image_size`` must
    equal ``2 ** num_downs`` (8 downs for 256 as in the paper, 6 for 64; notes E).
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 3, num_downs: int = 8, ngf: int = 64,
                 image_size: int = 256, dropout: float = 0.5) -> None:
        super().__init__()
        if num_downs < 2 or image_size != 2**num_downs:
            raise ValueError(f"num_downs={num_downs}, image_size={image_size}: the U-Net needs image_size == 2 ** num_downs "
                             "(8 downs for 256 px, 7 for 128, 6 for 64)")
        widths = [ngf * min(2**i, 8) for i in range(num_downs)]
        self.downs = nn.ModuleList()
        for i, width in enumerate(widths):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2, True)]
            layers.append(nn.Conv2d(in_channels if i == 0 else widths[i - 1], width, 4, 2, 1, bias=i in (0, num_downs - 1)))
            if 0 < i < num_downs - 1:
                layers.append(nn.BatchNorm2d(width))
            self.downs.append(nn.Sequential(*layers))
        self.ups = nn.ModuleList()
        for i in reversed(range(num_downs)):
            source = widths[i] if i == num_downs - 1 else 2 * widths[i]
            if i == 0:
                self.ups.append(nn.Sequential(nn.ReLU(True), nn.ConvTranspose2d(source, out_channels, 4, 2, 1), nn.Tanh()))
                continue
            layers = [nn.ReLU(True), nn.ConvTranspose2d(source, widths[i - 1], 4, 2, 1, bias=False), nn.BatchNorm2d(widths[i - 1])]
            # pix2pix: dropout on the 8ngf blocks between the innermost and the last three
            if dropout > 0 and num_downs - 1 > i >= 4:
                layers.append(nn.Dropout(dropout))
            self.ups.append(nn.Sequential(*layers))
        init_gan_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        x = self.ups[0](skips.pop())
        for up in self.ups[1:]:
            x = up(torch.cat([x, skips.pop()], dim=1))
        return x


class PatchDiscriminator(nn.Module):
    """pix2pix 70x70 PatchGAN (``n_layers=3``) on ``cat(condition, image)``: per-patch logits
    (B, 1, h, w). Conditioned on the sketch, like pix2pix's ``netD`` (notes B.3, F.4)."""

    def __init__(self, in_channels: int = 4, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        width = ndf
        for n in range(1, n_layers + 1):
            new = ndf * min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(width, new, 4, stride, 1, bias=False), nn.BatchNorm2d(new), nn.LeakyReLU(0.2, True)]
            width = new
        layers.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.body = nn.Sequential(*layers)
        init_gan_weights(self)

    def forward(self, condition: Tensor, image: Tensor) -> Tensor:
        return self.body(torch.cat([condition, image], dim=1))
