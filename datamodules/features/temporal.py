"""Frame-rate conversion and temporal smoothing of per-frame face measurements.

* **Frame-rate conversion** picks, for each output frame at time ``j / fps_out``, the source
  frame nearest in time (``round(j * fps_in / fps_out)``, halves up), so a crop, its landmarks
  and its blendshapes always come from one real frame (interpolating landmarks would no longer
  match the pixels). The output covers the decoded duration ``n_in / fps_in``:
  ``n_out = ceil(n_in * fps_out / fps_in)``.
* **Smoothing** works on runs of consecutive frames with a face; frames without one stay NaN and
  split the runs (a filter must not carry a face across a gap it did not see).
  - ``savgol`` (default): Savitzky-Golay, zero phase, since preparation is offline. Window 5
    frames and order 2 at 25 fps (200 ms) keep blink-length events (100-150 ms) while removing
    the frame-to-frame jitter of the landmarker. Runs shorter than the window use the largest
    odd window that fits (order < window), or stay raw.
  - ``one_euro``: the One-Euro filter (Casiez, Roussel, Vogel, CHI 2012), causal, for parity with
    live pipelines; ``min_cutoff`` (Hz) and ``beta`` act on the measured units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import savgol_filter

SMOOTHERS = ("none", "savgol", "one_euro")


def output_frame_count(n_source: int, fps_source: float, fps_target: float) -> int:
    """Frames of the ``fps_target`` timeline covering ``n_source`` frames at ``fps_source``."""
    if n_source < 0 or not fps_source > 0 or not fps_target > 0:
        raise ValueError(f"expected n_source >= 0 and positive frame rates, got {n_source}, {fps_source}, {fps_target}")
    return int(math.ceil(n_source * fps_target / fps_source - 1e-9))


def source_index(j: np.ndarray | int, fps_source: float, fps_target: float) -> np.ndarray:
    """Nearest source frame of output frame(s) ``j`` (no upper clip: see :func:`resample_indices`)."""
    return np.floor(np.asarray(j, dtype=np.float64) * fps_source / fps_target + 0.5 + 1e-9).astype(np.int64)


def resample_indices(n_source: int, fps_source: float, fps_target: float) -> np.ndarray:
    """Source frame index of every output frame, (n_out,) int64, within [0, n_source)."""
    n_out = output_frame_count(n_source, fps_source, fps_target)
    return np.minimum(source_index(np.arange(n_out), fps_source, fps_target), max(n_source - 1, 0))


def valid_runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of the runs of True in a boolean (T,) array."""
    valid = np.asarray(valid, dtype=bool)
    edges = np.diff(np.concatenate([[0], valid.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


@dataclass(frozen=True)
class Smoothing:
    """A smoothing recipe (see the module docstring); ``window`` in frames (odd)."""

    method: str = "savgol"
    window: int = 5
    order: int = 2
    min_cutoff: float = 1.0
    beta: float = 0.0
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        if self.method not in SMOOTHERS:
            raise ValueError(f"smoothing method: expected one of {SMOOTHERS}, got {self.method!r}")
        if self.method == "savgol" and (self.window < 3 or self.window % 2 == 0 or not 0 <= self.order < self.window):
            raise ValueError(f"savgol: expected an odd window >= 3 and 0 <= order < window, got {self.window}, {self.order}")
        if self.method == "one_euro" and not (self.min_cutoff > 0 and self.d_cutoff > 0 and self.beta >= 0):
            raise ValueError(f"one_euro: expected min_cutoff, d_cutoff > 0 and beta >= 0, got {self.min_cutoff}, {self.d_cutoff}, {self.beta}")

    def __call__(self, x: np.ndarray, fps: float) -> np.ndarray:
        """Smooth ``x`` (T, ...) along time; rows with any NaN are gaps and stay NaN."""
        x = np.asarray(x, dtype=np.float64)
        out = x.copy()
        if self.method == "none" or len(x) == 0:
            return out
        valid = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
        for start, stop in valid_runs(valid):
            segment = x[start:stop]
            if self.method == "savgol":
                window = min(self.window, (stop - start) if (stop - start) % 2 else (stop - start) - 1)
                if window > self.order:
                    out[start:stop] = savgol_filter(segment, window, self.order, axis=0, mode="interp")
            else:
                out[start:stop] = one_euro(segment, fps, self.min_cutoff, self.beta, self.d_cutoff)
        out[~valid] = np.nan
        return out


def one_euro(x: np.ndarray, fps: float, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> np.ndarray:
    """One-Euro filter along axis 0 of a gap-free (T, ...) signal sampled at ``fps`` Hz."""
    def alpha(cutoff: np.ndarray | float) -> np.ndarray | float:
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau * fps)

    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    if len(x) == 0:
        return out
    out[0], derivative = x[0], np.zeros_like(x[0])
    for t in range(1, len(x)):
        raw_derivative = (x[t] - out[t - 1]) * fps
        derivative = derivative + alpha(d_cutoff) * (raw_derivative - derivative)
        a = alpha(min_cutoff + beta * np.abs(derivative))
        out[t] = out[t - 1] + a * (x[t] - out[t - 1])
    return out
