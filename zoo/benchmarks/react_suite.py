"""The REACT suite: K reactions per speaker on the test split, scored with every REACT metric.

Protocol (REACT 2023 baseline paper, arXiv 2306.06583; B23 ``evaluate.py``): K = 10 reactions per
speaker, the first 750 frames of each test clip, the role-swapped sample list and the split's
neighbour matrix. Scores are computed in the 58-d face state (mean-subtracted), the space the zoo's
REACT models generate in and ReactFace scores in (RF ``evaluate_metric.py``); FRD is then one DTW
over all channels. Both protocols of :mod:`zoo.metrics.react` are computed: ``facezoo`` (FRC/FRD
averaged over the K samples; what the leaderboard shows) and ``react2023`` (the challenge code's
sums and quirks; kept in the JSON).

Models generate through ``generate_from_batch(batch, num_samples)`` like
:class:`callbacks.react_metrics.REACTMetricsCallback`; scoring goes through the same
:func:`zoo.metrics.react_torchmetrics.score_samples` (dedupe, order by index, neighbour sub-matrix).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from callbacks.react_metrics import generate_samples
from zoo.benchmarks.references import REFERENCES, ReferenceData, reference_predictions
from zoo.metrics.react import DEFAULT_METRICS
from zoo.metrics.react_torchmetrics import score_samples

__all__ = [
    "LEADERBOARD_PROTOCOL",
    "NUM_SAMPLES",
    "PROTOCOL_FRAMES",
    "REACT_PROTOCOLS",
    "collect_predictions",
    "reference_data",
    "score_all_protocols",
]

NUM_SAMPLES = 10  # B23 evaluate.py / REACT protocol: 10 reactions per speaker
PROTOCOL_FRAMES = 750  # B23/RF evaluate.py: [:, :750]
REACT_PROTOCOLS = ("facezoo", "react2023")
LEADERBOARD_PROTOCOL = "facezoo"
SPLIT = "test"


def _to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


@torch.no_grad()
def collect_predictions(model, loader, num_samples: int = NUM_SAMPLES,
                        device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Run ``model.generate_from_batch`` over ``loader`` -> predictions (N, K, T, 58) and the
    batches' listeners, speakers (N, T, 58) and sample indices (N,), on the CPU in float32."""
    device = torch.device(device)
    model = model.to(device).eval()
    buffers: dict[str, list[torch.Tensor]] = {k: [] for k in ("predictions", "listeners", "speakers", "indices")}
    for batch in loader:
        samples = generate_samples(model, _to_device(batch, device), num_samples, "the REACT suite")
        if not bool(torch.isfinite(samples["predictions"]).all()):
            raise ValueError(f"{type(model).__name__}.generate_from_batch returned non-finite values")
        for key, value in samples.items():
            buffers[key].append(value)
    if not buffers["indices"]:
        raise ValueError("the test split has no samples")
    return {k: torch.cat(v) for k, v in buffers.items()}


def score_all_protocols(collected: Mapping[str, torch.Tensor], neighbours,
                        protocols: Sequence[str] = REACT_PROTOCOLS,
                        metrics: Sequence[str] = DEFAULT_METRICS) -> dict[str, dict[str, float]]:
    """``{protocol: {metric: value}}`` for the collected predictions."""
    return {protocol: score_samples(collected["predictions"], collected["listeners"], collected["speakers"],
                                    collected["indices"], neighbours, protocol=protocol, metrics=list(metrics),
                                    progress=False)
            for protocol in protocols}


def _tracks(dataset) -> dict[str, torch.Tensor]:
    items = [dataset[i] for i in range(len(dataset))]
    return {key: torch.stack([item[key] for item in items]) for key in ("listener_3dmm", "speaker_3dmm", "index")}


def reference_data(datamodule, frames: int = PROTOCOL_FRAMES) -> tuple[ReferenceData, torch.Tensor]:
    """The references' inputs from a REACT DataModule: the test split's listeners and speakers
    (first ``frames`` frames, role-swapped order) and every training person-clip (speakers and
    listeners, B23 ``run_baselines.py``), all mean-subtracted like the models' inputs; and the
    test sample indices."""
    from datamodules.react import REACTClips

    common = dict(clip_length=frames, random_crop=False, load_video=False, load_audio=False, load_emotion=False,
                  face_mean=datamodule.face_mean, cache_dir=datamodule.cache_dir)
    test = _tracks(REACTClips(datamodule.data_root, SPLIT, mirrored=datamodule.mirrored, **common))
    train = _tracks(REACTClips(datamodule.data_root, "train", mirrored=False, **common))
    training = torch.cat([train["speaker_3dmm"], train["listener_3dmm"]])
    data = ReferenceData(test["listener_3dmm"].float(), test["speaker_3dmm"].float(), training.float())
    return data, test["index"]


def run_reference(name: str, data: ReferenceData, indices: torch.Tensor, neighbours, *,
                  num_samples: int = NUM_SAMPLES, seed: int = 0) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Scores of reference ``name`` under both protocols and its wall times."""
    start = time.perf_counter()
    preds = reference_predictions(name, data, num_samples, seed)
    generated = time.perf_counter()
    collected = {"predictions": preds, "listeners": data.listeners, "speakers": data.speakers, "indices": indices}
    scores = score_all_protocols(collected, neighbours)
    done = time.perf_counter()
    return scores, {"generate": generated - start, "score": done - generated}


REFERENCE_NAMES = tuple(REFERENCES)
