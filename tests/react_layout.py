"""Tiny REACT 2023/2024 copies on disk for the DataModule tests: random but valid files in the B23
(per-split folders) or ReactFace (flat) layout, videos as mp4 or PNG-frame folders.

The same ``seed`` writes the same numbers whatever the layout and video format, so readers of
different variants can be compared; the returned :class:`REACTLayout` holds the values as written.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datamodules.features.face_state import FACE_STATE_DIM
from datamodules.features.io import read_wav, write_video, write_wav

DEFAULT_PAIRS = {"train": 3, "val": 2, "test": 2}


@dataclass
class REACTLayout:
    root: Path
    variant: str
    video_format: str
    fps: int
    sample_rate: int
    pairs: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    tdmm: dict[str, np.ndarray] = field(default_factory=dict)  # (T, 58) float32, as saved
    emotion: dict[str, np.ndarray] = field(default_factory=dict)  # (T, 25) float32, as parsed back
    audio: dict[str, np.ndarray] = field(default_factory=dict)  # float32 at sample_rate, as read back
    frames: dict[str, np.ndarray] = field(default_factory=dict)  # (T, H, W, 3) uint8 RGB, as written
    neighbours: dict[str, np.ndarray] = field(default_factory=dict)  # (2L, 2L) bool

    def base(self, split: str) -> Path:
        return self.root / split if self.variant == "b23" else self.root

    def file(self, split: str, modality: str, rel: str) -> Path:
        """Path of one file: modality in {"video", "audio", "emotion", "tdmm"}."""
        base = self.base(split)
        if modality == "video":
            return base / "Video_files" / (f"{rel}.mp4" if self.video_format == "mp4" else rel)
        folder, suffix = {"audio": ("Audio_files", ".wav"), "emotion": ("Emotion", ".csv"), "tdmm": ("3D_FV_files", ".npy")}[modality]
        return base / folder / f"{rel}{suffix}"

    def mirrored(self, split: str) -> tuple[list[str], list[str]]:
        """(speakers, listeners) in the role-swapped order: col1 + col2, col2 + col1."""
        rows = self.pairs[split]
        return [s for s, _ in rows] + [lst for _, lst in rows], [lst for _, lst in rows] + [s for s, _ in rows]


def clip_paths(split: str, count: int) -> list[tuple[str, str]]:
    """NoXI-style rows, the last of the training split a RECOLA row (as in B23 data/train.csv)."""
    offset = {"train": 0, "val": 100, "test": 200}[split]
    rows = []
    for i in range(count):
        if split == "train" and i == count - 1 and count > 1:
            rows.append((f"RECOLA/group-{i}/P25/1", f"RECOLA/group-{i}/P26/1"))
        else:
            session = f"NoXI/{offset + i:03d}_2016-03-25_Paris"
            rows.append((f"{session}/Expert_video/{i + 1}", f"{session}/Novice_video/{i + 1}"))
    return rows


def _frames(rng: np.random.Generator, frames: int, size: int) -> np.ndarray:
    """Smooth moving colour gradients (little mp4 loss) that differ per clip and per frame."""
    t = np.arange(frames)[:, None, None, None] / frames
    y = np.arange(size)[None, :, None, None] / size
    x = np.arange(size)[None, None, :, None] / size
    c = np.arange(3)[None, None, None, :] / 3
    phase, freq = rng.uniform(0, 2 * np.pi, 3), rng.uniform(0.5, 1.5, 2)
    image = 128 + 70 * np.sin(2 * np.pi * (freq[0] * x + 2 * t + c) + phase[0]) + 40 * np.cos(2 * np.pi * freq[1] * y + phase[1] + 3 * t)
    return np.clip(image, 0, 255).round().astype(np.uint8)


def write_react_layout(
    root: str | Path,
    *,
    variant: str = "b23",
    video_format: str = "png",
    pairs: dict[str, int] | None = None,
    frames: int = 40,
    image_size: int = 32,
    sample_rate: int = 44100,
    fps: int = 25,
    seed: int = 0,
    squeezable_tdmm: bool = True,
    neighbour_dtype: str = "float64",
) -> REACTLayout:
    """Write a REACT copy under ``root``; ``variant`` "b23" or "rf", ``video_format`` "png" or "mp4"."""
    if variant not in ("b23", "rf") or video_format not in ("png", "mp4"):
        raise ValueError(f"variant must be b23|rf and video_format png|mp4, got {variant!r}, {video_format!r}")
    root = Path(root)
    layout = REACTLayout(root, variant, video_format, fps, sample_rate)
    rng = np.random.default_rng(seed)
    for split, count in (pairs or DEFAULT_PAIRS).items():
        rows = clip_paths(split, count)
        layout.pairs[split] = rows
        root.mkdir(parents=True, exist_ok=True)
        with open(root / f"{split}.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["", "speaker_path", "listener_path"])
            for i, (spk, lst) in enumerate(rows):
                writer.writerow([i, spk, lst])
        for rel in [p for row in rows for p in row]:
            _write_clip(layout, split, rel, rng, frames, image_size, squeezable_tdmm)
        matrix = rng.random((2 * count, 2 * count)) < 0.4
        np.fill_diagonal(matrix, True)
        layout.neighbours[split] = matrix
        np.save(root / f"neighbour_emotion_{split}.npy", matrix.astype(neighbour_dtype))
    return layout


def _write_clip(layout: REACTLayout, split: str, rel: str, rng: np.random.Generator, frames: int, size: int, squeezable: bool) -> None:
    tdmm = np.cumsum(rng.normal(0, 0.05, (frames, FACE_STATE_DIM)), axis=0).astype(np.float32) + rng.normal(0, 1, FACE_STATE_DIM).astype(np.float32)
    path = layout.file(split, "tdmm", rel)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, tdmm[:, None, :] if squeezable else tdmm)  # real files squeeze from (T, 1, 58)
    layout.tdmm[rel] = tdmm

    aus = (rng.random((frames, 15)) < 0.3).astype(np.float64)
    va = rng.uniform(-1, 1, (frames, 2))
    logits = rng.normal(0, 1, (frames, 8))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    emotion = np.round(np.concatenate([aus, va, probs], axis=1), 6)
    write_emotion_csv(layout.file(split, "emotion", rel), emotion)
    layout.emotion[rel] = emotion.astype(np.float32)

    seconds = np.arange(round(frames / layout.fps * layout.sample_rate)) / layout.sample_rate
    f0 = rng.uniform(100, 400)
    audio = 0.3 * np.sin(2 * np.pi * f0 * seconds) * (1 + 0.5 * np.sin(2 * np.pi * 2 * seconds)) + rng.normal(0, 0.02, seconds.size)
    wav = write_wav(layout.file(split, "audio", rel), audio.astype(np.float32), layout.sample_rate)
    layout.audio[rel] = read_wav(wav)[0]

    video = _frames(rng, frames, size)
    write_video(layout.file(split, "video", rel), video, fps=layout.fps)
    layout.frames[rel] = video


def write_emotion_csv(path: Path, emotion: np.ndarray, header: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(f"AU{i}" for i in range(emotion.shape[1]))] if header else []
    lines += [",".join(f"{v:.6f}" for v in row) for row in emotion]
    path.write_text("\n".join(lines) + "\n")
