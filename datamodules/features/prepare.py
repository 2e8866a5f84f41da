"""``facezoo prepare``: raw videos -> every per-frame representation the zoo uses, cached on disk.

    facezoo prepare VIDEO_OR_DIR --out DIR [--model face_landmarker.task] [--workers N]
                    [--size 256] [--fps 25] [--smooth savgol|one_euro|none] [--no-oval-mask]

Inputs: a video file (mp4, avi, mov, mkv, webm), a folder of numbered frames (``1.png, 2.png``;
REACT layout, frame rate from ``--source-fps``), or a folder searched recursively for both.
Audio: a ``.wav`` next to the video with the same stem (``clip.mp4`` + ``clip.wav``; OpenCV
cannot decode audio tracks, so extract them first, e.g. ``ffmpeg -i clip.mp4 -ac 1 clip.wav``).

Per video, ``DIR/<path relative to the input, without suffix>/`` holds (``T`` output frames at
``--fps``; every array is NaN / zero where ``face_mask`` is False):

* ``features.npz``: ``face_mask`` (T,) bool; ``landmarks_478`` (T, 478, 3) MediaPipe normalised
  x, y, z (smoothed); ``landmarks_68`` (T, 68, 2) iBUG pixels in the source frame (frozen mapping
  ``mediapipe_to_ibug``); ``landmarks_68_crop`` (T, 68, 2) pixels in the crop; ``blendshapes``
  (T, 52) raw scores; ``face_state`` (T, 58) blendshapes + smoothed head pose
  (``mediapipe_landmarks`` convention); ``transform`` (T, 4, 4) raw matrices; ``crop_affine``
  (T, 2, 3) source -> crop pixels; ``au`` (T, A) intensities 0..5 with ``au_names``; ``affect``
  (T, 8) ``AFFECT_CLASSES`` estimate; ``timestamps`` (T,) s; ``source_index`` (T,) decoded frame
  used for each output frame.
* ``crops.mp4``: eye-aligned RGB crops (``--size``); black where there is no face.
* ``drawings.npz``: ``sketches`` (T, size, size) 1-px sketches and ``landmark_images`` (T, 64, 64)
  binary images, bit-packed along the last axis (:func:`load_prepared` unpacks them).
* ``audio.npz`` (when a wav exists): ``audio_16k``, ``wav2vec2_input``, ``log_mel`` (4T, 80),
  ``mfcc`` (4T, 13); the waveform is cut or zero-padded to ``T / fps`` seconds.
* ``meta.json``, written last: settings, landmarker, frame counts, frames without a face. A video
  is finished when its ``meta.json`` exists with the same settings, so a rerun skips it; every
  file is written through a temporary name, so an interrupted run leaves no half file.

Frame counts: the decoded frames are the truth. The container's frame count is recorded
(``frames_metadata``) and a mismatch is reported (``frame_count_mismatch``), never used.
Timestamps are ``index / fps_source`` of decoded frames. Frame-rate conversion and smoothing
are documented in ``datamodules/features/temporal.py``; crops in ``face_crops.py``; AU and affect
rules in ``blendshape_estimates.py``. The video is decoded twice (landmarks, then crops after
smoothing), so memory does not grow with its length.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from datamodules.features.audio_features import (
    SAMPLE_RATE,
    log_mel_spectrogram,
    mfcc,
    to_16k,
    wav2vec2_input,
)
from datamodules.features.blendshape_estimates import (
    BLENDSHAPE_AU_RULES,
    affect_from_blendshapes,
    au_from_blendshapes,
)
from datamodules.features.face_crops import apply_affine, crop_affines, crop_drawings, warp_crop
from datamodules.features.face_state import (
    AFFECT_CLASSES,
    EXPRESSION,
    EXPRESSION_DIM,
    FACE_STATE_DIM,
    POSE,
)
from datamodules.features.io import VIDEO_SUFFIXES, atomic_path, frame_files, iter_video, read_wav
from datamodules.features.mediapipe_landmarks import (
    FaceObservation,
    Landmarker,
    MediaPipeLandmarkerFactory,
    face_state_from_observation,
    resolve_face_landmarker_model,
)
from datamodules.features.mediapipe_to_ibug import (
    MAPPING_VERSION,
    NUM_MESH_POINTS,
    mediapipe_to_ibug,
)
from datamodules.features.temporal import (
    SMOOTHERS,
    Smoothing,
    output_frame_count,
    resample_indices,
    source_index,
)

FORMAT_VERSION = 1
AU_NAMES = tuple(BLENDSHAPE_AU_RULES)
LandmarkerFactory = Callable[[Path], Landmarker]


@dataclass(frozen=True)
class PrepareConfig:
    """Settings that determine the outputs (a change makes finished videos stale)."""

    size: int = 256
    fps: float | None = 25.0  # None: keep the source frame rate
    source_fps: float = 25.0  # frame folders, and videos whose container gives no rate
    smoothing: Smoothing = field(default_factory=Smoothing)
    crop_scale: float = 1.0
    oval_mask: bool = True
    landmark_image_size: int = 64
    n_mels: int = 80
    mels_per_frame: int = 4
    n_mfcc: int = 13

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 16:
            raise ValueError(f"size: expected an int >= 16 (crop side in pixels), got {self.size!r}")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"fps: expected a positive output frame rate or None (keep the source's), got {self.fps!r}")
        if not self.source_fps > 0:
            raise ValueError(f"source_fps: expected a positive frame rate, got {self.source_fps!r}")
        if not self.crop_scale > 0:
            raise ValueError(f"crop_scale: expected a positive factor, got {self.crop_scale!r}")
        if self.landmark_image_size < 8 or self.landmark_image_size % 8 or self.size % 8:
            raise ValueError(f"size and landmark_image_size: expected multiples of 8 (bit-packed drawings), "
                             f"got {self.size}, {self.landmark_image_size}")

    def to_dict(self) -> dict:
        return {**asdict(self), "format": FORMAT_VERSION, "mapping": MAPPING_VERSION}


# ----------------------------------------------------------------------------------------------
# inputs


def _is_frame_folder(path: Path) -> bool:
    if not path.is_dir():
        return False
    try:
        frame_files(path)
    except FileNotFoundError:
        return False
    return True


def find_videos(root: str | os.PathLike) -> list[Path]:
    """Video files and numbered-frame folders at or under ``root``, sorted."""
    root = Path(root)
    if root.is_file():
        if root.suffix.lower() not in VIDEO_SUFFIXES:
            raise ValueError(f"{root}: not a video (expected one of {VIDEO_SUFFIXES} or a folder)")
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"VIDEO_OR_DIR {root}: no such file or folder")
    if _is_frame_folder(root):
        return [root]
    found = [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES]
    found += [p for p in root.rglob("*") if _is_frame_folder(p)]
    if not found:
        raise FileNotFoundError(f"{root}: no videos ({', '.join(VIDEO_SUFFIXES)}) or numbered-frame folders found")
    return sorted(found)


def output_dir_for(video: Path, root: Path, out: Path) -> Path:
    relative = Path(video.name) if video == root else video.relative_to(root)
    return out / relative.with_suffix("") if video.is_file() else out / relative


def probe(video: Path, default_fps: float) -> tuple[float, int | None, bool]:
    """(source fps, frame count claimed by the container or None, whether the fps was guessed)."""
    if video.is_dir():
        return default_fps, len(frame_files(video)), True
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise ValueError(f"{video}: OpenCV cannot open this video")
    try:
        fps, count = capture.get(cv2.CAP_PROP_FPS), capture.get(cv2.CAP_PROP_FRAME_COUNT)
    finally:
        capture.release()
    claimed = int(count) if count and math.isfinite(count) and count > 0 else None
    if not (fps and math.isfinite(fps) and 0 < fps < 1000):
        return default_fps, claimed, True
    return float(fps), claimed, False


def find_audio(video: Path) -> Path | None:
    candidate = video.with_suffix(".wav") if video.is_file() else video.parent / f"{video.name}.wav"
    return candidate if candidate.is_file() else None


# ----------------------------------------------------------------------------------------------
# one video


@dataclass
class VideoSummary:
    video: str
    out_dir: str
    status: str  # "done", "skipped", "failed"
    frames_decoded: int = 0
    frames_metadata: int | None = None
    frames_out: int = 0
    frames_without_face: int = 0
    error: str | None = None


def _detect_pass(video: Path, landmarker: Landmarker, fps_src: float, fps_out: float,
                 progress: tqdm | None) -> tuple[dict[int, FaceObservation | None], int, tuple[int, int]]:
    """Decode once; run the landmarker on every source frame some output frame uses."""
    observations: dict[int, FaceObservation | None] = {}
    next_j, n, shape, last = 0, 0, None, None
    for i, frame in enumerate(iter_video(video)):
        if shape is None:
            shape = frame.shape[:2]
        elif frame.shape[:2] != shape:
            raise ValueError(f"{video}: frame {i} is {frame.shape[1]}x{frame.shape[0]}, earlier frames {shape[1]}x{shape[0]}")
        while source_index(next_j, fps_src, fps_out) == i:
            next_j += 1
            observations.setdefault(i, None)
        if i in observations:
            observations[i] = landmarker.detect(frame, int(round(i * 1000.0 / fps_src)))
        n, last = i + 1, frame
        if progress is not None:
            progress.update(1)
    if n == 0:
        raise ValueError(f"{video}: no decodable frames")
    # output frames past the last decoded frame (rounding at the end) reuse it
    if n - 1 not in observations and output_frame_count(n, fps_src, fps_out) > next_j:
        observations[n - 1] = landmarker.detect(last, int(round((n - 1) * 1000.0 / fps_src)))
    return observations, n, shape  # type: ignore[return-value]


def _frames_at(video: Path, wanted: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(output index, frame) for output frames whose source indices are ``wanted`` (nondecreasing)."""
    j = 0
    for i, frame in enumerate(iter_video(video)):
        while j < len(wanted) and wanted[j] == i:
            yield j, frame
            j += 1
        if j == len(wanted):
            return


def prepare_video(
    video: str | os.PathLike,
    out_dir: str | os.PathLike,
    landmarker: Landmarker,
    config: PrepareConfig,
    landmarker_info: dict | None = None,
    show_progress: bool = False,
) -> VideoSummary:
    """Prepare one video into ``out_dir`` (layout in the module docstring). Always recomputes."""
    video, out_dir = Path(video), Path(out_dir)
    fps_src, frames_metadata, fps_guessed = probe(video, config.source_fps)
    fps_out = config.fps or fps_src
    bar = tqdm(total=frames_metadata, desc=f"{video.name}: landmarks", unit="frame", leave=False,
               disable=not show_progress, file=sys.stderr)
    try:
        observations, n_decoded, (height, width) = _detect_pass(video, landmarker, fps_src, fps_out, bar)
    finally:
        bar.close()
    source = resample_indices(n_decoded, fps_src, fps_out)
    T = len(source)
    mask = np.array([observations[i] is not None for i in source], dtype=bool)

    landmarks = np.full((T, NUM_MESH_POINTS, 3), np.nan)
    blendshapes = np.full((T, EXPRESSION_DIM), np.nan)
    transform = np.full((T, 4, 4), np.nan)
    face_state = np.full((T, FACE_STATE_DIM), np.nan)
    for j in np.flatnonzero(mask):
        obs = observations[source[j]]
        landmarks[j], blendshapes[j], transform[j] = obs.landmarks, obs.blendshapes, obs.transform
        face_state[j] = face_state_from_observation(obs)
    # smoothing at the output rate: landmarks and head pose; blendshapes stay raw (see temporal.py)
    landmarks = config.smoothing(landmarks, fps_out)
    face_state[:, POSE] = config.smoothing(face_state[:, POSE], fps_out)
    face_state[:, EXPRESSION] = blendshapes
    pixels = landmarks[..., :2] * np.array([width, height]) - 0.5
    landmarks_68 = mediapipe_to_ibug(pixels)

    au = np.full((T, len(AU_NAMES)), np.nan)
    affect = np.full((T, len(AFFECT_CLASSES)), np.nan)
    affine = np.full((T, 2, 3), np.nan)
    landmarks_68_crop = np.full((T, 68, 2), np.nan)
    if mask.any():
        au[mask] = au_from_blendshapes(blendshapes[mask], AU_NAMES)
        affect[mask] = affect_from_blendshapes(blendshapes[mask])
        affine[mask] = crop_affines(landmarks_68[mask], config.size, config.crop_scale)
        landmarks_68_crop[mask] = apply_affine(affine[mask], landmarks_68[mask])

    size, lsize = config.size, config.landmark_image_size
    sketches = np.zeros((T, size, size // 8), dtype=np.uint8)
    landmark_images = np.zeros((T, lsize, lsize // 8), dtype=np.uint8)
    if mask.any():
        drawn_sketch, drawn_landmarks = crop_drawings(landmarks_68_crop[mask], size, config.oval_mask, lsize)
        sketches[mask] = np.packbits(drawn_sketch > 0, axis=-1)
        landmark_images[mask] = np.packbits(drawn_landmarks > 0, axis=-1)

    out_dir.mkdir(parents=True, exist_ok=True)
    meta_path = out_dir / "meta.json"
    meta_path.unlink(missing_ok=True)  # the directory is unfinished from here until meta.json is rewritten
    _write_crops(video, out_dir / "crops.mp4", source, mask, affine, size, fps_out, show_progress)
    f32 = np.float32
    _save_npz(out_dir / "features.npz", face_mask=mask, landmarks_478=landmarks.astype(f32),
              landmarks_68=landmarks_68.astype(f32), landmarks_68_crop=landmarks_68_crop.astype(f32),
              blendshapes=blendshapes.astype(f32), face_state=face_state.astype(f32), transform=transform.astype(f32),
              crop_affine=affine.astype(f32), au=au.astype(f32), au_names=np.array(AU_NAMES), affect=affect.astype(f32),
              timestamps=(np.arange(T) / fps_out), source_index=source)
    _save_npz(out_dir / "drawings.npz", sketches=sketches, landmark_images=landmark_images,
              sketch_size=np.array(size), landmark_image_size=np.array(lsize))
    audio_info = _write_audio(video, out_dir / "audio.npz", T, fps_out, config)

    summary = VideoSummary(video=str(video), out_dir=str(out_dir), status="done", frames_decoded=n_decoded,
                           frames_metadata=frames_metadata, frames_out=T, frames_without_face=int((~mask).sum()))
    meta = {
        "config": config.to_dict(),
        "video": str(video),
        "landmarker": landmarker_info or {"kind": type(landmarker).__name__},
        "fps_source": fps_src,
        "fps_source_guessed": fps_guessed,
        "fps": fps_out,
        "frame_size": [width, height],
        "frames_decoded": n_decoded,
        "frames_metadata": frames_metadata,
        "frame_count_mismatch": frames_metadata is not None and frames_metadata != n_decoded,
        "frames": T,
        "frames_without_face": summary.frames_without_face,
        "no_face_runs": _runs(~mask),
        "audio": audio_info,
    }
    with atomic_path(meta_path) as tmp:
        tmp.write_text(json.dumps(meta, indent=2))
    return summary


def _runs(flags: np.ndarray) -> list[list[int]]:
    """[start, stop) output-frame ranges where ``flags`` is True."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return [[int(a), int(b)] for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True)]


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


def _write_crops(video: Path, path: Path, source: np.ndarray, mask: np.ndarray, affine: np.ndarray,
                 size: int, fps: float, show_progress: bool) -> None:
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (size, size))
        if not writer.isOpened():
            raise RuntimeError(f"{path}: OpenCV could not open an mp4v writer")
        black = np.zeros((size, size, 3), dtype=np.uint8)
        written = 0
        try:
            for j, frame in tqdm(_frames_at(video, source), total=len(source), desc=f"{video.name}: crops",
                                 unit="frame", leave=False, disable=not show_progress, file=sys.stderr):
                crop = warp_crop(frame, affine[j], size) if mask[j] else black
                writer.write(cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
                written += 1
        finally:
            writer.release()
        if written != len(source):
            raise ValueError(f"{video}: second decode gave {written} of {len(source)} frames (non-deterministic decoder?)")


def _write_audio(video: Path, path: Path, frames: int, fps: float, config: PrepareConfig) -> dict | None:
    wav = find_audio(video)
    if wav is None:
        path.unlink(missing_ok=True)
        return None
    audio, rate = read_wav(wav)
    audio = to_16k(audio, rate)
    samples = int(round(frames * SAMPLE_RATE / fps))
    info = {"file": str(wav), "sample_rate_source": rate, "seconds_source": len(audio) / SAMPLE_RATE,
            "seconds": samples / SAMPLE_RATE}
    audio = np.pad(audio[:samples], (0, max(0, samples - len(audio))))
    log_mel = log_mel_spectrogram(audio, frames, fps, config.mels_per_frame, config.n_mels)
    _save_npz(path, audio_16k=audio, wav2vec2_input=wav2vec2_input(audio), log_mel=log_mel,
              mfcc=mfcc(log_mel, config.n_mfcc), sample_rate=np.array(SAMPLE_RATE), mels_per_frame=np.array(config.mels_per_frame))
    return info


def load_prepared(out_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """Arrays of one prepared video: ``features.npz``, unpacked drawings (uint8 sketches {0, 255},
    landmark images {0, 1}), ``audio.npz`` if present, and ``meta`` (the parsed ``meta.json``)."""
    out_dir = Path(out_dir)
    meta_path = out_dir / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{out_dir}: no meta.json (not prepared, or preparation did not finish)")
    data: dict = {"meta": json.loads(meta_path.read_text())}
    with np.load(out_dir / "features.npz") as features:
        data.update({k: features[k] for k in features.files})
    with np.load(out_dir / "drawings.npz") as drawings:
        data["sketches"] = np.unpackbits(drawings["sketches"], axis=-1) * np.uint8(255)
        data["landmark_images"] = np.unpackbits(drawings["landmark_images"], axis=-1)
    if (out_dir / "audio.npz").is_file():
        with np.load(out_dir / "audio.npz") as audio:
            data.update({k: audio[k] for k in audio.files})
    return data


def is_finished(out_dir: Path, config: PrepareConfig) -> bool:
    meta_path = out_dir / "meta.json"
    if not meta_path.is_file():
        return False
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return meta.get("config") == json.loads(json.dumps(config.to_dict()))


# ----------------------------------------------------------------------------------------------
# many videos


def _prepare_one(video: Path, out_dir: Path, factory: LandmarkerFactory, config: PrepareConfig,
                 show_progress: bool) -> VideoSummary:
    landmarker = factory(video)
    info = factory.describe() if hasattr(factory, "describe") else {"kind": type(landmarker).__name__}
    try:
        return prepare_video(video, out_dir, landmarker, config, info, show_progress)
    finally:
        landmarker.close()


def _worker(video: Path, out_dir: Path, factory: LandmarkerFactory, config: PrepareConfig) -> VideoSummary:
    cv2.setNumThreads(1)  # one video per core: no nested thread pools
    try:
        return _prepare_one(video, out_dir, factory, config, False)
    except Exception as err:  # reported in the summary; the other videos go on
        return VideoSummary(str(video), str(out_dir), "failed", error=f"{type(err).__name__}: {err}")


def prepare_videos(
    root: str | os.PathLike,
    out: str | os.PathLike,
    factory: LandmarkerFactory,
    config: PrepareConfig,
    workers: int = 1,
    overwrite: bool = False,
    show_progress: bool = True,
) -> list[VideoSummary]:
    """Prepare every video at or under ``root`` into ``out``, skipping finished ones; writes
    ``out/prepare_summary.json``. ``factory(video)`` makes one landmarker per video (picklable
    when ``workers > 1``)."""
    root, out = Path(root), Path(out)
    if workers < 1:
        raise ValueError(f"workers: expected >= 1, got {workers}")
    videos = find_videos(root)
    summaries: list[VideoSummary] = []
    todo = []
    for video in videos:
        target = output_dir_for(video, root, out)
        if not overwrite and is_finished(target, config):
            meta = json.loads((target / "meta.json").read_text())
            summaries.append(VideoSummary(str(video), str(target), "skipped", meta["frames_decoded"],
                                          meta["frames_metadata"], meta["frames"], meta["frames_without_face"]))
        else:
            todo.append((video, target))
    bar = tqdm(total=len(videos), initial=len(summaries), desc="videos", unit="video", disable=not show_progress, file=sys.stderr)
    try:
        if workers == 1:
            for video, target in todo:
                try:
                    summaries.append(_prepare_one(video, target, factory, config, show_progress))
                except Exception as err:  # one bad file must not stop a dataset run
                    summaries.append(VideoSummary(str(video), str(target), "failed", error=f"{type(err).__name__}: {err}"))
                bar.update(1)
        else:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
                futures = [pool.submit(_worker, video, target, factory, config) for video, target in todo]
                for future in as_completed(futures):
                    summaries.append(future.result())
                    bar.update(1)
    finally:
        bar.close()
    summaries.sort(key=lambda s: s.video)
    with atomic_path(out / "prepare_summary.json") as tmp:
        tmp.write_text(json.dumps([asdict(s) for s in summaries], indent=2))
    return summaries


def format_summary(summaries: list[VideoSummary]) -> str:
    lines = [f"{'video':<40} {'status':<8} {'decoded':>8} {'claimed':>8} {'frames':>7} {'no face':>8}"]
    for s in summaries:
        claimed = "-" if s.frames_metadata is None else str(s.frames_metadata)
        flag = " (count differs)" if s.frames_metadata is not None and s.status != "failed" and s.frames_metadata != s.frames_decoded else ""
        lines.append(f"{Path(s.video).name[-40:]:<40} {s.status:<8} {s.frames_decoded:>8} {claimed:>8} {s.frames_out:>7} "
                     f"{s.frames_without_face:>8}{flag}" + (f"  {s.error}" if s.error else ""))
    total = sum(s.frames_out for s in summaries)
    missing = sum(s.frames_without_face for s in summaries)
    lines.append(f"{len(summaries)} videos, {total} frames, {missing} without a face"
                 + (f" ({100.0 * missing / total:.1f}%)" if total else ""))
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# command line


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="VIDEO_OR_DIR", help="a video, a folder of numbered frames, or a folder of either")
    parser.add_argument("--out", required=True, help="output folder (one subfolder per video)")
    parser.add_argument("--model", default=None, help="face_landmarker.task (default: $FACEZOO_FACE_LANDMARKER, "
                        "then $FACEZOO_HOME/weights/face_landmarker.task, then the official download)")
    parser.add_argument("--no-download", action="store_true", help="never download the .task model")
    parser.add_argument("--workers", type=int, default=1, help="videos prepared in parallel (one process each)")
    parser.add_argument("--size", type=int, default=256, help="side of the aligned crops and sketches (pixels)")
    parser.add_argument("--fps", type=float, default=25.0, help="output frame rate; 0 keeps the source rate")
    parser.add_argument("--source-fps", type=float, default=25.0, help="frame rate of frame folders (and of videos without one)")
    parser.add_argument("--smooth", choices=SMOOTHERS, default="savgol", help="temporal filter for landmarks and head pose")
    parser.add_argument("--smooth-window", type=int, default=5, help="savgol window (odd, output frames)")
    parser.add_argument("--smooth-order", type=int, default=2, help="savgol polynomial order")
    parser.add_argument("--min-cutoff", type=float, default=1.0, help="one_euro minimum cutoff (Hz)")
    parser.add_argument("--beta", type=float, default=0.0, help="one_euro speed coefficient")
    parser.add_argument("--crop-scale", type=float, default=1.0, help="crop framing; 1 = FFHQ's (about 4 eye distances wide)")
    parser.add_argument("--no-oval-mask", action="store_true", help="do not mask sketches with DyadGAN's oval")
    parser.add_argument("--landmark-image-size", type=int, default=64, help="side of the binary landmark images (CMM-Net: 64)")
    parser.add_argument("--min-detection-confidence", type=float, default=0.5)
    parser.add_argument("--min-tracking-confidence", type=float, default=0.5)
    parser.add_argument("--overwrite", action="store_true", help="redo finished videos")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def config_from_args(args: argparse.Namespace) -> PrepareConfig:
    smoothing = Smoothing(args.smooth, args.smooth_window, args.smooth_order, args.min_cutoff, args.beta)
    return PrepareConfig(size=args.size, fps=args.fps or None, source_fps=args.source_fps, smoothing=smoothing,
                         crop_scale=args.crop_scale, oval_mask=not args.no_oval_mask,
                         landmark_image_size=args.landmark_image_size)


def run(args: argparse.Namespace, factory: LandmarkerFactory | None = None) -> int:
    """``facezoo prepare``; ``factory`` replaces MediaPipe (tests, benchmarks)."""
    config = config_from_args(args)
    find_videos(args.input)  # bad input fails before the model is resolved or downloaded
    if factory is None:
        model = resolve_face_landmarker_model(args.model, download=not args.no_download)
        factory = MediaPipeLandmarkerFactory(str(model), args.min_detection_confidence, 0.5, args.min_tracking_confidence)
    summaries = prepare_videos(args.input, args.out, factory, config, workers=args.workers,
                               overwrite=args.overwrite, show_progress=not args.quiet)
    print(format_summary(summaries))
    return 1 if any(s.status == "failed" for s in summaries) else 0
