"""DISFA (spontaneous) + DISFA+ (posed) smiles for CMM-Net (Wang et al. CVPR 2018, Sec. 4.1).

CMM-Net's paired protocol: spontaneous smiles from DISFA and posed smiles from DISFA+ for the
individuals in both; "a random two thirds of the videos" train, the rest test (seeded here).
The preprocessing after segmentation is :mod:`datamodules.smile`'s (eye alignment, 64x64 faces,
binary landmark images), so a CMM-Net config trains on either dataset by swapping
``--data.class_path``; the batch format is :class:`~datamodules.smile.SmileSequences`'s.

Layout read under ``root`` (notes C.2, C.3; the embedded world writes the same,
:mod:`datamodules.synthetic.disfa_world`)::

    DISFA/Videos_LeftCamera/<name with SNxxx>.<avi|mp4>     left camera (the usual choice)
    DISFA/ActionUnit_Labels/SNxxx/SNxxx_au<N>.txt           lines "frameIdx,intensity" (0..5)
    DISFA/<landmarks_dir>/<video stem>.npy                  (T, 68, 2) iBUG pixel landmarks
    DISFA+/Labels/SNxxx[/SNxxx]/<Trial>/AU<N>.txt           lines "<image name> <intensity>"
    DISFA+/Images/SNxxx/<Trial>/<image name>                the trial's frames (000.jpg, ...)
    DISFA+/<landmarks_dir>/SNxxx/<Trial>.npy                (T, 68, 2) iBUG pixel landmarks

Known vs unconfirmed (notes C.2-C.3): DISFA's label files and 20 fps are published facts; the
video file name (``LeftVideoSN001_comp.avi`` in the distributed copy) is matched by its
``SNxxx`` token only. DISFA+'s label layout and line format are unconfirmed in the notes; its
faces ship in ``FaceLandmarks/.../<Trial>_FaceCropped.mat`` (unconfirmed struct), which must be
exported to ``Images/SNxxx/<Trial>/`` first; DISFA+'s frame rate is not in the notes, hence the
``disfa_plus_fps`` argument. DISFA's 66-point and DISFA+'s 49-point landmarks do not give the 68
iBUG points this zoo uses (notes F.6), so landmarks come from a landmark extractor
(``facezoo prepare``'s ``landmarks_68``) as for UvA-NEMO.

Segmentation from the **labelled** AU6/AU12 intensities (CMM-Net estimated them with OpenFace
and segmented DISFA by hand; the labels make both unnecessary): an episode is a maximal run of
frames with AU12 >= ``onset_level``; it is kept when AU12 reaches ``apex_level`` (2, the usual
occurrence threshold, notes F.8). Its N2S segment is :func:`~datamodules.smile.n2s_segment` on
the mean AU6/AU12 curve from ``lead_seconds`` before the run to its end, after resampling the
curve to ``target_fps``, so 20 fps DISFA and DISFA+ at its own rate give segments of the same
duration (T = 32 frames at ``target_fps``). A DISFA+ trial is one posed expression: trials whose
name matches ``posed_trials`` and whose AU12 reaches ``apex_level`` give one segment each.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from datamodules.features.io import VIDEO_SUFFIXES, atomic_path, frame_files
from datamodules.home import dataset_root
from datamodules.smile import (
    EYE_CENTRE,
    EYE_DISTANCE,
    IMAGE_SIZE,
    SEQUENCE_LENGTH,
    SmileDataModule,
    SmileSequences,
    frame_grid,
    n2s_segment,
    preprocess_segments,
)

__all__ = [
    "DISFA_AUS",
    "DISFA_FPS",
    "SmileSegment",
    "read_disfa_labels",
    "read_disfa_plus_labels",
    "smile_episodes",
    "disfa_segments",
    "disfa_plus_segments",
    "paired_split",
    "DISFADataModule",
]

DISFA_AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)  # notes C.2: the 12 labelled AUs
DISFA_FPS = 20.0  # CMM-Net Sec. 4.1: "The videos are recorded at 20 FPS"
DISFA_DIR, DISFA_PLUS_DIR = "DISFA", "DISFA+"
CACHE_VERSION = "disfa-cache-1"
_SN = re.compile(r"SN\d{3}")
_POSED, _SPONTANEOUS = 0, 1  # datamodules.smile.SMILE_CLASSES


@dataclass(frozen=True)
class SmileSegment:
    """One N2S sequence: where it comes from, its class and its source frames."""

    stem: str  # unique name, e.g. "SN001_disfa_3" or "SN001_<Trial>"
    source: str  # "disfa" or "disfa+"
    subject: int  # the number of SNxxx
    label: int  # 0 posed (DISFA+), 1 spontaneous (DISFA)
    video: Path  # video file or frame folder
    landmarks: Path
    indices: tuple[int, ...] = field(repr=False)
    au: tuple[tuple[float, float], ...] = field(repr=False)  # labelled AU6, AU12 of those frames
    label_files: tuple[Path, ...] = field(repr=False, default=())


# ----------------------------------------------------------------------------------------------
# label files


def read_disfa_labels(path: str | os.PathLike) -> np.ndarray:
    """A DISFA label file (``frameIdx,intensity`` per line, frames consecutive from 0 or 1) ->
    intensities (T,) float32 indexed from frame 0."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: DISFA label file not found (expected ActionUnit_Labels/SNxxx/SNxxx_au<N>.txt)")
    frames, values = [], []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        try:
            frame, value = int(parts[0]), float(parts[1])
            if len(parts) != 2:
                raise ValueError
        except (ValueError, IndexError):
            raise ValueError(f"{path}:{number}: expected 'frameIdx,intensity', got {line!r}") from None
        if not 0 <= value <= 5:
            raise ValueError(f"{path}:{number}: intensity {value} outside DISFA's 0..5")
        frames.append(frame)
        values.append(value)
    if not frames:
        raise ValueError(f"{path}: no label lines")
    first = frames[0]
    if first not in (0, 1) or frames != list(range(first, first + len(frames))):
        raise ValueError(f"{path}: frame indices must be consecutive from 0 or 1, got {frames[:3]}...")
    return np.asarray(values, dtype=np.float32)


def read_disfa_plus_labels(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """A DISFA+ trial label file (``<image name> <intensity>`` per line) -> (image names, (T,))."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: DISFA+ label file not found (expected Labels/SNxxx/.../<Trial>/AU<N>.txt)")
    names, values = [], []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        parts = line.replace(",", " ").split()
        if not parts:
            continue
        try:
            if len(parts) != 2:
                raise ValueError
            value = float(parts[1])
        except ValueError:
            raise ValueError(f"{path}:{number}: expected '<image name> <intensity>', got {line!r}") from None
        if not 0 <= value <= 5:
            raise ValueError(f"{path}:{number}: intensity {value} outside DISFA+'s 0..5")
        names.append(parts[0])
        values.append(value)
    if not names:
        raise ValueError(f"{path}: no label lines")
    return names, np.asarray(values, dtype=np.float32)


# ----------------------------------------------------------------------------------------------
# segmentation


def smile_episodes(au12: np.ndarray, onset_level: float = 1.0, apex_level: float = 2.0) -> list[tuple[int, int]]:
    """``[start, stop)`` runs of frames with ``au12 >= onset_level`` that reach ``apex_level``."""
    x = np.asarray(au12, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"au12: expected a (T,) curve, got shape {x.shape}")
    if not 0 < onset_level <= apex_level:
        raise ValueError(f"onset_level, apex_level: expected 0 < onset <= apex, got {onset_level}, {apex_level}")
    active = np.concatenate([[False], x >= onset_level, [False]])
    edges = np.flatnonzero(np.diff(active.astype(np.int8)))
    runs = list(zip(edges[::2].tolist(), edges[1::2].tolist()))
    return [(a, b) for a, b in runs if x[a:b].max() >= apex_level]


def _segment(au6: np.ndarray, au12: np.ndarray, start: int, stop: int, length: int, fps: float,
             target_fps: float | None) -> np.ndarray:
    """Source indices of the N2S segment of the window [start, stop) of a labelled video.

    :func:`~datamodules.smile.n2s_segment` runs on the window's mean AU6/AU12 curve sampled at
    ``target_fps``; a short onset is padded with the frames that follow it in the *video* (the
    paper's "subsequent frames"), not only those left in the window."""
    grid = start + frame_grid(len(au12) - start, fps, target_fps)
    window = grid[grid < stop]
    local = n2s_segment((au6[window] + au12[window]) / 2, length)
    if local[-1] - local[0] + 1 <= length:  # padded case: consecutive samples from the onset start
        local = np.minimum(local[0] + np.arange(length), len(grid) - 1)
        return grid[local]
    return window[local]


def _au_pair(labels: dict[int, np.ndarray], where: Path) -> tuple[np.ndarray, np.ndarray]:
    missing = [au for au in (6, 12) if au not in labels]
    if missing:
        raise FileNotFoundError(f"{where}: no label file for AU{missing[0]} (CMM-Net segments on AU6 and AU12)")
    return labels[6], labels[12]


def disfa_segments(root: str | os.PathLike, landmarks_dir: str = "landmarks", length: int = SEQUENCE_LENGTH,
                   fps: float = DISFA_FPS, target_fps: float | None = DISFA_FPS, lead_seconds: float = 1.0,
                   onset_level: float = 1.0, apex_level: float = 2.0, max_label_mismatch: int = 2) -> list[SmileSegment]:
    """Spontaneous N2S segments of every DISFA video under ``root`` (the ``DISFA`` folder)."""
    root = Path(root)
    videos_dir, labels_dir = root / "Videos_LeftCamera", root / "ActionUnit_Labels"
    for folder in (videos_dir, labels_dir):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: not found; expected DISFA's Videos_LeftCamera/ and ActionUnit_Labels/")
    videos = sorted(p for p in videos_dir.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise FileNotFoundError(f"{videos_dir}: no videos ({', '.join(VIDEO_SUFFIXES)})")
    out = []
    for video in videos:
        match = _SN.search(video.stem)
        if match is None:
            raise ValueError(f"{video}: no SNxxx subject code in the file name")
        sn = match.group(0)
        files = {au: labels_dir / sn / f"{sn}_au{au}.txt" for au in (6, 12)}
        au6, au12 = _au_pair({au: read_disfa_labels(f) for au, f in files.items() if f.is_file()}, labels_dir / sn)
        marks = root / landmarks_dir / f"{video.stem}.npy"
        if not marks.is_file():
            raise FileNotFoundError(f"{marks}: landmarks of {video.name} not found; expected (T, 68, 2) iBUG pixel "
                                    "landmarks per video (extract them with a landmark detector first)")
        frames = len(np.load(marks, mmap_mode="r"))
        count = min(len(au6), len(au12), frames)
        if max(len(au6), len(au12), frames) - count > max_label_mismatch:
            raise ValueError(f"{labels_dir / sn}: {len(au6)} / {len(au12)} labelled frames (AU6 / AU12) but "
                             f"{marks} has {frames}; more than max_label_mismatch={max_label_mismatch} apart")
        au6, au12 = au6[:count], au12[:count]
        lead = int(round(lead_seconds * fps))
        previous_stop = 0
        for number, (start, stop) in enumerate(smile_episodes(au12, onset_level, apex_level), start=1):
            begin = max(previous_stop, start - lead)
            previous_stop = stop
            indices = _segment(au6, au12, begin, stop, length, fps, target_fps)
            out.append(SmileSegment(f"{sn}_disfa_{number}", "disfa", int(sn[2:]), _SPONTANEOUS, video, marks,
                                    tuple(int(i) for i in indices),
                                    tuple((float(au6[i]), float(au12[i])) for i in indices),
                                    tuple(files.values())))
    return out


def disfa_plus_segments(root: str | os.PathLike, landmarks_dir: str = "landmarks", length: int = SEQUENCE_LENGTH,
                        fps: float = DISFA_FPS, target_fps: float | None = DISFA_FPS,
                        posed_trials: str = r"(?i)smile", apex_level: float = 2.0) -> list[SmileSegment]:
    """Posed N2S segments of the DISFA+ trials under ``root`` (the ``DISFA+`` folder) whose name
    matches ``posed_trials`` and whose labelled AU12 reaches ``apex_level``."""
    root = Path(root)
    labels_dir = root / "Labels"
    if not labels_dir.is_dir():
        raise FileNotFoundError(f"{labels_dir}: not found; expected DISFA+'s Labels/SNxxx/.../<Trial>/AU<N>.txt")
    pattern = re.compile(posed_trials)
    out = []
    for au12_file in sorted(labels_dir.rglob("AU12.txt")):
        trial_dir = au12_file.parent
        trial = trial_dir.name
        match = _SN.fullmatch(trial_dir.relative_to(labels_dir).parts[0])
        if match is None:
            raise ValueError(f"{trial_dir}: expected Labels/SNxxx/.../<Trial>/ (no SNxxx folder)")
        if not pattern.search(trial):
            continue
        sn = match.group(0)
        names, au12 = read_disfa_plus_labels(au12_file)
        au6_file = trial_dir / "AU6.txt"
        if not au6_file.is_file():
            raise FileNotFoundError(f"{au6_file}: missing (CMM-Net segments on AU6 and AU12)")
        names6, au6 = read_disfa_plus_labels(au6_file)
        if names6 != names:
            raise ValueError(f"{au6_file}: image names differ from {au12_file}")
        if au12.max() < apex_level:
            continue
        images = root / "Images" / sn / trial
        if not images.is_dir():
            raise FileNotFoundError(f"{images}: frames of trial {trial} not found (export DISFA+'s cropped faces there)")
        on_disk = [p.name for p in frame_files(images)]
        if on_disk != names:
            raise ValueError(f"{images}: its {len(on_disk)} numbered images are not the {len(names)} named in {au12_file}")
        marks = root / landmarks_dir / sn / f"{trial}.npy"
        if not marks.is_file():
            raise FileNotFoundError(f"{marks}: landmarks of trial {trial} not found; expected (T, 68, 2) iBUG pixel landmarks")
        indices = _segment(au6, au12, 0, len(au12), length, fps, target_fps)
        out.append(SmileSegment(f"{sn}_{trial}", "disfa+", int(sn[2:]), _POSED, images, marks,
                                tuple(int(i) for i in indices), tuple((float(au6[i]), float(au12[i])) for i in indices),
                                (au6_file, au12_file)))
    return out


def paired_split(segments: list[SmileSegment], train_fraction: float = 2 / 3, seed: int = 0) -> dict[str, list[SmileSegment]]:
    """CMM-Net's DISFA/DISFA+ protocol: a seeded random ``train_fraction`` of the videos of each
    class train, the rest test (per class, so both classes are in both splits)."""
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction: expected in (0, 1), got {train_fraction}")
    rng = np.random.default_rng(seed)
    split: dict[str, list[SmileSegment]] = {"train": [], "test": []}
    for label in (_POSED, _SPONTANEOUS):
        chosen = sorted((s for s in segments if s.label == label), key=lambda s: s.stem)
        if len(chosen) < 2:
            raise ValueError(f"segments: class {label} has {len(chosen)} sequences; a train/test split needs >= 2")
        order = rng.permutation(len(chosen))
        cut = min(len(chosen) - 1, max(1, int(round(train_fraction * len(chosen)))))
        split["train"] += [chosen[i] for i in sorted(order[:cut])]
        split["test"] += [chosen[i] for i in sorted(order[cut:])]
    return split


# ----------------------------------------------------------------------------------------------
# cache and DataModule


def _signature(path: Path) -> tuple:
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def _source_signature(path: Path) -> tuple:
    if path.is_dir():  # a frame folder: its frame names and sizes
        return (str(path.resolve()), tuple((p.name, p.stat().st_size) for p in frame_files(path)))
    return _signature(path)


def cached_segments(segments: list[SmileSegment], cache_dir: Path, image_size: int) -> list[Path]:
    """The ``.npz`` of every segment (keys of :func:`~datamodules.smile.preprocess_segments`),
    computed once per source video (one decode for all its segments), written atomically."""
    paths: list[Path] = []
    todo: dict[Path, list[int]] = {}
    for number, seg in enumerate(segments):
        key = repr((_source_signature(seg.video), _signature(seg.landmarks), [_signature(f) for f in seg.label_files],
                    seg.indices, image_size, EYE_CENTRE, EYE_DISTANCE, CACHE_VERSION))
        path = cache_dir / f"{seg.stem}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"
        paths.append(path)
        if not path.is_file():
            todo.setdefault(seg.video, []).append(number)
    for video, numbers in todo.items():
        landmarks = np.load(segments[numbers[0]].landmarks)
        arrays = preprocess_segments(video, landmarks, [np.array(segments[n].indices) for n in numbers],
                                     [np.array(segments[n].au, dtype=np.float32) for n in numbers], image_size)
        for n, item in zip(numbers, arrays):
            with atomic_path(paths[n]) as tmp, open(tmp, "wb") as f:
                np.savez(f, **item)
    return paths


class DISFADataModule(SmileDataModule):
    """DISFA spontaneous + DISFA+ posed smiles, CMM-Net's paired protocol (module docstring).

    Same batches as :class:`~datamodules.smile.NEMODataModule` (``video``, ``neutral``,
    ``landmark_images``, ``landmarks``, ``au`` = the *labelled* AU6/AU12, ``label`` 0 posed /
    1 spontaneous, ``subject``, ``index``).

    Args:
        root: folder holding ``DISFA/`` and ``DISFA+/`` (names: ``disfa_dir``, ``disfa_plus_dir``);
            ``None`` generates the embedded world with ``world`` settings
            (:func:`~datamodules.synthetic.disfa_world.cached_disfa_dataset`).
        paired_only: keep only subjects present in both datasets (CMM-Net: the nine DISFA+ people).
        train_fraction, split_seed: the random two thirds of the videos that train (per class).
        val_fraction: part of the training videos held out for validation (0: validate on test).
        disfa_fps, disfa_plus_fps: the recordings' frame rates (DISFA 20; DISFA+ set to your copy's).
        target_fps: rate the N2S segments are sampled at (None: each dataset's own rate).
        lead_seconds, onset_level, apex_level: episode finding on the labels (module docstring).
        posed_trials: regular expression selecting DISFA+'s posed-smile trials by name.
        max_label_mismatch: frames by which DISFA's label files may differ from the video (4845 vs 4844).
    """

    def __init__(
        self,
        root: str | None = None,
        world: dict[str, Any] | None = None,
        disfa_dir: str = DISFA_DIR,
        disfa_plus_dir: str = DISFA_PLUS_DIR,
        landmarks_dir: str = "landmarks",
        paired_only: bool = True,
        train_fraction: float = 2 / 3,
        split_seed: int = 0,
        val_fraction: float = 0.0,
        disfa_fps: float = DISFA_FPS,
        disfa_plus_fps: float = DISFA_FPS,
        target_fps: float | None = DISFA_FPS,
        lead_seconds: float = 1.0,
        onset_level: float = 1.0,
        apex_level: float = 2.0,
        posed_trials: str = r"(?i)smile",
        max_label_mismatch: int = 2,
        sequence_length: int = SEQUENCE_LENGTH,
        image_size: int = IMAGE_SIZE,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__(sequence_length, image_size, batch_size, eval_batch_size, num_workers, cache_dir)
        if not 0 < train_fraction < 1:
            raise ValueError(f"train_fraction: expected in (0, 1), got {train_fraction}")
        if not 0 <= val_fraction < 1:
            raise ValueError(f"val_fraction: expected in [0, 1), got {val_fraction}")
        for name, value in dict(disfa_fps=disfa_fps, disfa_plus_fps=disfa_plus_fps,
                                target_fps=target_fps if target_fps is not None else 1.0).items():
            if value <= 0:
                raise ValueError(f"{name}: expected a positive frame rate, got {value}")
        try:
            re.compile(posed_trials)
        except re.error as err:
            raise ValueError(f"posed_trials: not a regular expression ({err})") from None
        self.root, self.world = root, dict(world or {})
        self.disfa_dir, self.disfa_plus_dir, self.landmarks_dir = disfa_dir, disfa_plus_dir, landmarks_dir
        self.paired_only, self.train_fraction, self.split_seed = paired_only, train_fraction, split_seed
        self.val_fraction = val_fraction
        self.disfa_fps, self.disfa_plus_fps, self.target_fps = disfa_fps, disfa_plus_fps, target_fps
        self.lead_seconds, self.onset_level, self.apex_level = lead_seconds, onset_level, apex_level
        self.posed_trials, self.max_label_mismatch = posed_trials, max_label_mismatch
        self._root: Path | None = None
        self._splits: dict[str, list[SmileSegment]] | None = None

    @property
    def data_root(self) -> Path:
        if self._root is None:
            def embedded() -> Path:
                from datamodules.synthetic.disfa_world import cached_disfa_dataset

                return cached_disfa_dataset(**self.world)

            self._root = dataset_root(self.root, "a folder with DISFA/ and DISFA+/", embedded)
        return self._root

    def segments(self) -> list[SmileSegment]:
        """Every N2S segment: DISFA's spontaneous smiles, then DISFA+'s posed ones."""
        common = dict(landmarks_dir=self.landmarks_dir, length=self.sequence_length, target_fps=self.target_fps,
                      apex_level=self.apex_level)
        spontaneous = disfa_segments(self.data_root / self.disfa_dir, fps=self.disfa_fps,
                                     lead_seconds=self.lead_seconds, onset_level=self.onset_level,
                                     max_label_mismatch=self.max_label_mismatch, **common)
        posed = disfa_plus_segments(self.data_root / self.disfa_plus_dir, fps=self.disfa_plus_fps,
                                    posed_trials=self.posed_trials, **common)
        if self.paired_only:
            both = {s.subject for s in spontaneous} & {s.subject for s in posed}
            if not both:
                raise ValueError(f"{self.data_root}: no subject has both DISFA smiles and DISFA+ posed smiles "
                                 "(set paired_only: false to use all)")
            spontaneous = [s for s in spontaneous if s.subject in both]
            posed = [s for s in posed if s.subject in both]
        return spontaneous + posed

    def split_items(self, split: str) -> list[SmileSegment]:
        if split not in ("train", "val", "test"):
            raise ValueError(f"split: expected 'train', 'val' or 'test', got {split!r}")
        if self._splits is None:
            parts = paired_split(self.segments(), self.train_fraction, self.split_seed)
            if self.val_fraction > 0:
                held = paired_split(parts["train"], 1 - self.val_fraction, self.split_seed + 1)
                parts = {"train": held["train"], "val": held["test"], "test": parts["test"]}
            else:
                parts["val"] = parts["test"]
            self._splits = parts
        return self._splits[split]

    def make_dataset(self, split: str) -> SmileSequences:
        items = self.split_items(split)
        return SmileSequences(items, cached_segments(items, self.cache_dir, self.image_size))
