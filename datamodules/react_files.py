"""The files of a REACT 2023/2024 copy: where they are, and reading them with validation.

Two layouts exist and both are read (auto-detected per split):

- B23/B24 (``baseline_react2023: dataset.py``): ``ROOT/<split>/<modality>/<path>...``
- RF (``lingjivoo/ReactFace: dataset.py``, 2024-12): ``ROOT/<modality>/<path>...`` (no split folder)

Modalities are ``Video_files`` (``<path>.mp4`` or a folder ``<path>/1.png ...``), ``Audio_files``
(``<path>.wav``), ``Emotion`` (``<path>.csv``: a header row, then T rows of 25 numbers) and
``3D_FV_files`` (``<path>.npy``: FaceVerse coefficients, ``(T, 58)`` or squeezable to it). Split
csvs ``ROOT/<split>.csv`` have the header ``,speaker_path,listener_path``.

Every reader raises ``FileNotFoundError``/``ValueError`` naming the file and what was expected.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datamodules.features.face_state import EMOTION_DIM, FACE_STATE_DIM
from datamodules.features.io import VIDEO_SUFFIXES

SPLITS = ("train", "val", "test")
VIDEO_DIR, AUDIO_DIR, EMOTION_DIR, TDMM_DIR = "Video_files", "Audio_files", "Emotion", "3D_FV_files"
MODALITY_DIRS = (VIDEO_DIR, AUDIO_DIR, EMOTION_DIR, TDMM_DIR)
# Real REACT modalities may differ by one frame (751 video frames vs 750/751 rows); beyond that
# the files do not describe the same 30 s clip.
LENGTH_TOLERANCE = 1


@dataclass(frozen=True)
class ClipFiles:
    """The files of one person-clip (one side of a dyad); modalities not requested are None."""

    path: str
    tdmm: Path
    video: Path | None = None
    audio: Path | None = None
    emotion: Path | None = None


def split_csv_path(root: str | os.PathLike, split: str) -> Path:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return Path(root) / f"{split}.csv"


def neighbour_matrix_path(root: str | os.PathLike, split: str) -> Path:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return Path(root) / f"neighbour_emotion_{split}.npy"


def split_base(root: str | os.PathLike, split: str) -> Path:
    """The folder holding the modality folders of ``split``: ``ROOT/<split>`` (B23) or ``ROOT`` (RF)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"REACT root {root}: not a directory")
    b23 = root / split
    if (b23 / TDMM_DIR).is_dir():
        return b23
    if (root / TDMM_DIR).is_dir():
        return root
    raise FileNotFoundError(
        f"REACT root {root}: found neither {b23 / TDMM_DIR} (B23 layout, per-split folders) "
        f"nor {root / TDMM_DIR} (ReactFace flat layout)"
    )


def read_split_csv(root: str | os.PathLike, split: str) -> list[tuple[str, str]]:
    """The (speaker_path, listener_path) rows of ``ROOT/<split>.csv``, in file order."""
    path = split_csv_path(root, split)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: split csv not found (expected header ',speaker_path,listener_path')")
    with open(path, newline="") as f:
        rows = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
    if not rows:
        raise ValueError(f"{path}: empty split csv (expected header ',speaker_path,listener_path')")
    header = [cell.strip() for cell in rows[0]]
    if "speaker_path" not in header or "listener_path" not in header:
        raise ValueError(
            f"{path}: expected columns 'speaker_path' and 'listener_path' in the header row, got {header}"
        )
    s_col, l_col = header.index("speaker_path"), header.index("listener_path")
    pairs = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) <= max(s_col, l_col) or not row[s_col].strip() or not row[l_col].strip():
            raise ValueError(f"{path}: row {line} has no speaker_path/listener_path value: {row}")
        pairs.append((row[s_col].strip().strip("/"), row[l_col].strip().strip("/")))
    if not pairs:
        raise ValueError(f"{path}: split csv has a header but no rows")
    return pairs


def find_video(base: Path, rel: str) -> Path:
    """``Video_files/<rel>.mp4`` (RF) or the PNG-frame folder ``Video_files/<rel>/`` (B23)."""
    stem = base / VIDEO_DIR / rel
    for suffix in VIDEO_SUFFIXES:
        candidate = stem.with_name(stem.name + suffix)
        if candidate.is_file():
            return candidate
    if stem.is_dir():
        return stem
    raise FileNotFoundError(f"{stem}.mp4: video not found (expected an mp4 file or a folder {stem}/ of 1.png, 2.png, ...)")


def resolve_clip(base: Path, rel: str, *, video: bool, audio: bool, emotion: bool) -> ClipFiles:
    """The files of person-clip ``rel`` under ``base``; raises if a requested one is missing."""
    tdmm = base / TDMM_DIR / f"{rel}.npy"
    if not tdmm.is_file():
        raise FileNotFoundError(f"{tdmm}: 3DMM file not found (expected a (T, {FACE_STATE_DIM}) .npy)")
    files = {"path": rel, "tdmm": tdmm}
    if video:
        files["video"] = find_video(base, rel)
    if audio:
        files["audio"] = base / AUDIO_DIR / f"{rel}.wav"
        if not files["audio"].is_file():
            raise FileNotFoundError(f"{files['audio']}: audio file not found (expected a PCM .wav)")
    if emotion:
        files["emotion"] = base / EMOTION_DIR / f"{rel}.csv"
        if not files["emotion"].is_file():
            raise FileNotFoundError(
                f"{files['emotion']}: emotion csv not found (expected a header row + T rows of {EMOTION_DIM} numbers)"
            )
    return ClipFiles(**files)


def load_tdmm(path: str | os.PathLike) -> np.ndarray:
    """The ``(T, 58)`` coefficients of a 3DMM npy, memory-mapped (a crop reads only its rows).

    Loaders ``.squeeze()`` these files (B23/RF ``dataset.py``), so ``(T, 1, 58)`` is accepted."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: 3DMM file not found (expected a (T, {FACE_STATE_DIM}) .npy)")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{path}: not a readable .npy file, truncated or corrupt? ({err})") from err
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
        raise ValueError(f"{path}: expected a numeric (T, {FACE_STATE_DIM}) array, got dtype {getattr(array, 'dtype', None)}")
    shape = array.shape
    time_axes = [d for d in shape[:-1] if d != 1]
    if len(shape) < 1 or shape[-1] != FACE_STATE_DIM or len(time_axes) > 1:
        raise ValueError(f"{path}: expected 3DMM coefficients of shape (T, {FACE_STATE_DIM}) (or squeezable to it), got {shape}")
    frames = math.prod(shape[:-1])
    if frames == 0:
        raise ValueError(f"{path}: 3DMM file has no frames (shape {shape})")
    return array.reshape(frames, FACE_STATE_DIM)


def read_emotion_csv(path: str | os.PathLike) -> np.ndarray:
    """The ``(T, 25)`` float32 emotion rows of a REACT emotion csv (header row dropped, as B23 does)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: emotion csv not found (expected a header row + T rows of {EMOTION_DIM} numbers)")
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if len(lines) < 2:
        raise ValueError(f"{path}: expected a header row and at least one row of {EMOTION_DIM} numbers, got {len(lines)} lines")
    if _is_numeric_row(lines[0]):
        raise ValueError(f"{path}: first row is numeric; expected a header row of column names before the {EMOTION_DIM}-number rows")
    try:
        values = np.loadtxt(io.StringIO("\n".join(lines[1:])), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError:
        values = None
    if values is None or values.shape[1] != EMOTION_DIM:
        _raise_emotion_row_error(path, lines)
    if not np.isfinite(values).all():
        row, col = np.argwhere(~np.isfinite(values))[0]
        raise ValueError(f"{path}: row {row + 2}, column {col + 1} is {values[row, col]}; expected finite numbers")
    return values.astype(np.float32)


def _is_numeric_row(line: str) -> bool:
    try:
        [float(cell) for cell in line.split(",")]
    except ValueError:
        return False
    return True


def _raise_emotion_row_error(path: Path, lines: list[str]) -> None:
    for number, line in enumerate(lines[1:], start=2):
        cells = line.split(",")
        if len(cells) != EMOTION_DIM:
            raise ValueError(f"{path}: row {number} has {len(cells)} columns; expected {EMOTION_DIM} numbers per row")
        for col, cell in enumerate(cells, start=1):
            try:
                float(cell)
            except ValueError:
                raise ValueError(f"{path}: row {number}, column {col} is {cell!r}; expected a number") from None
    raise ValueError(f"{path}: could not parse as rows of {EMOTION_DIM} comma-separated numbers")


def load_neighbour_matrix(root: str | os.PathLike, split: str, size: int) -> np.ndarray:
    """``neighbour_emotion_<split>.npy`` as a bool ``(size, size)`` matrix, ``M[k, j]``: listener j's
    reaction is appropriate for speaker k (B23 ``metric/FRC.py``), rows in the mirrored order."""
    path = neighbour_matrix_path(root, split)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: neighbour matrix not found. It is a (2L, 2L) 0/1 matrix in the role-swapped order of "
            f"{split}.csv; for real data build it with baseline_react2023 tool/matrix_split.py --partition {split} "
            "from the organisers' Approprirate_facial_reaction.npy and data_indices.csv "
            "(ReactFace's neighbour_emotion_new_<split>.npy files can be renamed to this name)"
        )
    try:
        matrix = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{path}: not a readable .npy file, truncated or corrupt? ({err})") from err
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.dtype.kind not in "biuf":
        raise ValueError(f"{path}: expected a square numeric/bool 0/1 matrix, got dtype {matrix.dtype} shape {matrix.shape}")
    if matrix.shape[0] != size:
        raise ValueError(
            f"{path}: neighbour matrix is {matrix.shape[0]}x{matrix.shape[1]} but {split}.csv gives {size} "
            "samples in the order the matrix must follow (2L with role-swapped mirroring)"
        )
    if not np.isin(matrix, (0, 1)).all():
        raise ValueError(f"{path}: expected a 0/1 matrix, found values other than 0 and 1")
    return matrix.astype(bool)
