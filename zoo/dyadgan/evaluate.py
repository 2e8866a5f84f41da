"""The Interactive-GAN paper's evaluation (arXiv 1801.09092, Sec. 4.4) of a trained DyadGAN.

    from zoo.dyadgan.evaluate import evaluate_dyadgan
    figures = evaluate_dyadgan(model, datamodule, num_samples=3, seed=0, split="test")

One flat ``dict[str, float]``; every figure is computed on ``split`` of an InterviewDataModule.

**Table 2** (C-LSTM MSE against ground truth, standardised shape parameters; the paper: 0.101
with overlap, 0.183 without), on windows of ``history + horizon`` frames every ``window_stride``
frames, the first ``history`` real:

* ``lstm_overlap_mse``: overlapping C-LSTM, the frame after the 100 real ones (the paper's
  "generating the 101st frame");
* ``lstm_nonoverlap_mse``: non-overlapping C-LSTM, the next ``horizon`` frames in one block;
* ``lstm_overlap_rollout_mse``: overlapping C-LSTM rolled forward FIFO over the same ``horizon``
  frames (its own outputs fed back): the like-for-like comparison with the non-overlapping one;
* references that need no model: ``hold_last_next_mse`` / ``hold_last_mse`` (repeat the last real
  frame, 1 or ``horizon`` frames ahead) and ``mean_shape_mse`` (the training mean, i.e. zeros).

**Table 1** (the two z strategies over the same windows' ``horizon`` frames): ``jerk_real``,
``{dictionary,lstm,lstm_nonoverlap}_jerk`` (mean norm of the third difference, parameter units per
frame^3, :func:`zoo.metrics.dyadic.mean_jerk`), ``*_diversity`` (mean pairwise squared distance of
``num_samples`` samples; the C-LSTMs are deterministic, so theirs is 0 by construction),
``*_mse`` / ``dictionary_min_mse`` (mean and best-of-K MSE against the ground truth), and speed:
``dictionary_fps``, ``lstm_fps``, ``lstm_nonoverlap_fps`` (z frames per second for one
400-frame stream, the paper's test-clip length: "real time" means >= the data's 30 fps) and
``render_fps`` (faces per second through the GAN stage(s), batches of ``batch_size``).

**Realism** (Fig. 8, two-stage vs one-stage), on the interviewer frames t >= ``history`` of
``split`` (every ``image_stride``-th, at most ``max_images``), each generated from the real z of
frame t and the 100 affect frames before it:

* ``ssim``: SSIM of the generated against the real face of the same frame;
* ``fid_world``: FID_world (:mod:`zoo.metrics.world_features`, **not FID**: Fréchet distance in
  the features of a small face network trained on the real training faces; not comparable to
  published FIDs) of the generated faces against the real faces;
* ``fid_world_dictionary``: the same for faces of whole generated sessions (z from the affect-shape
  dictionary, seed ``seed``): the full pipeline, nothing real but the interviewee's affect;
* ``fid_world_real_reference``: FID_world of the real faces of the training split against those
  of ``split`` (what two real sets score; a floor for the figures above);
* ``fid`` / ``fid_dictionary``: real FID with pytorch-fid's InceptionV3, only when its weights file
  is found (``fid_weights`` or the usual search, :mod:`zoo.metrics.feature_nets`);
  ``fid_available`` says whether it was;
* two-stage only (``has_sketches`` = 1): ``sketch_l1`` (stage 1 against the real sketch, pixels in
  [-1, 1]), ``stage2_ssim`` and ``stage2_fid_world`` (stage 2 from the *real* sketch: the
  translator alone). A one-stage model has ``has_sketches`` = 0 and none of these keys.

Counts: ``num_windows``, ``num_images``, ``num_samples``. ``world_net_landmark_error_px``: mean
distance (pixels) between the FID_world network's landmark head and the real landmarks of the
evaluated real faces, a check that the feature network understands this split's faces.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from einops import rearrange, repeat
from torch import Tensor, nn
from torchmetrics.functional.image import structural_similarity_index_measure

from datamodules.features.drawing import oval_mask, sketch
from zoo.common.eval_mode import evaluation_mode
from zoo.dyadgan.module import DyadGAN, _to_uint8, affect_windows
from zoo.metrics.dyadic import SampleDiversity, SequenceJerk, SequenceMSE
from zoo.metrics.realism import SSIM_KERNEL_SIZE, SSIM_SIGMA, frechet_distance_from_features
from zoo.metrics.world_features import cached_world_face_net

__all__ = ["evaluate_dyadgan", "SPEED_STREAM_FRAMES"]

SPEED_STREAM_FRAMES = 400  # paper Sec. 4.3: test clips of 400 frames
SPLITS = ("train", "val", "test")


def _check(model: Any, datamodule: Any, num_samples: int, split: str, window_stride: int, image_stride: int,
           max_images: int | None, batch_size: int) -> None:
    if not isinstance(model, DyadGAN):
        raise ValueError(f"model: expected a zoo.dyadgan.DyadGAN, got {type(model).__name__}")
    for name in ("sessions", "shape_parameters", "face_attribute_data"):
        if not callable(getattr(datamodule, name, None)):
            raise ValueError(f"datamodule: expected an InterviewDataModule (no {name}()), got {type(datamodule).__name__}")
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    for name, value in dict(num_samples=num_samples, window_stride=window_stride, image_stride=image_stride,
                            batch_size=batch_size).items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    if num_samples < 2:
        raise ValueError(f"num_samples: diversity needs >= 2 samples per input, got {num_samples}")
    if max_images is not None and max_images < 2:
        raise ValueError(f"max_images: expected None or >= 2, got {max_images}")
    hp = model.hparams
    for name in ("image_size", "history", "horizon"):
        if getattr(datamodule, name) != hp[name]:
            raise ValueError(f"model.{name}={hp[name]} but datamodule.{name}={getattr(datamodule, name)}: "
                             "evaluate the model on data of its own configuration")
    if not model.dictionary.fitted:
        raise ValueError("model.dictionary is not fitted: load a trained checkpoint or call model.fit_dictionary(datamodule)")


class _Mean:
    """Running mean of a scalar over elements."""

    def __init__(self) -> None:
        self.total, self.count = 0.0, 0

    def add(self, values: Tensor) -> None:
        self.total += float(values.double().sum())
        self.count += values.numel()

    @property
    def value(self) -> float:
        return self.total / self.count if self.count else float("nan")


def _windows(sessions, params, span: int, stride: int) -> tuple[Tensor, Tensor]:
    affect, shape = [], []
    for session, p in zip(sessions, params):
        for start in range(0, session.length - span + 1, stride):
            affect.append(session.affect[start:start + span])
            shape.append(p[start:start + span])
    if not affect:
        raise ValueError(f"no session of the split has history + horizon = {span} frames")
    return torch.from_numpy(np.stack(affect)).float(), torch.from_numpy(np.stack(shape)).float()


def _sequence_figures(model: DyadGAN, affect: Tensor, shape: Tensor, num_samples: int, batch_size: int,
                      generator: torch.Generator) -> dict[str, float]:
    h = model.hparams.history
    device = model.device
    mse = {name: _Mean() for name in ("lstm_overlap", "lstm_nonoverlap", "lstm_overlap_rollout", "hold_last_next",
                                      "hold_last", "mean_shape")}
    strategies = ("dictionary", "lstm", "lstm_nonoverlap")
    jerk = {name: SequenceJerk() for name in ("real", *strategies)}
    diversity = {name: SampleDiversity() for name in strategies}
    dictionary_mse, dictionary_min_mse = SequenceMSE(), SequenceMSE(best_of_k=True)
    for a, s in zip(affect.split(batch_size), shape.split(batch_size)):
        a, s = a.to(device), s.to(device)
        target, last = s[:, h:], s[:, h - 1:h]
        mse["lstm_overlap"].add((model.lstm_overlap(a[:, :h], s[:, :h]) - s[:, h:h + 1]).square())
        block = model.lstm_nonoverlap(a[:, :h], s[:, :h])
        mse["lstm_nonoverlap"].add((block - target).square())
        rolled = model.lstm_overlap.rollout(a[:, :-1], s[:, :h], target.shape[1])
        mse["lstm_overlap_rollout"].add((rolled - target).square())
        mse["hold_last_next"].add((last - s[:, h:h + 1]).square())
        mse["hold_last"].add((last - target).square())
        mse["mean_shape"].add(target.square())
        # z strategies over the window's last `horizon` frames (as DyadGAN.generate_sequences)
        means = a.unfold(1, h, 1)[:, :-1].mean(dim=-1)
        samples = {"dictionary": model.dictionary.sample(means, num_samples, generator),
                   "lstm": repeat(rolled, "b t p -> b k t p", k=num_samples),
                   "lstm_nonoverlap": repeat(block, "b t p -> b k t p", k=num_samples)}
        jerk["real"].update(target)
        for name, z in samples.items():
            jerk[name].update(z)
            diversity[name].update(z)
        dictionary_mse.update(samples["dictionary"], target)
        dictionary_min_mse.update(samples["dictionary"], target)
    out = {f"{name}_mse": m.value for name, m in mse.items()}
    out.update({f"{name}_jerk" if name != "real" else "jerk_real": float(m.compute()) for name, m in jerk.items()})
    out.update({f"{name}_diversity": float(m.compute()) for name, m in diversity.items()})
    out.update(dictionary_mse=float(dictionary_mse.compute()), dictionary_min_mse=float(dictionary_min_mse.compute()))
    return out


def _speed(model: DyadGAN, stream: Tensor, generator: torch.Generator) -> dict[str, float]:
    """z frames per second for one stream (B = 1, K = 1) of partner affect (T, 8)."""
    affect = stream[None].to(model.device)
    out = {}
    for name, strategy in (("dictionary", "dictionary"), ("lstm", "lstm"), ("lstm_nonoverlap", "lstm_nonoverlap")):
        model.sample_z(affect[:, :8], strategy, 1, generator=generator)  # warm-up
        _sync(model)
        start = time.perf_counter()
        model.sample_z(affect, strategy, 1, generator=generator)
        _sync(model)
        out[f"{name}_fps"] = affect.shape[1] / (time.perf_counter() - start)
    return out


def _sync(model: nn.Module) -> None:
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)


class _FeatureSet:
    """Features of one image set for every feature network in use (world net, Inception)."""

    def __init__(self, nets: dict[str, nn.Module]) -> None:
        self.nets = nets
        self.parts: dict[str, list[Tensor]] = {name: [] for name in nets}

    @torch.no_grad()
    def add(self, images: Tensor) -> None:
        for name, net in self.nets.items():
            self.parts[name].append(net(images).double().cpu())

    def get(self, name: str) -> Tensor:
        return torch.cat(self.parts[name])


def _frame_index(sessions, history: int, stride: int, max_images: int | None) -> list[tuple[int, int]]:
    index = [(i, t) for i, s in enumerate(sessions) for t in range(history, s.length, stride)]
    if len(index) < 2:
        raise ValueError(f"need at least 2 frames after the first history={history} frames, got {len(index)}")
    if max_images is not None and len(index) > max_images:
        keep = np.linspace(0, len(index) - 1, max_images).round().astype(int)
        index = [index[k] for k in keep]
    return index


def _batches(index: list[tuple[int, int]], size: int) -> Iterator[list[tuple[int, int]]]:
    for start in range(0, len(index), size):
        yield index[start:start + size]


def _ssim(fake: Tensor, real: Tensor) -> Tensor:
    """Per-frame SSIM of uint8 (N, 3, S, S) faces: zoo.metrics.realism's settings (Gaussian 11x11,
    sigma 1.5, data range 255) in float32, which runs ~20x faster on CPU than its float64 path."""
    return structural_similarity_index_measure(fake.float(), real.float(), gaussian_kernel=True, sigma=SSIM_SIGMA,
                                               kernel_size=SSIM_KERNEL_SIZE, data_range=255.0, reduction="none")


def _unit(images: np.ndarray) -> Tensor:
    return torch.from_numpy(np.asarray(images, dtype=np.float32)).div_(127.5).sub_(1.0)


def _realism_figures(model: DyadGAN, datamodule, split: str, index: list[tuple[int, int]], nets: dict[str, nn.Module],
                     batch_size: int, generator: torch.Generator) -> tuple[dict[str, float], _FeatureSet]:
    sessions, params = datamodule.sessions(split), datamodule.shape_parameters(split)
    h, size, device = model.hparams.history, model.hparams.image_size, model.device
    mask = oval_mask(size)
    real, made, dictionary_made, stage2 = (_FeatureSet(nets) for _ in range(4))
    ssim, stage2_ssim, sketch_l1, landmark_error = _Mean(), _Mean(), _Mean(), _Mean()
    world = nets["world"]
    render_seconds = 0.0
    # z of whole generated sessions from the dictionary: the full pipeline from affect alone
    session_affect = [torch.from_numpy(np.ascontiguousarray(s.affect)).float().to(device)[None] for s in sessions]
    dictionary_z = [model.sample_z(a, "dictionary", 1, generator=generator)[0, 0] for a in session_affect]
    session_windows = [affect_windows(a, h)[0] for a in session_affect]
    for chunk in _batches(index, batch_size):
        rows, frames = [i for i, _ in chunk], [t for _, t in chunk]
        window = torch.stack([session_windows[i][t] for i, t in chunk])
        z = torch.from_numpy(np.stack([params[i][t] for i, t in chunk])).float().to(device)
        real_faces = torch.from_numpy(np.stack([sessions[i].frames[t] for i, t in chunk]))
        real_faces = rearrange(real_faces, "n h w c -> n c h w").to(device)
        _sync(model)
        start = time.perf_counter()
        made_sketch, made_face = model.render(z, window)
        made_face = _to_uint8(made_face)
        _sync(model)
        render_seconds += time.perf_counter() - start
        ssim.add(_ssim(made_face, real_faces))
        real.add(real_faces)
        made.add(made_face)
        if callable(getattr(world, "predict", None)):  # is the feature network sensible on these faces?
            points = torch.from_numpy(np.stack([sessions[i].landmarks[t] for i, t in chunk])).to(device)
            landmark_error.add((world.predict(real_faces)[1] - points).norm(dim=-1))
        dict_z = torch.stack([dictionary_z[i][t] for i, t in zip(rows, frames)])
        dictionary_made.add(_to_uint8(model.render(dict_z, window)[1]))
        if made_sketch is not None:
            real_sketch = torch.stack([_unit(sketch(sessions[i].landmarks[t], size, oval_mask=mask)) for i, t in chunk])
            real_sketch = real_sketch[:, None].to(device)
            sketch_l1.add((made_sketch - real_sketch).abs())
            translated = _to_uint8(model.translator(real_sketch))
            stage2_ssim.add(_ssim(translated, real_faces))
            stage2.add(translated)
    out = {"ssim": ssim.value, "render_fps": len(index) / render_seconds, "has_sketches": float(model.two_stage)}
    if landmark_error.count:
        out["world_net_landmark_error_px"] = landmark_error.value
    for name in nets:
        prefix = "fid_world" if name == "world" else "fid"
        out[prefix] = frechet_distance_from_features(made.get(name), real.get(name))
        out[f"{prefix}_dictionary"] = frechet_distance_from_features(dictionary_made.get(name), real.get(name))
        if model.two_stage:
            out[f"stage2_{prefix}"] = frechet_distance_from_features(stage2.get(name), real.get(name))
    if model.two_stage:
        out.update(sketch_l1=sketch_l1.value, stage2_ssim=stage2_ssim.value)
    return out, real


def _real_reference(datamodule, net: nn.Module, real_features: Tensor, history: int, stride: int) -> float:
    """FID_world of the training split's real faces (as many as ``real_features``) against ``split``'s."""
    train = datamodule.sessions("train")
    index = _frame_index(train, history, stride, len(real_features))
    features = _FeatureSet({"world": net})
    device = next(net.parameters()).device
    for chunk in _batches(index, 256):
        faces = torch.from_numpy(np.stack([train[i].frames[t] for i, t in chunk]))
        features.add(rearrange(faces, "n h w c -> n c h w").to(device))
    return frechet_distance_from_features(features.get("world"), real_features)


@torch.no_grad()
def evaluate_dyadgan(model: DyadGAN, datamodule, *, num_samples: int = 3, seed: int = 0, split: str = "test",
                     window_stride: int = 10, image_stride: int = 1, max_images: int | None = 4000,
                     batch_size: int = 64, world_net: nn.Module | None = None,
                     world_net_settings: dict | None = None, world_net_stride: int = 2,
                     fid_weights: str | None = None, fid_feature_extractor: nn.Module | None = None) -> dict[str, float]:
    """The paper's Tables 1-2 and Fig. 8 realism for ``model`` on ``split`` of ``datamodule``
    (an :class:`~datamodules.interview.InterviewDataModule` of the model's sizes); see the module
    docstring for every key. Deterministic for a given ``seed`` (speed figures aside).

    ``world_net``: the FID_world feature network; default: :func:`~zoo.metrics.world_features.
    cached_world_face_net` trained (once, cached) on every ``world_net_stride``-th real training
    face with ``world_net_settings``. ``fid_weights`` / ``fid_feature_extractor``: pytorch-fid's
    InceptionV3 weights file / a prebuilt network; without either, the usual search
    (:func:`zoo.metrics.feature_nets.resolve_weights`) decides whether ``fid`` is computed.
    """
    _check(model, datamodule, num_samples, split, window_stride, image_stride, max_images, batch_size)
    device = model.device
    generator = torch.Generator(device=device).manual_seed(seed)
    h, f = model.hparams.history, model.hparams.horizon
    sessions, params = datamodule.sessions(split), datamodule.shape_parameters(split)
    affect, shape = _windows(sessions, params, h + f, window_stride)
    index = _frame_index(sessions, h, image_stride, max_images)
    if world_net is None:
        world_net = cached_world_face_net(**datamodule.face_attribute_data("train", world_net_stride),
                                          **(world_net_settings or {}))
    nets = {"world": world_net.to(device).eval()}
    fid_available = False
    if fid_feature_extractor is None:
        from zoo.metrics.feature_nets import build_feature_net

        try:
            fid_feature_extractor = build_feature_net("fid", fid_weights)
        except FileNotFoundError:
            if fid_weights is not None:
                raise
    if fid_feature_extractor is not None:
        nets["inception"] = fid_feature_extractor.to(device).eval()
        fid_available = True
    with evaluation_mode(model):
        figures = _sequence_figures(model, affect, shape, num_samples, batch_size, generator)
        stream = torch.from_numpy(np.ascontiguousarray(sessions[0].affect[:SPEED_STREAM_FRAMES])).float()
        figures.update(_speed(model, stream, generator))
        realism, real = _realism_figures(model, datamodule, split, index, nets, batch_size, generator)
        figures.update(realism)
        figures["fid_world_real_reference"] = _real_reference(datamodule, nets["world"], real.get("world"), h,
                                                              image_stride)
    figures.update(fid_available=float(fid_available), num_windows=float(len(affect)), num_images=float(len(index)),
                   num_samples=float(num_samples))
    return {key: float(value) for key, value in sorted(figures.items())}

