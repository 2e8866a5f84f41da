"""Reading and writing the media files of the dataset layouts: videos (mp4 or PNG-frame
folders), wav audio, and atomic writes so an interrupted job never leaves a half file.

Frames are always ``uint8`` RGB arrays of shape ``(T, H, W, 3)``; audio is ``float32`` mono
in [-1, 1].
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import wave
from collections.abc import Iterator
from math import gcd
from pathlib import Path

import cv2
import numpy as np
from scipy.signal import resample_poly

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
_FRAME_NAME = re.compile(r"^(\d+)\.(png|jpg|jpeg)$", re.IGNORECASE)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; move it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_dir:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        # mkstemp/mkdtemp make private (0600/0700) entries, and writers may recreate the file: the
        # result is an ordinary file or folder (a dataset, published weights), so give it the mode
        # open()/mkdir() would under the umask
        os.chmod(tmp, (0o777 if is_dir else 0o666) & ~_umask())
        if is_dir and path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """``np.save`` through a temporary file."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def frame_files(folder: str | os.PathLike) -> list[Path]:
    """The numbered frames (``1.png, 2.png, ...``) of a frame folder, in numeric order."""
    folder = Path(folder)
    frames = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _FRAME_NAME.match(p.name))]
    if not frames:
        raise FileNotFoundError(f"{folder}: expected numbered frames 1.png, 2.png, ... and found none")
    return [p for _, p in sorted(frames)]


def video_frame_count(path: str | os.PathLike) -> int:
    """Number of frames of an mp4 (as decoded, not as the container claims) or frame folder."""
    path = Path(path)
    if path.is_dir():
        return len(frame_files(path))
    return sum(1 for _ in iter_video(path))


def iter_video(path: str | os.PathLike, size: int | None = None) -> Iterator[np.ndarray]:
    """Yield RGB uint8 frames of an mp4 file or a PNG-frame folder, optionally resized to ``size``."""
    path = Path(path)
    if path.is_dir():
        for frame_path in frame_files(path):
            frame = cv2.imread(str(frame_path), cv2.IMREAD_COLOR)
            if frame is None:
                raise ValueError(f"{frame_path}: not a readable image")
            yield _to_rgb(frame, size)
        return
    if not path.is_file():
        raise FileNotFoundError(f"{path}: video not found (expected an mp4 file or a folder of numbered PNG frames)")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f"{path}: OpenCV cannot open this video")
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            yield _to_rgb(frame, size)
    finally:
        capture.release()


def read_video(path: str | os.PathLike, size: int | None = None) -> np.ndarray:
    """All frames of a video as ``(T, H, W, 3)`` uint8 RGB."""
    frames = list(iter_video(path, size))
    if not frames:
        raise ValueError(f"{path}: video has no decodable frames")
    return np.stack(frames)


def _to_rgb(frame_bgr: np.ndarray, size: int | None) -> np.ndarray:
    if size is not None and frame_bgr.shape[:2] != (size, size):
        frame_bgr = cv2.resize(frame_bgr, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float = 25.0) -> Path:
    """Write ``(T, H, W, 3)`` uint8 RGB frames as an mp4 (``.mp4`` path) or as a folder of
    ``1.png, 2.png, ...`` (any other path), atomically."""
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"write_video({path}): expected uint8 frames (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        with atomic_path(path) as tmp:
            height, width = frames.shape[1:3]
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
            if not writer.isOpened():
                raise RuntimeError(f"{path}: OpenCV could not open an mp4v writer")
            for frame in frames:
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            writer.release()
        return path
    with atomic_path(path, is_dir=True) as tmp:
        for i, frame in enumerate(frames, start=1):
            cv2.imwrite(str(tmp / f"{i}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return path


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read a PCM wav file as mono float32 in [-1, 1] and its sample rate."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: audio file not found (expected a PCM .wav)")
    try:
        with wave.open(str(path), "rb") as wav:
            rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
            raw = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as err:
        raise ValueError(f"{path}: not a readable PCM wav file ({err})") from err
    if width == 2:
        audio = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 4:
        audio = np.frombuffer(raw, dtype="<i4").astype(np.float32) / 2147483648.0
    elif width == 1:
        audio = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    else:
        raise ValueError(f"{path}: unsupported sample width {width} bytes (expected 8, 16 or 32-bit PCM)")
    usable = len(audio) - len(audio) % channels
    audio = audio[:usable].reshape(-1, channels).mean(axis=1)
    return audio.astype(np.float32), rate


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> Path:
    """Write mono float audio in [-1, 1] as 16-bit PCM, atomically."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"write_wav({path}): expected mono audio (S,), got shape {audio.shape}")
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with atomic_path(path) as tmp:
        with wave.open(str(tmp), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(int(sample_rate))
            wav.writeframes(pcm.tobytes())
    return Path(path)


def resample(audio: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Polyphase resampling (scipy ``resample_poly``, Kaiser window), e.g. 44.1 kHz -> 16 kHz."""
    if orig_rate == new_rate:
        return np.asarray(audio, dtype=np.float32)
    g = gcd(int(orig_rate), int(new_rate))
    return resample_poly(audio, int(new_rate) // g, int(orig_rate) // g).astype(np.float32)
