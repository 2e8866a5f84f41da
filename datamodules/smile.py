"""UvA-NEMO Smile Database DataModule with CMM-Net's preprocessing (Wang et al. CVPR 2018, Sec. 4.1).

Layout read (notes C.1; the embedded world writes the same, :mod:`datamodules.synthetic.nemo_world`)::

    ROOT/videos/<SSS>_{deliberate,spontaneous}_smile_<k>.mp4
    ROOT/UvA-NEMO_Smile_Database_File_Details.txt   (optional: subject codes and labels from names)
    ROOT/<landmarks_dir>/<stem>.npy                 (T, 68, 2) iBUG landmarks in video pixels

Landmarks come from a landmark extractor run on the raw videos (CMM-Net used CLNF / OpenFace);
the embedded world ships its true landmarks in ``landmarks/``.

Preprocessing of one video (CMM-Net Sec. 4.1), cached on disk keyed by the source files and the
settings:

1. **Neutral-to-smile (N2S) segment** from the cheek-raiser (AU6) and lip-corner-puller (AU12)
   intensity curves (:func:`datamodules.features.au_rules.au_from_landmarks`, relative to the first
   frame; the paper used OpenFace's regressors, ref. [3]): the onset starts at the last frame
   before the apex where the smoothed mean intensity is below 10 % of its peak, and ends at the
   first frame reaching 90 % of the peak. ``T = 32`` frames are taken from the onset start;
   a shorter onset is padded with the following frames (the paper), a longer one is sampled
   uniformly down to T frames.
2. **Eye alignment**: per frame, a rotation making the line between the eye centres (mean of
   the eye corners 36/39 and 42/45, which lids do not move) horizontal and a translation putting
   its midpoint at a fixed place; one scale per sequence (mean outer inter-ocular distance), so
   the face size does not flicker. Frames are warped at 4x and area-resized to ``image_size``
   (64 in the paper).
3. **Landmark images**: the aligned landmarks rasterised as binary ``image_size`` images
   (:func:`datamodules.features.drawing.landmark_image`).

Folds: UvA-NEMO's protocol has 10 subject-disjoint folds (Dibeklioglu et al. 2012); CMM-Net
trains on 9 and tests on the 10th. ``folds_dir`` reads fold files in the MeshSmileNet format
(``<k>/test.json``: ``{"<stem>": 0/1}``); otherwise subjects are dealt round-robin into
``num_folds`` folds after a seeded shuffle.

Batch (``B`` sequences, ``T`` frames, ``S = image_size``): ``video`` (B, T, 3, S, S) in [-1, 1],
``neutral`` (B, 3, S, S) (= frame 0), ``landmark_images`` (B, T, 1, S, S) in {0, 1},
``landmarks`` (B, T, 68, 2) aligned pixels, ``au`` (B, T, 2) AU6/AU12 intensities, ``label``
(B,) 0 = posed (deliberate), 1 = spontaneous, ``subject`` (B,), ``index`` (B,).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.features.au_rules import au_from_landmarks
from datamodules.features.drawing import landmark_image
from datamodules.features.face_state import NUM_LANDMARKS
from datamodules.features.io import atomic_path, iter_video
from datamodules.home import dataset_root, facezoo_home
from datamodules.resumable import SplitLoaders, training_loader

__all__ = [
    "SMILE_CLASSES",
    "SMILE_AUS",
    "NemoVideo",
    "read_file_details",
    "nemo_videos",
    "subject_folds",
    "n2s_segment",
    "eye_alignment",
    "preprocess_smile",
    "SmileSequences",
    "SmileDataModule",
    "NEMODataModule",
    "frame_grid",
    "n2s_segment_at_rate",
    "read_frames",
    "align_sequence",
    "preprocess_segments",
]

SMILE_CLASSES = ("posed", "spontaneous")  # label 0 / 1 (MeshSmileNet: 0 deliberate, 1 spontaneous)
SMILE_AUS = ("AU6", "AU12")  # batch["au"]'s columns, here and in DISFA: the AUs CMM-Net segments on
NEMO_LABELS = {"deliberate": 0, "spontaneous": 1}
FILE_DETAILS = "UvA-NEMO_Smile_Database_File_Details.txt"
SEQUENCE_LENGTH = 32  # CMM-Net Sec. 4.1: "the average N2S length is T = 32 frames"
IMAGE_SIZE = 64  # CMM-Net Sec. 4.1: images resized to 64x64
CACHE_VERSION = "smile-cache-1"
# Aligned template (fractions of the image side): eye midpoint and outer inter-ocular distance.
# With the zoo's face rig this keeps brows to chin inside the frame.
EYE_CENTRE = (0.5, 0.34)
EYE_DISTANCE = 0.46
_SUPERSAMPLE = 4
_NAME = re.compile(r"^(\d{3})_(deliberate|spontaneous)_smile_(\d+)$")
_UINT8_TO_UNIT = (np.arange(256, dtype=np.float32) / np.float32(127.5) - np.float32(1.0))


# ----------------------------------------------------------------------------------------------
# layout


@dataclass(frozen=True)
class NemoVideo:
    stem: str
    video: Path
    landmarks: Path
    subject: int
    label: int  # 0 posed (deliberate), 1 spontaneous


def read_file_details(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """UvA-NEMO's File_Details table: ``{stem: {subject, gender, age, label}}``.

    Whitespace separated with a few preamble lines before the ``filename subject_code gender age
    label`` header (notes C.1); rows that do not parse (e.g. a trailing note) are rejected by name.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: UvA-NEMO File_Details table not found")
    lines = path.read_text(errors="replace").splitlines()
    header = next((i for i, line in enumerate(lines) if line.split()[:1] == ["filename"]), None)
    if header is None:
        raise ValueError(f"{path}: no 'filename subject_code gender age label' header line")
    table = {}
    for number, line in enumerate(lines[header + 1:], start=header + 2):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 5 or fields[4] not in NEMO_LABELS or not fields[1].isdigit():
            raise ValueError(f"{path}:{number}: expected 'filename subject_code gender age deliberate|spontaneous', got {line!r}")
        stem = Path(fields[0]).stem
        table[stem] = {"subject": int(fields[1]), "gender": fields[2], "age": fields[3],
                       "label": NEMO_LABELS[fields[4]]}
    if not table:
        raise ValueError(f"{path}: the table has no rows")
    return table


def nemo_videos(root: str | os.PathLike, landmarks_dir: str = "landmarks") -> list[NemoVideo]:
    """Every video of a UvA-NEMO root, sorted by name, with its subject, label and landmark file."""
    root = Path(root)
    folder = root / "videos"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not found; expected UvA-NEMO's videos/<SSS>_<label>_smile_<k>.mp4")
    details = read_file_details(root / FILE_DETAILS) if (root / FILE_DETAILS).is_file() else {}
    out = []
    for video in sorted(folder.glob("*.mp4")):
        match = _NAME.match(video.stem)
        if match is None:
            raise ValueError(f"{video}: name does not follow <SSS>_deliberate|spontaneous_smile_<k>.mp4")
        subject, label = int(match.group(1)), NEMO_LABELS[match.group(2)]
        row = details.get(video.stem)
        if row is not None and (row["subject"], row["label"]) != (subject, label):
            raise ValueError(f"{root / FILE_DETAILS}: row {video.stem} says subject {row['subject']} label "
                             f"{row['label']}, the file name says {subject} / {label}")
        out.append(NemoVideo(video.stem, video, root / landmarks_dir / f"{video.stem}.npy", subject, label))
    if not out:
        raise FileNotFoundError(f"{folder}: no .mp4 videos")
    return out


def subject_folds(subjects: list[int], num_folds: int = 10, seed: int = 0) -> dict[int, int]:
    """Subject -> fold in ``1..num_folds``: subjects shuffled with ``seed`` and dealt round-robin,
    so folds are subject-disjoint and differ in size by at most one subject."""
    unique = sorted(set(int(s) for s in subjects))
    if num_folds < 2:
        raise ValueError(f"num_folds: expected >= 2, got {num_folds}")
    if len(unique) < num_folds:
        raise ValueError(f"subjects: {len(unique)} subjects cannot fill {num_folds} subject-disjoint folds")
    order = np.random.default_rng(seed).permutation(len(unique))
    return {unique[i]: rank % num_folds + 1 for rank, i in enumerate(order)}


def folds_from_dir(folds_dir: str | os.PathLike, stems: list[str]) -> dict[str, int]:
    """Stem -> fold from MeshSmileNet-style ``<k>/test.json`` files (``{"<stem>": 0/1}``)."""
    folds_dir = Path(folds_dir)
    found: dict[str, int] = {}
    for test in sorted(folds_dir.glob("*/test.json")):
        if not test.parent.name.isdigit():
            continue
        for stem in json.loads(test.read_text()):
            found[Path(stem).stem.removesuffix(".mp4")] = int(test.parent.name)
    if not found:
        raise FileNotFoundError(f"{folds_dir}: expected fold files <k>/test.json, found none")
    missing = [s for s in stems if s not in found]
    if missing:
        raise ValueError(f"{folds_dir}: videos {missing[:5]} are in no fold's test.json")
    return {s: found[s] for s in stems}


# ----------------------------------------------------------------------------------------------
# CMM-Net preprocessing


def _moving_average(x: np.ndarray, window: int = 5) -> np.ndarray:
    padded = np.pad(x, (window // 2, window // 2), mode="edge")
    return np.convolve(padded, np.ones(window) / window, mode="valid")


def n2s_segment(intensity: np.ndarray, length: int = SEQUENCE_LENGTH) -> np.ndarray:
    """Frame indices (length,) of the neutral-to-smile segment of a smile-intensity curve (T,).

    Apex = first frame reaching 90 % of the (5-frame smoothed) peak; onset start = last frame
    before it below 10 % of the peak. A shorter onset is padded with the following frames, a
    longer one sampled uniformly; videos shorter than ``length`` repeat their last frame.
    """
    x = np.asarray(intensity, dtype=np.float64)
    if x.ndim != 1 or len(x) < 1 or not np.isfinite(x).all():
        raise ValueError(f"intensity: expected a finite (T,) curve, got shape {x.shape}")
    if length < 2:
        raise ValueError(f"length: expected >= 2, got {length}")
    smooth = _moving_average(x - x[0]) if len(x) >= 5 else x - x[0]
    peak = smooth.max()
    if peak <= 0:
        start, apex = 0, 0  # no smile found: take the first frames
    else:
        apex = int(np.argmax(smooth >= 0.9 * peak))
        below = np.flatnonzero(smooth[: apex + 1] < 0.1 * peak)
        start = int(below[-1]) if len(below) else 0
    if apex - start + 1 > length:
        return np.round(np.linspace(start, apex, length)).astype(np.int64)
    return np.minimum(np.arange(start, start + length), len(x) - 1).astype(np.int64)


def eye_alignment(landmarks: np.ndarray, image_size: int = IMAGE_SIZE) -> np.ndarray:
    """Affine maps (T, 2, 3) from video pixels to the aligned ``image_size`` frame (see module doc)."""
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.ndim != 3 or pts.shape[1:] != (NUM_LANDMARKS, 2) or not np.isfinite(pts).all():
        raise ValueError(f"landmarks: expected finite (T, {NUM_LANDMARKS}, 2) pixels, got shape {pts.shape}")
    right, left = pts[:, [36, 39]].mean(axis=1), pts[:, [42, 45]].mean(axis=1)
    iod = np.linalg.norm(pts[:, 45] - pts[:, 36], axis=-1)
    if (iod < 1e-6).any():
        raise ValueError("landmarks: outer eye corners 36 and 45 coincide in some frame")
    scale = EYE_DISTANCE * image_size / iod.mean()
    axis = left - right
    angle = np.arctan2(axis[:, 1], axis[:, 0])
    cos, sin = np.cos(-angle) * scale, np.sin(-angle) * scale
    centre = (right + left) / 2
    target = np.array(EYE_CENTRE) * image_size - 0.5
    matrices = np.empty((len(pts), 2, 3))
    matrices[:, 0, 0], matrices[:, 0, 1] = cos, -sin
    matrices[:, 1, 0], matrices[:, 1, 1] = sin, cos
    matrices[:, :, 2] = target - np.einsum("tij,tj->ti", matrices[:, :, :2], centre)
    return matrices


def _apply(matrices: np.ndarray, points: np.ndarray) -> np.ndarray:
    return np.einsum("tij,tpj->tpi", matrices[:, :, :2], points) + matrices[:, None, :, 2]


def frame_grid(num_frames: int, source_fps: float, target_fps: float | None) -> np.ndarray:
    """Source frame indices sampling a ``num_frames`` video at ``target_fps`` (nearest frame);
    ``np.arange(num_frames)`` when the rates agree or ``target_fps`` is None."""
    if num_frames < 1:
        raise ValueError(f"num_frames: expected >= 1, got {num_frames}")
    if source_fps <= 0 or (target_fps is not None and target_fps <= 0):
        raise ValueError(f"frame rates must be positive, got source_fps={source_fps}, target_fps={target_fps}")
    if target_fps is None or abs(source_fps - target_fps) < 1e-9:
        return np.arange(num_frames)
    step = source_fps / target_fps
    return np.minimum(np.round(np.arange(0.0, num_frames - 0.5, step)).astype(np.int64), num_frames - 1)


def n2s_segment_at_rate(intensity: np.ndarray, length: int = SEQUENCE_LENGTH, source_fps: float = 1.0,
                        target_fps: float | None = None) -> np.ndarray:
    """:func:`n2s_segment` on the curve resampled to ``target_fps``; returns source frame indices,
    so a 20 fps and a 50 fps video give segments of the same duration (notes F.3)."""
    x = np.asarray(intensity, dtype=np.float64)
    if x.ndim != 1 or len(x) < 1:
        raise ValueError(f"intensity: expected a (T,) curve, got shape {x.shape}")
    grid = frame_grid(len(x), source_fps, target_fps)
    return grid[n2s_segment(x[grid], length)]


def read_frames(video: str | os.PathLike, wanted: set[int], expected_frames: int | None = None) -> dict[int, np.ndarray]:
    """The decoded RGB frames ``wanted`` of a video file or frame folder (one pass);
    ``expected_frames``: the number the landmark file has (a mismatch is an error naming both)."""
    frames: dict[int, np.ndarray] = {}
    count = 0
    for number, frame in enumerate(iter_video(video)):
        count += 1
        if number in wanted:
            frames[number] = frame
    if expected_frames is not None and count != expected_frames:
        raise ValueError(f"{video}: {count} frames but its landmark file has {expected_frames} rows")
    missing = sorted(wanted - set(frames))
    if missing:
        raise ValueError(f"{video}: has {count} frames; frames {missing[:5]} do not exist")
    return frames


def align_sequence(frames: dict[int, np.ndarray], landmarks: np.ndarray, indices: np.ndarray,
                   image_size: int = IMAGE_SIZE) -> dict[str, np.ndarray]:
    """Eye-aligned ``image_size`` faces, landmark images and aligned landmarks of the frames
    ``indices`` (module doc, steps 2-3); ``landmarks`` (T, 68, 2) of the whole video."""
    indices = np.asarray(indices, dtype=np.int64)
    big = image_size * _SUPERSAMPLE
    matrices = eye_alignment(landmarks[indices], big)
    out = np.empty((len(indices), image_size, image_size, 3), dtype=np.uint8)
    for t, (number, matrix) in enumerate(zip(indices, matrices)):
        warped = cv2.warpAffine(frames[int(number)], matrix, (big, big), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        out[t] = cv2.resize(warped, (image_size, image_size), interpolation=cv2.INTER_AREA)
    aligned = (_apply(matrices, landmarks[indices]) + 0.5) / _SUPERSAMPLE - 0.5
    return {
        "frames": out,
        "landmark_images": landmark_image(aligned, image_size),
        "landmarks": aligned.astype(np.float32),
        "indices": indices,
    }


def _check_landmarks(landmarks: np.ndarray, source: object) -> np.ndarray:
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.ndim != 3 or landmarks.shape[1:] != (NUM_LANDMARKS, 2):
        raise ValueError(f"{source}: landmarks must be (T, {NUM_LANDMARKS}, 2), got {landmarks.shape}")
    if not np.isfinite(landmarks).all():
        raise ValueError(f"{source}: landmarks contain NaN or inf (frames without a face?)")
    return landmarks


def preprocess_segments(video: str | os.PathLike, landmarks: np.ndarray, segments: list[np.ndarray],
                        au: list[np.ndarray], image_size: int = IMAGE_SIZE) -> list[dict[str, np.ndarray]]:
    """Several segments (frame indices) of one video, decoded once: :func:`align_sequence` of each
    plus its ``au`` (len, A) intensities. DISFA's long videos hold several smiles each."""
    landmarks = _check_landmarks(landmarks, video)
    if len(segments) != len(au):
        raise ValueError(f"segments and au: {len(segments)} vs {len(au)} entries")
    wanted = {int(i) for seg in segments for i in seg}
    frames = read_frames(video, wanted, len(landmarks))
    out = []
    for seg, intensities in zip(segments, au):
        item = align_sequence(frames, landmarks, seg, image_size)
        item["au"] = np.asarray(intensities, dtype=np.float32)
        out.append(item)
    return out


def preprocess_smile(video: str | os.PathLike, landmarks: np.ndarray,
                     length: int = SEQUENCE_LENGTH, image_size: int = IMAGE_SIZE) -> dict[str, np.ndarray]:
    """CMM-Net preprocessing of one video with its (T, 68, 2) landmarks (module doc, steps 1-3).

    Returns ``frames`` (length, S, S, 3) uint8, ``landmark_images`` (length, S, S) uint8 {0, 1},
    ``landmarks`` (length, 68, 2) float32 aligned pixels, ``au`` (length, 2) float32 AU6/AU12,
    ``indices`` (length,) source frame numbers.
    """
    landmarks = _check_landmarks(landmarks, video)
    au = au_from_landmarks(landmarks, "first", SMILE_AUS)
    indices = n2s_segment(au.mean(axis=1), length)
    return preprocess_segments(video, landmarks, [indices], [au[indices]], image_size)[0]


def _signature(path: Path) -> tuple:
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def cached_preprocess(item: NemoVideo, cache_dir: Path, length: int, image_size: int) -> Path:
    """The ``.npz`` of :func:`preprocess_smile` for ``item``, computed once (atomic write)."""
    if not item.landmarks.is_file():
        raise FileNotFoundError(f"{item.landmarks}: landmarks of {item.video.name} not found; expected (T, 68, 2) "
                                "iBUG pixel landmarks per video (extract them with a landmark detector first)")
    key = repr((_signature(item.video), _signature(item.landmarks), length, image_size, EYE_CENTRE, EYE_DISTANCE,
                CACHE_VERSION))
    path = cache_dir / f"{item.stem}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"
    if not path.is_file():
        arrays = preprocess_smile(item.video, np.load(item.landmarks), length, image_size)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return path


# ----------------------------------------------------------------------------------------------
# dataset and DataModule


class SmileSequences(Dataset):
    """Preprocessed N2S sequences (one per video); items are read from the cache on access.

    ``__getitem__`` takes an index or an ``(index, start)`` pair from
    :class:`~datamodules.resumable.CropSampler` (start is always 0: sequences have fixed length).
    """

    def __init__(self, items: list[NemoVideo], files: list[Path]) -> None:
        if len(items) != len(files):
            raise ValueError(f"items and files: {len(items)} vs {len(files)} entries")
        self.items, self.files = items, files

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        if isinstance(index, tuple):
            index = index[0]
        if not 0 <= index < len(self.items):
            raise IndexError(f"index {index} out of range for {len(self.items)} sequences")
        with np.load(self.files[index]) as data:
            frames = torch.from_numpy(_UINT8_TO_UNIT[data["frames"]]).permute(0, 3, 1, 2).contiguous()
            sample = {
                "video": frames,
                "neutral": frames[0].clone(),
                "landmark_images": torch.from_numpy(data["landmark_images"].astype(np.float32))[:, None],
                "landmarks": torch.from_numpy(data["landmarks"]),
                "au": torch.from_numpy(data["au"]),
            }
        item = self.items[index]
        sample.update(label=torch.tensor(item.label), subject=torch.tensor(item.subject), index=torch.tensor(index))
        return sample


class SmileDataModule(SplitLoaders, L.LightningDataModule):
    """What the smile DataModules share (UvA-NEMO here, DISFA/DISFA+ in :mod:`datamodules.disfa`):
    argument checks, ``setup`` / ``prepare_data`` and the loaders over :class:`SmileSequences`
    (training: the resumable loader). Subclasses implement ``make_dataset(split)``."""

    def __init__(self, sequence_length: int = SEQUENCE_LENGTH, image_size: int = IMAGE_SIZE, batch_size: int = 16,
                 eval_batch_size: int | None = None, num_workers: int = 0, cache_dir: str | None = None) -> None:
        super().__init__()
        for name, value in dict(batch_size=batch_size, sequence_length=sequence_length, image_size=image_size).items():
            if value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value}")
        if sequence_length < 2:
            raise ValueError(f"sequence_length: expected >= 2 frames, got {sequence_length}")
        if image_size < 16:
            raise ValueError(f"image_size: expected >= 16 pixels, got {image_size}")
        self.sequence_length, self.image_size = sequence_length, image_size
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.num_workers = num_workers
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else facezoo_home() / "cache" / "smile"
        self.datasets: dict[str, SmileSequences] = {}

    def make_dataset(self, split: str) -> SmileSequences:  # pragma: no cover - implemented by subclasses
        raise NotImplementedError

    def prepare_data(self) -> None:
        for split in ("train", "val", "test"):
            self.make_dataset(split)

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for split in wanted.get(stage or "fit", ("train", "val", "test")):
            if split not in self.datasets:
                self.datasets[split] = self.make_dataset(split)

    def dataset(self, split: str) -> SmileSequences:
        """The preprocessed sequences of ``split`` ("train", "val" or "test"), built on first use."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"split: expected 'train', 'val' or 'test', got {split!r}")
        if split not in self.datasets:
            self.datasets[split] = self.make_dataset(split)
        return self.datasets[split]

    def _loader(self, split: str, train: bool) -> DataLoader:
        dataset = self.dataset(split)
        common = dict(num_workers=self.num_workers, persistent_workers=self.num_workers > 0)
        if train:
            return training_loader(dataset, [self.sequence_length] * len(dataset), self.sequence_length,
                                   self.batch_size, **common)
        return DataLoader(dataset, batch_size=self.eval_batch_size, shuffle=False, **common)


class NEMODataModule(SmileDataModule):
    """UvA-NEMO smiles for CMM-Net: fold ``fold`` is the test split, the other folds train.

    Args:
        root: UvA-NEMO folder; ``None`` generates the embedded world with ``world`` settings
            (:func:`~datamodules.synthetic.nemo_world.cached_nemo_dataset`).
        world: settings of the embedded world (subjects, videos_per_subject, seed, image_size).
        fold: test fold in ``1..num_folds``.
        val_fold: fold held out of training for validation; ``None`` validates on the test fold
            (the paper's protocol: 9 folds train, the 10th tests).
        num_folds, fold_seed: subject-disjoint folds (ignored with ``folds_dir``).
        folds_dir: MeshSmileNet-style fold files (``<k>/test.json``).
        landmarks_dir: folder under ``root`` with ``<stem>.npy`` (T, 68, 2) landmarks.
        sequence_length, image_size: CMM-Net's T = 32 and 64x64.
        cache_dir: preprocessed sequences (default ``$FACEZOO_HOME/cache/smile``).
    """

    def __init__(
        self,
        root: str | None = None,
        world: dict[str, Any] | None = None,
        fold: int = 1,
        val_fold: int | None = None,
        num_folds: int = 10,
        fold_seed: int = 0,
        folds_dir: str | None = None,
        landmarks_dir: str = "landmarks",
        sequence_length: int = SEQUENCE_LENGTH,
        image_size: int = IMAGE_SIZE,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__(sequence_length, image_size, batch_size, eval_batch_size, num_workers, cache_dir)
        if not 1 <= fold <= num_folds:
            raise ValueError(f"fold: expected 1..{num_folds}, got {fold}")
        if val_fold is not None and (not 1 <= val_fold <= num_folds or val_fold == fold):
            raise ValueError(f"val_fold: expected a fold in 1..{num_folds} other than fold={fold}, or None")
        self.root, self.world = root, dict(world or {})
        self.fold, self.val_fold, self.num_folds, self.fold_seed = fold, val_fold, num_folds, fold_seed
        self.folds_dir, self.landmarks_dir = folds_dir, landmarks_dir
        self._root: Path | None = None

    @property
    def data_root(self) -> Path:
        if self._root is None:
            def embedded() -> Path:
                from datamodules.synthetic.nemo_world import cached_nemo_dataset

                return cached_nemo_dataset(**self.world)

            self._root = dataset_root(self.root, "a UvA-NEMO root", embedded)
        return self._root

    def fold_of(self, items: list[NemoVideo]) -> list[int]:
        """The fold of every video."""
        if self.folds_dir is not None:
            table = folds_from_dir(self.folds_dir, [i.stem for i in items])
            return [table[i.stem] for i in items]
        table = subject_folds([i.subject for i in items], self.num_folds, self.fold_seed)
        return [table[i.subject] for i in items]

    def split_items(self, split: str) -> list[NemoVideo]:
        items = nemo_videos(self.data_root, self.landmarks_dir)
        folds = self.fold_of(items)
        val = self.fold if self.val_fold is None else self.val_fold
        if split == "train":
            chosen = [i for i, f in zip(items, folds) if f not in (self.fold, val)]
        elif split in ("val", "test"):
            wanted = val if split == "val" else self.fold
            chosen = [i for i, f in zip(items, folds) if f == wanted]
        else:
            raise ValueError(f"split: expected 'train', 'val' or 'test', got {split!r}")
        if not chosen:
            raise ValueError(f"{self.data_root}: the {split} split (fold {self.fold}) has no videos")
        return chosen

    def make_dataset(self, split: str) -> SmileSequences:
        items = self.split_items(split)
        files = [cached_preprocess(i, self.cache_dir, self.sequence_length, self.image_size) for i in items]
        return SmileSequences(items, files)
