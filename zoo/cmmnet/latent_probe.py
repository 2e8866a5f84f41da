"""Does a CMM-Net's landmark VAE let a conditional LSTM carry a smile over to people it has not seen?

A minute-long check before hours of training (docs/cmmnet.md, session 6). The checkpoint's encoder
and decoder are frozen; a fresh :class:`~zoo.cmmnet.nets.ConditionalLSTM` of the model's sizes is
trained on the training split *in latent space*: free-running from the encoder mean of frame 0 (h_0),
squared error to the encoder means of the real frames (no decoding: ~30 ms per step of 16 sequences on
one thread at demo width, against ~0.7 s per step of 8 in the model's conditional-LSTM phase). Its decoded last frame is then compared, by symmetric Chamfer distance,
with the real last frame, on training people and on held-out people, next to the copy-the-neutral
baseline (:func:`zoo.cmmnet.evaluate._last_frame_figures`).

A latent space in which the same smile is the same offset for every face lets the LSTM beat the
neutral baseline on held-out people; one that memorises faces gives a low training figure and a
held-out one at or above the baseline. ``identity_blind`` trains an LSTM that sees only the label and
its own offset (added to h_0): if even that cannot fit its *training* people, a smile is a different
offset per face in this latent space. The model itself is not changed.
"""

from __future__ import annotations

import copy

import torch
from einops import rearrange
from torch import Tensor

from zoo.cmmnet.evaluate import _dataset, _gather, _last_frame_figures
from zoo.cmmnet.nets import ConditionalLSTM

__all__ = ["IdentityBlindLSTM", "latent_probe"]


class IdentityBlindLSTM(ConditionalLSTM):
    """A conditional LSTM whose steps see the label and its own last offset, not h_0: h_t = h_0 + offset_t."""

    def forward(self, h0: Tensor, label: Tensor, steps: int, teacher: Tensor | None = None,
                teacher_ratio: float = 1.0) -> Tensor:
        if teacher is not None:
            raise ValueError("IdentityBlindLSTM: teacher forcing is not supported (it is a probe)")
        context = torch.cat([torch.zeros_like(h0), self.label(label)], dim=-1)  # ConditionalLSTM's, with h_0 blanked
        offset, state, outputs = torch.zeros_like(h0), None, []
        for _ in range(steps):  # h_0 enters only as the point the offsets are added to
            out, state = self.lstm(torch.cat([offset, context], dim=-1)[:, None], state)
            offset = self.out(out[:, 0])
            outputs.append(h0 + offset)
        return torch.stack(outputs, dim=1)


@torch.no_grad()
def _encode(encoder, marks: Tensor, batch_size: int) -> Tensor:
    """Encoder means of landmark-image sequences (N, T, 1, S, S) -> (N, T, D)."""
    means = [encoder(rearrange(marks[i:i + batch_size], "b t c h w -> (b t) c h w"))[0]
             for i in range(0, len(marks), batch_size)]
    return rearrange(torch.cat(means), "(n t) d -> n t d", n=len(marks))


def latent_probe(model, datamodule, *, steps: int = 2000, sequences: int = 30, batch_size: int = 16,
                 lr: float = 2e-3, identity_blind: bool = False, seed: int = 0, split: str = "test") -> dict[str, float]:
    """Train a fresh conditional LSTM on ``model``'s frozen VAE (module docstring) for ``steps`` steps and
    return the last-frame Chamfer figures (px) on the first ``sequences`` sequences of the training split
    (``*_train``) and of ``split``: ``last_frame_px_neutral``, ``last_frame_px_conditional`` (the probe's
    LSTM), plus ``loss_first`` / ``loss_last`` (mean latent squared error of the first / last 50 steps)."""
    if model.hparams.variant != "cmmnet":
        raise ValueError(f"latent_probe: needs a CMM-Net (a landmark VAE), got variant {model.hparams.variant!r}")
    if steps < 1 or sequences < 1 or batch_size < 1:
        raise ValueError(f"steps, sequences, batch_size: expected >= 1, got {steps}, {sequences}, {batch_size}")
    if split not in ("val", "test"):
        raise ValueError(f"split: expected 'val' or 'test', got {split!r}")
    torch.manual_seed(seed)
    probe = copy.deepcopy(model).eval()  # the caller's model keeps its own LSTMs
    hp = probe.hparams
    lstm_class = IdentityBlindLSTM if identity_blind else ConditionalLSTM
    probe.clstm = lstm_class(hp.latent_dim, hp.num_classes, hp.label_dim, hp.lstm_hidden, hp.lstm_layers).to(probe.device)
    keys = ("landmark_images", "label")  # no faces: a 400-person training split's videos are 1.7 GB
    train = _gather(_dataset(datamodule, "train"), batch_size, keys)
    held_out = _gather(_dataset(datamodule, split), batch_size, keys)
    marks, labels = train["landmark_images"].to(probe.device), train["label"].to(probe.device)
    targets = _encode(probe.encoder, marks, batch_size)
    optimiser = torch.optim.Adam(probe.clstm.parameters(), lr=lr, betas=(0.5, 0.999))
    generator = torch.Generator().manual_seed(seed)
    losses = []
    probe.clstm.train()
    while len(losses) < steps:
        order = torch.randperm(len(targets), generator=generator)
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            h = probe.clstm(targets[index, 0], labels[index], targets.shape[1])
            loss = (h - targets[index]).pow(2).sum(dim=-1).mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
            if len(losses) == steps:
                break
    probe.clstm.eval()
    result = {"steps": float(steps), "loss_first": sum(losses[:50]) / len(losses[:50]),
              "loss_last": sum(losses[-50:]) / len(losses[-50:])}
    for suffix, data in (("", held_out), ("_train", train)):
        figures = _last_frame_figures(probe, data["landmark_images"][:sequences], data["label"][:sequences], batch_size)
        result[f"last_frame_px_neutral{suffix}"] = figures["neutral"]
        result[f"last_frame_px_conditional{suffix}"] = figures["conditional"]
    return result
