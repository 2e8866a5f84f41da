"""The embedded dyadic world, written in facezoo's dyadic *interview* layout (DyadGAN).

The Interactive-GAN data (arXiv 1801.09092, Sec. 4.1): one interviewer talks to many
interviewees over video calls; each session gives a pair of videos and, per interviewee frame,
an 8-d affect descriptor (FACET likelihoods of joy, anger, surprise, fear, contempt, disgust,
sadness, neutral). ``write_interview_dataset`` simulates such sessions with the world's
behaviour model (:mod:`.behaviour`): the interviewer is one fixed person with one listener
style who reacts, with a delay, to what the interviewee displays (mimicry, smiling back, nods,
head shakes), and each interviewee follows a conversation mood. Layout (documented for labs in
``docs/dyadgan.md``)::

    ROOT/sessions.csv                               session,interviewee,split,frames,fps
    ROOT/sessions/<session>/interviewee.mp4         (or a folder 1.png, 2.png, ...)
    ROOT/sessions/<session>/interviewer.mp4         same frame count and rate
    ROOT/sessions/<session>/interviewee_affect.csv  frame,joy,anger,surprise,fear,contempt,disgust,sadness,neutral
    ROOT/sessions/<session>/{interviewer,interviewee}_landmarks.npy   (T, 68, 2) pixel (x, y), optional
    ROOT/sessions/<session>/{interviewer,interviewee}_face_state.npy  (T, 58) blendshapes + pose, optional
    ROOT/facezoo_world.json                         settings, identities, styles, moods (ground truth)

The world writes every optional file: its landmarks are exact (the rig's projection), so the
DataModule needs no landmark detector on embedded data. Sessions are split
interviewee-disjointly; the interviewer is in every split, as in the paper.

Behaviour is simulated at the world's 25 fps and resampled (linear interpolation) to ``fps``
(30 by default, the paper's "100 frames = 3.3 s").
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from datamodules.features.face_state import AFFECT_CLASSES
from datamodules.features.io import atomic_path, save_npy, write_video
from datamodules.features.rig import FaceRig
from datamodules.synthetic.appearance import sample_identity
from datamodules.synthetic.behaviour import (
    AFFECT_INDEX,
    MOODS,
    emotion_vector,
    sample_style,
    simulate_dyad_clip,
)
from datamodules.synthetic.behaviour import (
    FPS as WORLD_FPS,
)
from datamodules.synthetic.cache import cached_world
from datamodules.synthetic.face_renderer import FaceRenderer

WORLD_VERSION = "interview-world-1"
SPLITS = ("train", "val", "test")
ROLES = ("interviewee", "interviewer")
AFFECT_CSV_HEADER = ("frame",) + AFFECT_CLASSES
# The world's REACT-order expression channel behind each of DyadGAN's affect names.
_REACT_NAME = {"joy": "Happy", "anger": "Anger", "surprise": "Surprise", "fear": "Fear",
               "contempt": "Contempt", "disgust": "Disgust", "sadness": "Sad", "neutral": "Neutral"}
AFFECT_FROM_REACT = np.array([AFFECT_INDEX[_REACT_NAME[name]] for name in AFFECT_CLASSES])


def resample_frames(values: np.ndarray, source_fps: float, target_fps: float, frames: int) -> np.ndarray:
    """Linear interpolation of a (T, ...) track from ``source_fps`` to ``frames`` frames at ``target_fps``."""
    times = np.arange(frames) / target_fps * source_fps
    if times[-1] > len(values) - 1 + 1e-9:
        raise ValueError(f"values: {len(values)} frames at {source_fps} fps are too short for {frames} at {target_fps} fps")
    left = np.floor(times).astype(int).clip(0, len(values) - 1)
    right = np.minimum(left + 1, len(values) - 1)
    w = (times - left).reshape(-1, *([1] * (values.ndim - 1)))
    return ((1 - w) * values[left] + w * values[right]).astype(np.float32)


def write_affect_csv(path: str | os.PathLike, affect: np.ndarray) -> None:
    """Write (T, 8) affect likelihoods with the layout's header, atomically."""
    affect = np.asarray(affect, dtype=np.float64)
    if affect.ndim != 2 or affect.shape[1] != len(AFFECT_CLASSES):
        raise ValueError(f"affect: expected (T, {len(AFFECT_CLASSES)}) likelihoods, got {affect.shape}")
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(AFFECT_CSV_HEADER)
        writer.writerows([t, *row] for t, row in enumerate(np.round(affect, 5).tolist()))


def _assign_splits(rng: np.random.Generator, count: int, fractions: tuple[float, float, float]) -> list[str]:
    if count < 3:
        raise ValueError(f"interviewees={count}: need at least 3 so train, val and test are non-empty")
    if len(fractions) != 3 or min(fractions) < 0 or not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"split_fractions={fractions}: expected three non-negative fractions summing to 1")
    n_val = max(1, round(fractions[1] * count))
    n_test = max(1, round(fractions[2] * count))
    splits = ["train"] * count
    for rank, idx in enumerate(rng.permutation(count)):
        splits[idx] = "val" if rank < n_val else "test" if rank < n_val + n_test else "train"
    return splits


def write_interview_dataset(
    out: str | os.PathLike,
    interviewees: int = 10,
    seed: int = 0,
    session_frames: int = 900,
    fps: float = 30.0,
    image_size: int = 128,
    video_format: str = "mp4",
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    progress: bool = False,
) -> Path:
    """Simulate and write interview sessions into ``out`` (new or empty folder), atomically."""
    if video_format not in ("mp4", "png"):
        raise ValueError(f"video_format={video_format!r}: expected 'mp4' or 'png'")
    if session_frames < 2:
        raise ValueError(f"session_frames={session_frames}: expected at least 2 frames")
    if not fps > 0:
        raise ValueError(f"fps={fps}: expected a positive frame rate")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out}: exists and is not empty; choose a new --out folder")
    rng = np.random.default_rng(seed)
    splits = _assign_splits(rng, interviewees, tuple(split_fractions))
    interviewer_identity, interviewer_style = sample_identity(rng), sample_style(rng)
    renderer = FaceRenderer(image_size=image_size)
    simulated_frames = int(np.ceil((session_frames - 1) * WORLD_FPS / fps)) + 1
    rows, people = [], []
    jobs: Iterator[int] = iter(range(interviewees))
    if progress:
        from tqdm import tqdm

        jobs = tqdm(range(interviewees), desc="make-data interview", unit="session")
    suffix = ".mp4" if video_format == "mp4" else ""
    with atomic_path(out, is_dir=True) as tmp:
        for i in jobs:
            session, person = f"session_{i + 1:03d}", f"P{i + 1:03d}"
            identity, style = sample_identity(rng), sample_style(rng)
            mood = str(rng.choice(list(MOODS)))
            tracks = simulate_dyad_clip(rng, mood, (style, interviewer_style), simulated_frames)
            folder = tmp / "sessions" / session
            for role, track, who in zip(ROLES, tracks, (identity, interviewer_identity)):
                face_state = resample_frames(track.face_state, WORLD_FPS, fps, session_frames)
                write_video(folder / f"{role}{suffix}", renderer.render_sequence(face_state, who), fps=fps)
                save_npy(folder / f"{role}_face_state.npy", face_state)
                landmarks = FaceRig.landmarks_2d(face_state.astype(np.float64), who.shape_coefficients.astype(np.float64), image_size)
                save_npy(folder / f"{role}_landmarks.npy", landmarks.astype(np.float32))
                if role == "interviewee":
                    # FACET-like likelihoods: the world's expression probabilities (with estimator
                    # noise) of the interviewee's displayed affect, in the paper's class order.
                    probs = emotion_vector(rng, track)[:, 17:25][:, AFFECT_FROM_REACT]
                    write_affect_csv(folder / "interviewee_affect.csv", resample_frames(probs, WORLD_FPS, fps, session_frames))
            rows.append((session, person, splits[i], session_frames, fps))
            people.append({"session": session, "interviewee": person, "split": splits[i], "mood": mood,
                           "identity": identity.to_dict(), "style": style.to_dict()})
        with open(tmp / "sessions.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["session", "interviewee", "split", "frames", "fps"])
            writer.writerows(rows)
        meta = {
            "generator": WORLD_VERSION,
            "settings": dict(interviewees=interviewees, seed=seed, session_frames=session_frames, fps=fps,
                             image_size=image_size, video_format=video_format, split_fractions=list(split_fractions)),
            "interviewer": {"identity": interviewer_identity.to_dict(), "style": interviewer_style.to_dict()},
            "sessions": people,
        }
        (tmp / "facezoo_world.json").write_text(json.dumps(meta, indent=1))
    return out


def cached_interview_dataset(cache_dir: str | os.PathLike | None = None, progress: bool = True, **settings) -> Path:
    """The embedded interview world for ``settings`` (see :func:`write_interview_dataset`), generated
    once under ``cache_dir`` (default ``$FACEZOO_HOME/data``); concurrent callers wait on a lock."""
    return cached_world("interview-world", WORLD_VERSION, write_interview_dataset, settings, cache_dir, progress)


# -- `facezoo make-data interview` --------------------------------------------------------------


def configure_layout_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Write dyadic interview sessions (one interviewer, many interviewees): paired videos, "
                          "per-frame interviewee affect csv, landmarks and face states (docs/dyadgan.md).")
    parser.add_argument("--out", required=True, type=Path, help="new folder to write (must not exist or be empty)")
    parser.add_argument("--interviewees", type=int, default=10, help="sessions, one per interviewee (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--session-frames", type=int, default=900, help="frames per session (default 900 = 30 s)")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate of the videos (default 30, as the paper)")
    parser.add_argument("--image-size", type=int, default=128, help="video frame size in pixels (default 128)")
    parser.add_argument("--video-format", choices=("mp4", "png"), default="mp4", help="mp4 files or folders of 1.png, ...")


def run_layout(args: argparse.Namespace) -> int:
    for name in ("interviewees", "session_frames", "image_size"):
        if getattr(args, name) < 1:
            raise SystemExit(f"make-data interview: --{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    root = write_interview_dataset(args.out, interviewees=args.interviewees, seed=args.seed,
                                   session_frames=args.session_frames, fps=args.fps, image_size=args.image_size,
                                   video_format=args.video_format, progress=True)
    print(f"wrote an interview-layout dataset to {root}")
    print(f"train with: facezoo fit --config zoo/demo/dyadgan.yaml --data.init_args.root {root}")
    return 0
