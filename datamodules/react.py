"""REACT 2023/2024 (NoXI + RECOLA) DataModule: dyadic speaker/listener clips with video, audio,
3DMM coefficients, emotion and the appropriate-reaction neighbours of every sample.

Protocol decided by the public code of the field (notes: react-dataset-and-metrics.md):

- samples are the role-swapped list ``speakers = col1 + col2``, ``listeners = col2 + col1`` of the split
  csv (B23/RF ``dataset.py``), the order of the neighbour matrices; ``mirrored=False`` keeps the L csv
  rows and the top-left ``L x L`` block of the matrix (speaker = column 1 in both);
- training: a random ``clip_length`` window (256 in B23/RF ``train.py``), the same start for every
  modality; evaluation: the first ``eval_clip_length`` frames (750 in B23/RF ``evaluate.py``);
- video: Resize(round(S*256/224)) + CenterCrop(S) + [-1, 1] (B23 ``Transform``, RF ``VideoTransform``);
- audio: the raw waveform at ``audio_sample_rate`` (16 kHz for wav2vec2, RF ``_load_audio_clip``),
  normalised over the whole clip as ``Wav2Vec2Processor`` does, ``(x - mean) / sqrt(var + 1e-7)``;
- 3DMM: the FaceVerse mean face is subtracted (B23 ``_transform_3dmm``, RF ``_load_3dmm``); models add
  ``face_mean`` back before rendering or scoring (RF ``evaluate.py``).

Decoded, resized and cropped frames, resampled audio and parsed emotion are cached on disk as npy,
keyed by the source file (path, size, mtime) and the settings, and read memory-mapped, so epochs after
the first read only the frames of each crop.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import cv2
import lightning as L
import numpy as np
import torch
from einops import rearrange
from torch.utils.data import DataLoader, Dataset

from datamodules.features.face_state import FACE_STATE_DIM
from datamodules.features.io import frame_files, iter_video, read_wav, resample, save_npy
from datamodules.home import dataset_root, facezoo_home
from datamodules.react_files import (
    LENGTH_TOLERANCE,
    SPLITS,
    ClipFiles,
    load_neighbour_matrix,
    load_tdmm,
    read_emotion_csv,
    read_split_csv,
    resolve_clip,
    split_base,
    split_csv_path,
)
from datamodules.resumable import SplitLoaders, training_loader

# Bump when the frame transform or a cached array's meaning changes: old cache entries are then ignored.
CACHE_VERSION = 1
# Wav2Vec2FeatureExtractor's zero-mean unit-variance epsilon (RF feeds its Wav2Vec2Processor output).
AUDIO_NORM_EPS = 1e-7
# uint8 pixel value -> [-1, 1], i.e. ToTensor + Normalize(0.5, 0.5) (B23 ``Transform``), as a lookup table.
_UINT8_TO_UNIT = (np.arange(256, dtype=np.float32) / np.float32(127.5) - np.float32(1.0)).astype(np.float32)


def default_cache_dir() -> Path:
    """``$FACEZOO_HOME/cache/react`` (``FACEZOO_HOME`` defaults to ``~/.cache/facezoo``)."""
    return facezoo_home() / "cache" / "react"


# ----------------------------------------------------------------------------------------------
# Frame transform and the on-disk clip cache
# ----------------------------------------------------------------------------------------------


def resize_and_centre_crop(frame: np.ndarray, size: int) -> np.ndarray:
    """torchvision ``Resize(round(size*256/224))`` (shorter side) + ``CenterCrop(size)`` on one
    ``(H, W, 3)`` uint8 frame; for size 224 this is B23/RF's Resize(256) + CenterCrop(224).

    Area interpolation when shrinking (antialiased, like PIL's bilinear), bilinear when enlarging."""
    resize_to = round(size * 256 / 224)
    height, width = frame.shape[:2]
    if min(height, width) != resize_to:
        scale = resize_to / min(height, width)
        new_w, new_h = max(resize_to, round(width * scale)), max(resize_to, round(height * scale))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        frame = cv2.resize(frame, (new_w, new_h), interpolation=interpolation)
        height, width = new_h, new_w
    # torchvision CenterCrop: top = int(round((H - S) / 2)).
    top, left = int(round((height - size) / 2.0)), int(round((width - size) / 2.0))
    return np.ascontiguousarray(frame[top : top + size, left : left + size])


def decode_video(path: Path, image_size: int) -> np.ndarray:
    """All frames of an mp4 / PNG folder, transformed to ``(T, S, S, 3)`` uint8 RGB."""
    frames = [resize_and_centre_crop(frame, image_size) for frame in iter_video(path)]
    if not frames:
        raise ValueError(f"{path}: video has no decodable frames")
    return np.stack(frames)


def _source_signature(path: Path) -> tuple:
    """What identifies a source's content cheaply: path, size and mtime (of the last frame too for a
    frame folder, whose own mtime does not change when a frame is rewritten in place)."""
    stat = path.stat()
    signature: tuple = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if path.is_dir():
        frames = frame_files(path)
        last = frames[-1].stat()
        signature += (len(frames), frames[-1].name, last.st_size, last.st_mtime_ns)
    return signature


class ClipCache:
    """Per-clip arrays computed once from a source file and kept as npy files under ``cache_dir``.

    Entries are written through a temporary file and ``os.replace``, so DataLoader workers and DDP ranks
    that compute the same entry at once each leave a complete file; reads are memory-mapped."""

    def __init__(self, cache_dir: str | os.PathLike | None = None) -> None:
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self._entries: dict[tuple, Path] = {}

    def entry(self, kind: str, source: Path, settings: tuple) -> Path:
        key = (kind, source, settings)
        if key not in self._entries:
            digest = hashlib.sha1(repr((_source_signature(source), settings, CACHE_VERSION)).encode()).hexdigest()
            self._entries[key] = self.cache_dir / kind / f"{digest}.npy"
        return self._entries[key]

    def get(self, kind: str, source: Path, settings: tuple, compute: Callable[[], np.ndarray]) -> np.ndarray:
        path = self.entry(kind, source, settings)
        if path.is_file():
            try:
                return np.load(path, mmap_mode="r", allow_pickle=False)
            except (ValueError, OSError, EOFError):
                path.unlink(missing_ok=True)  # damaged outside our atomic writes: recompute it
        array = compute()
        save_npy(path, array)
        return np.load(path, mmap_mode="r", allow_pickle=False)

    def video(self, source: Path, image_size: int) -> np.ndarray:
        """``(T, S, S, 3)`` uint8 frames after :func:`resize_and_centre_crop`."""
        return self.get(f"video-{image_size}", source, (image_size,), lambda: decode_video(source, image_size))

    def audio(self, source: Path, sample_rate: int) -> np.ndarray:
        """Mono float32 waveform resampled to ``sample_rate`` and normalised over the whole clip,
        ``(x - mean) / sqrt(var + 1e-7)`` (``Wav2Vec2Processor``'s rule, RF ``_load_audio_clip``).

        Whole-clip statistics, not per training window: a window keeps its loudness relative to
        the clip, so silence, the partner's crosstalk and speech stay distinguishable (per-window
        normalisation lifts a silent window's noise to speech level), and training crops and
        full evaluation clips see the same scale."""

        def compute() -> np.ndarray:
            audio, rate = read_wav(source)
            if audio.size == 0:
                raise ValueError(f"{source}: wav file has no samples")
            audio = resample(audio, rate, sample_rate).astype(np.float64)
            return ((audio - audio.mean()) / np.sqrt(audio.var() + AUDIO_NORM_EPS)).astype(np.float32)

        return self.get(f"audio-clipnorm-{sample_rate}", source, (sample_rate,), compute)

    def emotion(self, source: Path) -> np.ndarray:
        """``(T, 25)`` float32 emotion rows."""
        return self.get("emotion", source, (), lambda: read_emotion_csv(source))


# ----------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------


class REACTClips(Dataset):
    """The speaker/listener samples of one REACT split; usable without Lightning.

    ``clip_length`` frames per sample, from a random start (``random_crop=True``, training) or from
    frame 0. Setup checks that every file exists and reads the 3DMM npy headers; each clip's files are
    fully validated (lengths, columns, values) the first time it is read. Items are dicts of tensors,
    see :class:`REACTDataModule`."""

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        *,
        clip_length: int = 256,
        random_crop: bool = True,
        image_size: int = 224,
        load_video: bool = True,
        load_audio: bool = True,
        load_emotion: bool = True,
        load_listener_video: bool = False,
        audio_sample_rate: int = 16000,
        fps: int = 25,
        num_neighbours: int = 0,
        face_mean: np.ndarray | None = None,
        cache_dir: str | os.PathLike | None = None,
        mirrored: bool = True,
    ) -> None:
        _check_positive(clip_length=clip_length, image_size=image_size, audio_sample_rate=audio_sample_rate, fps=fps)
        if num_neighbours < 0:
            raise ValueError(f"num_neighbours must be >= 0, got {num_neighbours}")
        if audio_sample_rate % fps:
            raise ValueError(f"audio_sample_rate ({audio_sample_rate}) must be a multiple of fps ({fps}) so every frame has a whole number of samples")
        self.root, self.split = Path(root), split
        self.clip_length, self.random_crop, self.image_size = clip_length, random_crop, image_size
        self.load_video, self.load_audio, self.load_emotion = load_video, load_audio, load_emotion
        self.load_listener_video = load_listener_video
        self.audio_sample_rate, self.fps = audio_sample_rate, fps
        self.samples_per_frame = audio_sample_rate // fps
        self.num_neighbours, self.mirrored = num_neighbours, mirrored
        if face_mean is None:
            face_mean = np.zeros(FACE_STATE_DIM, dtype=np.float32)
        self.face_mean = np.asarray(face_mean, dtype=np.float32).reshape(FACE_STATE_DIM)
        self.cache = ClipCache(cache_dir)

        pairs = read_split_csv(self.root, split)
        self.num_pairs = len(pairs)
        base = split_base(self.root, split)
        clips: dict[str, ClipFiles] = {}
        for rel in dict.fromkeys(p for pair in pairs for p in pair):
            clips[rel] = resolve_clip(base, rel, video=load_video or load_listener_video, audio=load_audio, emotion=load_emotion)
        speakers = [s for s, _ in pairs] + ([lst for _, lst in pairs] if mirrored else [])
        listeners = [lst for _, lst in pairs] + ([s for s, _ in pairs] if mirrored else [])
        self.speakers = [clips[p] for p in speakers]
        self.listeners = [clips[p] for p in listeners]

        tdmm_frames = {rel: load_tdmm(files.tdmm).shape[0] for rel, files in clips.items()}
        self.lengths = np.empty(len(self.speakers), dtype=np.int64)
        for k, (spk, lst) in enumerate(zip(self.speakers, self.listeners, strict=True)):
            a, b = tdmm_frames[spk.path], tdmm_frames[lst.path]
            if abs(a - b) > LENGTH_TOLERANCE:
                raise ValueError(
                    f"{spk.tdmm} has {a} frames but its partner {lst.tdmm} has {b}; a dyad's clips must have the same "
                    f"length (within {LENGTH_TOLERANCE} frame)"
                )
            self.lengths[k] = min(a, b)
            if self.lengths[k] < clip_length:
                raise ValueError(
                    f"{spk.tdmm if a <= b else lst.tdmm}: {min(a, b)} frames, shorter than the "
                    f"{'training crop' if random_crop else 'evaluation'} length {clip_length}; lower "
                    f"{'clip_length' if random_crop else 'eval_clip_length'} (clips are never padded)"
                )

        self.neighbours: np.ndarray | None = None
        if num_neighbours > 0:
            matrix = load_neighbour_matrix(self.root, split, 2 * self.num_pairs)
            self.neighbours = matrix if mirrored else matrix[: self.num_pairs, : self.num_pairs]
        self._usable_length: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.speakers)

    def __repr__(self) -> str:
        return f"REACTClips(split={self.split!r}, samples={len(self)}, pairs={self.num_pairs}, clip_length={self.clip_length}, root={str(self.root)!r})"

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        """Sample ``index``; ``(index, start)`` pairs (from :class:`~datamodules.resumable.CropSampler`)
        fix the crop start, otherwise it is drawn here (``random_crop``) or 0."""
        start: int | None = None
        if isinstance(index, tuple):
            index, start = int(index[0]), int(index[1])
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} out of range for {len(self)} samples")
        spk, lst = self.speakers[index], self.listeners[index]
        length = self.usable_length(index)
        window = self.clip_length
        if start is None:
            start = int(torch.randint(0, length - window + 1, ()).item()) if self.random_crop else 0
        start = min(start, length - window)  # the usable length may be a frame below the 3DMM's
        stop = start + window

        item: dict[str, torch.Tensor] = {
            "index": torch.tensor(index, dtype=torch.long),
            "start": torch.tensor(start, dtype=torch.long),
            "speaker_3dmm": self._tdmm(spk, start, stop),
            "listener_3dmm": self._tdmm(lst, start, stop),
        }
        if self.load_video:
            item["speaker_video"] = self._video(spk, start, stop)
        if self.load_listener_video:
            item["listener_video"] = self._video(lst, start, stop)
        if self.load_audio:
            item["speaker_audio"] = self._audio(spk, start, stop)
        if self.load_emotion:
            item["speaker_emotion"] = torch.from_numpy(np.array(self.cache.emotion(spk.emotion)[start:stop]))
            item["listener_emotion"] = torch.from_numpy(np.array(self.cache.emotion(lst.emotion)[start:stop]))
        if self.neighbours is not None:
            item["neighbour_3dmm"], item["neighbour_mask"] = self._neighbours(index, start, stop)
        return item

    def usable_length(self, index: int) -> int:
        """Frames common to every loaded modality of sample ``index``; validates its files on first use."""
        if index not in self._usable_length:
            self._usable_length[index] = self._validate(index)
        return self._usable_length[index]

    def neighbour_indices(self, index: int) -> np.ndarray:
        """Samples j whose listener reaction is appropriate for sample ``index`` (M[index, j] = 1), the
        first ``num_neighbours`` of them (RF ``dataset.py`` takes the first 80)."""
        if self.neighbours is None:
            raise ValueError("neighbour_indices needs num_neighbours > 0")
        return np.flatnonzero(self.neighbours[index])[: self.num_neighbours]

    # -- validation ------------------------------------------------------------------------------

    def _validate(self, index: int) -> int:
        spk, lst = self.speakers[index], self.listeners[index]
        lengths: dict[str, int] = {str(spk.tdmm): load_tdmm(spk.tdmm).shape[0], str(lst.tdmm): load_tdmm(lst.tdmm).shape[0]}
        if self.load_video:
            lengths[str(spk.video)] = self.cache.video(spk.video, self.image_size).shape[0]
        if self.load_listener_video:
            lengths[str(lst.video)] = self.cache.video(lst.video, self.image_size).shape[0]
        if self.load_emotion:
            lengths[str(spk.emotion)] = self.cache.emotion(spk.emotion).shape[0]
            lengths[str(lst.emotion)] = self.cache.emotion(lst.emotion).shape[0]
        shortest, longest = min(lengths, key=lengths.get), max(lengths, key=lengths.get)
        if lengths[longest] - lengths[shortest] > LENGTH_TOLERANCE:
            raise ValueError(
                f"{shortest} has {lengths[shortest]} frames but {longest} has {lengths[longest]}; the modalities of a "
                f"clip must have the same number of frames (within {LENGTH_TOLERANCE})"
            )
        length = lengths[shortest]
        if length < self.clip_length:
            raise ValueError(f"{shortest}: {length} frames, shorter than the clip length {self.clip_length}")
        if self.load_audio:
            samples = self.cache.audio(spk.audio, self.audio_sample_rate).shape[0]
            needed = length * self.samples_per_frame
            if samples < needed - self.samples_per_frame:
                raise ValueError(
                    f"{spk.audio}: {samples} samples at {self.audio_sample_rate} Hz cover {samples / self.samples_per_frame:.1f} "
                    f"frames, but the clip has {length} frames (at most one frame short is padded)"
                )
        return length

    # -- modalities ------------------------------------------------------------------------------

    def _tdmm(self, clip: ClipFiles, start: int, stop: int) -> torch.Tensor:
        rows = np.asarray(load_tdmm(clip.tdmm)[start:stop], dtype=np.float32)
        return torch.from_numpy(rows - self.face_mean)

    def _video(self, clip: ClipFiles, start: int, stop: int) -> torch.Tensor:
        frames = self.cache.video(clip.video, self.image_size)[start:stop]
        # One gather pass from the memory map: reads the crop, moves channels first and maps to [-1, 1]
        # (several times faster than torch's strided uint8 -> float copy plus two in-place ops).
        return torch.from_numpy(np.take(_UINT8_TO_UNIT, rearrange(frames, "t h w c -> t c h w")))

    def _audio(self, clip: ClipFiles, start: int, stop: int) -> torch.Tensor:
        spf = self.samples_per_frame
        audio = self.cache.audio(clip.audio, self.audio_sample_rate)[start * spf : stop * spf]
        # Pad with zeros (the normalised mean), as Wav2Vec2's feature extractor does with its
        # attention mask; validation bounds the padding to one frame.
        out = np.zeros((stop - start) * spf, dtype=np.float32)
        out[: audio.size] = audio
        return torch.from_numpy(out)

    def _neighbours(self, index: int, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        window = stop - start
        out = np.zeros((self.num_neighbours, window, FACE_STATE_DIM), dtype=np.float32)
        mask = np.zeros(self.num_neighbours, dtype=bool)
        for slot, j in enumerate(self.neighbour_indices(index)):
            tdmm = self.listeners[j].tdmm
            rows = np.asarray(load_tdmm(tdmm)[start:stop], dtype=np.float32)
            if rows.shape[0] < window - LENGTH_TOLERANCE:
                raise ValueError(
                    f"{tdmm}: neighbour reaction has {load_tdmm(tdmm).shape[0]} frames, too short for the window "
                    f"[{start}, {stop}) of sample {index}"
                )
            if rows.shape[0] < window:  # one frame short (751 vs 750): repeat the last frame
                rows = np.concatenate([rows, np.repeat(rows[-1:], window - rows.shape[0], axis=0)])
            out[slot] = rows - self.face_mean
            mask[slot] = True
        return torch.from_numpy(out), torch.from_numpy(mask)


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


# ----------------------------------------------------------------------------------------------
# Mean face
# ----------------------------------------------------------------------------------------------


def load_mean_face(path: str | os.PathLike) -> np.ndarray:
    """A ``(58,)`` mean face npy (FaceVerse ``mean_face.npy``; ``(1, 58)`` etc. are squeezed)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: mean face not found (expected a ({FACE_STATE_DIM},) .npy, e.g. FaceVerse mean_face.npy)")
    try:
        mean = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{path}: not a readable .npy file ({err})") from err
    if mean.dtype.kind not in "fiu" or mean.size != FACE_STATE_DIM:
        raise ValueError(f"{path}: expected a numeric ({FACE_STATE_DIM},) mean face, got dtype {mean.dtype} shape {mean.shape}")
    return mean.reshape(FACE_STATE_DIM).astype(np.float32)


def training_mean_face(root: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> np.ndarray:
    """Mean 3DMM frame over every person-clip of the training split (see :func:`training_face_moments`)."""
    return training_face_moments(root, cache_dir)[0]


def training_face_moments(root: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> np.ndarray:
    """(2, 58): mean and standard deviation of the 3DMM frames of every person-clip of the training
    split, computed once and cached (keyed by the clips' paths, sizes and mtimes). A channel that
    never changes in training has a standard deviation of exactly 0."""
    root = Path(root)
    base = split_base(root, "train")
    clips = [resolve_clip(base, rel, video=False, audio=False, emotion=False) for rel in dict.fromkeys(p for pair in read_split_csv(root, "train") for p in pair)]
    signature = tuple(_source_signature(clip.tdmm) for clip in clips)
    digest = hashlib.sha1(repr((signature, CACHE_VERSION)).encode()).hexdigest()
    cache_root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = cache_root / "face_moments" / f"{digest}.npy"
    if path.is_file():
        return np.load(path).astype(np.float32)
    total, frames = np.zeros(FACE_STATE_DIM, dtype=np.float64), 0
    low = np.full(FACE_STATE_DIM, np.inf)
    high = np.full(FACE_STATE_DIM, -np.inf)
    for clip in clips:
        rows = np.asarray(load_tdmm(clip.tdmm), dtype=np.float64)
        total += rows.sum(axis=0)
        frames += rows.shape[0]
        low, high = np.minimum(low, rows.min(axis=0)), np.maximum(high, rows.max(axis=0))
    mean = total / frames
    squares = np.zeros(FACE_STATE_DIM, dtype=np.float64)
    for clip in clips:  # second pass: no cancellation in E[x^2] - E[x]^2
        squares += ((np.asarray(load_tdmm(clip.tdmm), dtype=np.float64) - mean) ** 2).sum(axis=0)
    std = np.where(high > low, np.sqrt(squares / frames), 0.0)  # exactly 0 where nothing moves
    moments = np.stack([mean, std]).astype(np.float32)
    save_npy(path, moments)
    return moments


# ----------------------------------------------------------------------------------------------
# DataModule
# ----------------------------------------------------------------------------------------------


class REACTDataModule(SplitLoaders, L.LightningDataModule):
    """REACT 2023/2024 clips for listener-reaction generation.

    ``root`` is a REACT copy in the B23 (``ROOT/<split>/<modality>``) or ReactFace (flat) layout; None
    reads the embedded world, generated once by ``cached_react_dataset(**world)``.

    A batch is a dict of tensors (B = batch size, T = ``clip_length`` for training and
    ``eval_clip_length`` for val/test/predict, S = ``image_size``):

    - ``speaker_video`` float32 (B, T, 3, S, S) in [-1, 1] (``load_video``); ``listener_video``
      likewise (``load_listener_video``);
    - ``speaker_audio`` float32 (B, T * audio_sample_rate / fps), normalised over the whole clip (``load_audio``);
    - ``speaker_3dmm``, ``listener_3dmm`` float32 (B, T, 58), minus ``face_mean``;
    - ``speaker_emotion``, ``listener_emotion`` float32 (B, T, 25) (``load_emotion``);
    - ``neighbour_3dmm`` float32 (B, num_neighbours, T, 58) minus ``face_mean`` and ``neighbour_mask``
      bool (B, num_neighbours): listener reactions of the first ``num_neighbours`` samples j with
      ``M[index, j] = 1``, same window; empty slots are zero with mask False (``num_neighbours > 0``);
    - ``index`` long (B,): sample index in the split (mirrored order); ``start`` long (B,): first frame.

    Training clips shorter than ``clip_length`` (or evaluation clips shorter than ``eval_clip_length``)
    raise at setup: clips are never padded. ``mean_face`` is a (58,) npy (FaceVerse ``mean_face.npy``
    for real data); None uses the mean over the training split's 3DMM frames (cached).
    ``predict_dataloader`` serves the test split.

    The frame cache (``cache_dir``, default ``$FACEZOO_HOME/cache/react``) holds T x S x S x 3 bytes
    per clip read with video: 113 MB for a 751-frame clip at 224 px, 9 MB at 64 px.
    """

    def __init__(
        self,
        root: str | None = None,
        world: dict | None = None,
        batch_size: int = 4,
        num_workers: int = 0,
        clip_length: int = 256,
        eval_clip_length: int = 750,
        image_size: int = 224,
        load_video: bool = True,
        load_audio: bool = True,
        load_emotion: bool = True,
        load_listener_video: bool = False,
        audio_sample_rate: int = 16000,
        fps: int = 25,
        num_neighbours: int = 0,
        mean_face: str | None = None,
        cache_dir: str | None = None,
        mirrored: bool = True,
        eval_batch_size: int | None = None,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        _check_positive(batch_size=batch_size, clip_length=clip_length, eval_clip_length=eval_clip_length,
                        image_size=image_size, audio_sample_rate=audio_sample_rate, fps=fps)
        if eval_batch_size is not None:
            _check_positive(eval_batch_size=eval_batch_size)
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        if num_neighbours < 0:
            raise ValueError(f"num_neighbours must be >= 0, got {num_neighbours}")
        if audio_sample_rate % fps:
            raise ValueError(f"audio_sample_rate ({audio_sample_rate}) must be a multiple of fps ({fps})")
        if world is not None and not isinstance(world, dict):
            raise ValueError(f"world must be a dict of cached_react_dataset keyword arguments, got {type(world).__name__}")
        self.save_hyperparameters()
        self.root, self.world = root, dict(world or {})
        self.batch_size, self.num_workers = batch_size, num_workers
        self.eval_batch_size = eval_batch_size or batch_size
        self.clip_length, self.eval_clip_length = clip_length, eval_clip_length
        self.image_size, self.audio_sample_rate, self.fps = image_size, audio_sample_rate, fps
        self.load_video, self.load_audio, self.load_emotion = load_video, load_audio, load_emotion
        self.load_listener_video = load_listener_video
        self.num_neighbours, self.mean_face, self.mirrored = num_neighbours, mean_face, mirrored
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self.pin_memory = pin_memory
        self.datasets: dict[str, REACTClips] = {}
        self._data_root: Path | None = None
        self._face_mean: np.ndarray | None = None
        self._face_std: np.ndarray | None = None

    # -- data location ---------------------------------------------------------------------------

    @property
    def data_root(self) -> Path:
        """The REACT root read: ``root``, or the embedded world (generated on first use)."""
        if self._data_root is None:
            def embedded() -> Path:
                from datamodules.synthetic.react_world import cached_react_dataset

                return cached_react_dataset(**self.world)

            self._data_root = dataset_root(self.root, "a REACT copy with train.csv, val.csv, test.csv", embedded)
        return self._data_root

    @property
    def face_std(self) -> np.ndarray:
        """(58,) standard deviation of the training split's 3DMM frames (0 for channels that never
        move); models that predict standardised coefficients (``ReactFace(standardise_output=True)``)
        scale their outputs by it."""
        if self._face_std is None:
            try:
                self._face_std = training_face_moments(self.data_root, self.cache_dir)[1]
            except (FileNotFoundError, ValueError) as err:
                raise type(err)(f"{err}\n(face_std is taken over the training split's 3DMM files)") from err
        return self._face_std

    @property
    def face_mean(self) -> np.ndarray:
        """The (58,) 3DMM mean subtracted from every 3DMM tensor; add it back to get raw coefficients."""
        if self._face_mean is None:
            if self.mean_face is not None:
                self._face_mean = load_mean_face(self.mean_face)
            else:
                try:
                    self._face_mean = training_mean_face(self.data_root, self.cache_dir)
                except (FileNotFoundError, ValueError) as err:
                    raise type(err)(
                        f"{err}\n(mean_face is None, so the 3DMM mean is taken over the training split; "
                        "pass mean_face=<path to a (58,) npy>, e.g. FaceVerse mean_face.npy, to read val/test without it)"
                    ) from err
        return self._face_mean

    def prepare_data(self) -> None:
        # Runs on one process per node: generate the embedded world (idempotent) before setup reads it.
        _ = self.data_root

    def setup(self, stage: str | None = None) -> None:
        splits = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",), None: SPLITS}
        if stage not in splits:
            raise ValueError(f"stage must be one of fit/validate/test/predict or None, got {stage!r}")
        for split in splits[stage]:
            if split not in self.datasets:
                self.datasets[split] = self.make_dataset(split)

    def make_dataset(self, split: str) -> REACTClips:
        """The :class:`REACTClips` of ``split`` with this module's settings."""
        return REACTClips(
            self.data_root,
            split,
            clip_length=self.clip_length if split == "train" else self.eval_clip_length,
            random_crop=split == "train",
            image_size=self.image_size,
            load_video=self.load_video,
            load_audio=self.load_audio,
            load_emotion=self.load_emotion,
            load_listener_video=self.load_listener_video,
            audio_sample_rate=self.audio_sample_rate,
            fps=self.fps,
            num_neighbours=self.num_neighbours,
            face_mean=self.face_mean,
            cache_dir=self.cache_dir,
            mirrored=self.mirrored,
        )

    def neighbour_matrix(self, split: str) -> np.ndarray:
        """Bool (N, N) appropriate-reaction matrix of ``split`` in this module's sample order
        (N = 2L mirrored; the top-left L x L block otherwise)."""
        if split in self.datasets and self.datasets[split].neighbours is not None:
            return self.datasets[split].neighbours
        pairs = len(read_split_csv(self.data_root, split))
        matrix = load_neighbour_matrix(self.data_root, split, 2 * pairs)
        return matrix if self.mirrored else matrix[:pairs, :pairs]

    # -- loaders ---------------------------------------------------------------------------------

    def _loader(self, split: str, train: bool) -> DataLoader:
        if split not in self.datasets:
            self.setup({"train": "fit", "val": "validate", "test": "test"}[split])
        dataset = self.datasets[split]
        common = dict(num_workers=self.num_workers, pin_memory=self.pin_memory,
                      persistent_workers=self.num_workers > 0)
        if train:
            return training_loader(dataset, dataset.lengths.tolist(), self.clip_length, self.batch_size, **common)
        return DataLoader(dataset, batch_size=self.eval_batch_size, shuffle=False, **common)

    def __str__(self) -> str:
        # LightningDataModule.__str__ builds every dataloader; a summary must not set anything up.
        return self.__repr__()

    def __repr__(self) -> str:
        where = str(self.root) if self.root is not None else f"embedded world {self.world}"
        if self.datasets:
            sizes = ", ".join(f"{split}={len(ds)}" for split, ds in self.datasets.items())
        else:
            counts = []
            for split in SPLITS:
                root = Path(self.root).expanduser() if self.root is not None else self._data_root
                if root is not None and split_csv_path(root, split).is_file():
                    try:
                        counts.append(f"{split}={len(read_split_csv(root, split)) * (2 if self.mirrored else 1)}")
                    except ValueError:
                        counts.append(f"{split}=?")
            sizes = ", ".join(counts) if counts else "not set up"
        return f"REACTDataModule({where}; samples: {sizes}; clip {self.clip_length}/{self.eval_clip_length} frames, {self.image_size}px)"
