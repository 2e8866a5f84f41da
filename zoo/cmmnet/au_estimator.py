"""An AU6/AU12 intensity regressor on face images, run identically on real and generated videos.

CMM-Net measures the cheek raiser on generated and original test videos with OpenFace's AU
regressors (Baltrusaitis et al. FG 2015, the paper's ref. [3]; Sec. 4.3). OpenFace's models are
not available offline, and landmark rules need sub-pixel landmarks that a 64x64 generated face
does not give, so this module learns the same kind of estimator on the fold's *training* data:
a small CNN mapping (neutral face, frame) to the AU intensities the DataModule provides
(``batch["au"]``: DISFA/DISFA+ labels, or the landmark rules on UvA-NEMO's true landmarks).
OpenFace likewise calibrates intensities to the person's neutral face. The same fitted network
scores real and generated frames (notes A.8: "the same AU estimator on both").

Network: 6 input channels (neutral and frame, [-1, 1]), 4 x Conv(4, 2, 1) 16-32-64-64 with
LeakyReLU, linear 1024 -> 64 -> A, output ``5 * sigmoid`` (DISFA / OpenFace 0..5 scale).
"""

from __future__ import annotations

import torch
from einops import rearrange, repeat
from torch import Tensor, nn

from zoo.common.eval_mode import evaluation_mode

__all__ = ["AUEstimator", "fit_au_estimator"]


class AUEstimator(nn.Module):
    """(neutral (N, 3, 64, 64), frame (N, 3, 64, 64)) in [-1, 1] -> AU intensities (N, A) in [0, 5]."""

    def __init__(self, num_aus: int = 2, width: int = 16, image_size: int = 64) -> None:
        super().__init__()
        if image_size != 64:
            raise ValueError(f"image_size: expected 64 (CMM-Net's frames), got {image_size}")
        widths = [width, 2 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = []
        previous = 6
        for w in widths:
            layers += [nn.Conv2d(previous, w, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
            previous = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(previous * 16, 64), nn.LeakyReLU(0.2, inplace=True),
                                  nn.Linear(64, num_aus))
        self.num_aus = num_aus

    def forward(self, neutral: Tensor, frame: Tensor) -> Tensor:
        for name, x in (("neutral", neutral), ("frame", frame)):
            if not isinstance(x, Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != (3, 64, 64):
                got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
                raise ValueError(f"{name}: expected (N, 3, 64, 64) in [-1, 1], got {got}")
        if neutral.shape != frame.shape:
            raise ValueError(f"neutral and frame: shapes differ, {tuple(neutral.shape)} vs {tuple(frame.shape)}")
        return 5.0 * torch.sigmoid(self.head(self.features(torch.cat([neutral, frame], dim=1))))

    @torch.no_grad()
    def sequences(self, neutral: Tensor, video: Tensor, batch_size: int = 256) -> Tensor:
        """AU curves (B, T, A) of videos (B, T, 3, 64, 64) against their neutral faces (B, 3, 64, 64)."""
        if video.ndim != 5 or neutral.ndim != 4 or video.shape[0] != neutral.shape[0]:
            raise ValueError(f"video, neutral: expected (B, T, 3, 64, 64) and (B, 3, 64, 64), got "
                             f"{tuple(video.shape)}, {tuple(neutral.shape)}")
        b, t = video.shape[:2]
        frames = rearrange(video.float(), "b t c h w -> (b t) c h w")
        neutrals = repeat(neutral.float(), "b c h w -> (b t) c h w", t=t)
        with evaluation_mode(self):
            out = torch.cat([self(neutrals[i:i + batch_size], frames[i:i + batch_size])
                             for i in range(0, len(frames), batch_size)])
        return rearrange(out, "(b t) a -> b t a", b=b)


def fit_au_estimator(neutral: Tensor, video: Tensor, au: Tensor, *, epochs: int = 8, batch_size: int = 64,
                     lr: float = 2e-3, seed: int = 0, width: int = 16) -> AUEstimator:
    """Fit an :class:`AUEstimator` on real training sequences: neutral (B, 3, 64, 64), video
    (B, T, 3, 64, 64), target intensities au (B, T, A); MSE, Adam, seeded shuffling."""
    if video.ndim != 5 or au.ndim != 3 or au.shape[:2] != video.shape[:2] or neutral.shape[0] != video.shape[0]:
        raise ValueError(f"neutral, video, au: expected (B, 3, S, S), (B, T, 3, S, S), (B, T, A); got "
                         f"{tuple(neutral.shape)}, {tuple(video.shape)}, {tuple(au.shape)}")
    if not torch.isfinite(au).all() or au.min() < 0 or au.max() > 5:
        raise ValueError("au: expected finite intensities in 0..5")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs, batch_size: expected >= 1, got {epochs}, {batch_size}")
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AUEstimator(au.shape[-1], width)
    t = video.shape[1]
    frames = rearrange(video.float(), "b t c h w -> (b t) c h w")
    owners = torch.arange(video.shape[0]).repeat_interleave(t)
    targets = rearrange(au.float(), "b t a -> (b t) a")
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    with torch.enable_grad():
        for _ in range(epochs):
            order = torch.randperm(len(frames), generator=generator)
            for start in range(0, len(order), batch_size):
                pick = order[start:start + batch_size]
                loss = nn.functional.mse_loss(model(neutral[owners[pick]].float(), frames[pick]), targets[pick])
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
    return model.eval()
