"""The embedded dyadic world, written in the REACT 2023/2024 layout.

``write_react_dataset`` simulates dyadic sessions (:mod:`.behaviour`, :mod:`.speech`), renders
each person's face (:mod:`.face_renderer`) and writes what a REACT user would recognise
(B23 README layout, per-split subfolders)::

    ROOT/{train,val,test}.csv                 ,speaker_path,listener_path (Expert/P25 first)
    ROOT/neighbour_emotion_{split}.npy        (2L, 2L) appropriate-reaction matrix, mirrored order
    ROOT/<split>/Video_files/<path>.mp4       25 fps (or <path>/1.png ... with video_format="png")
    ROOT/<split>/Audio_files/<path>.wav       44.1 kHz mono 16-bit
    ROOT/<split>/Emotion/<path>.csv           header + T x 25 (15 AUs, valence, arousal, 8 expressions)
    ROOT/<split>/3D_FV_files/<path>.npy       (T, 58) face state
    ROOT/facezoo_world.json                   the settings, identities and styles (ground truth)

with ``<path>`` = ``NoXI/<id>_<date>_<city>/{Expert,Novice}_video/<clip>`` or
``RECOLA/group-<k>/<P..>/<clip>``. Sessions are split session-disjointly.

``cached_react_dataset`` generates it once under ``$FACEZOO_HOME/data`` and reuses it.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datamodules.features.face_state import EMOTION_COLUMNS
from datamodules.features.io import atomic_path, save_npy, write_video, write_wav
from datamodules.synthetic.appearance import Identity, sample_identity
from datamodules.synthetic.behaviour import (
    AFFECT_VALENCE_AROUSAL,
    MOODS,
    ListenerStyle,
    emotion_vector,
    sample_style,
    simulate_dyad_clip,
)
from datamodules.synthetic.cache import cached_world
from datamodules.synthetic.face_renderer import FaceRenderer
from datamodules.synthetic.speech import room_mix, synthesize_voice

WORLD_VERSION = "react-world-2"  # 2: affect-dependent prosody
SPLITS = ("train", "val", "test")
NOXI_CITIES = ("Paris", "Nottingham", "Augsburg")
RECOLA_PEOPLE = (("P25", "P26"), ("P41", "P42"), ("P45", "P46"))
# Neighbours: speakers whose clip-mean (valence, arousal, 8 expression probabilities) lie
# within this Euclidean distance. REACT's own rule (Song et al., arXiv 2302.06514) is not
# public; this one follows its idea (similar speaker emotion -> interchangeable reactions).
NEIGHBOUR_THRESHOLD = 0.2


@dataclass
class Person:
    folder: str  # e.g. "NoXI/003_2016-03-17_Paris/Expert_video"
    identity: Identity
    style: ListenerStyle
    pitch_hz: float


@dataclass
class Session:
    index: int
    site: str
    people: tuple[Person, Person]
    split: str = "train"


def _sessions(rng: np.random.Generator, count: int, recola_fraction: float) -> list[Session]:
    sessions, recola = [], 0
    for i in range(count):
        if rng.random() < recola_fraction:
            recola += 1
            k = recola
            pair = RECOLA_PEOPLE[k - 1] if k <= len(RECOLA_PEOPLE) else (f"P{100 + 2 * k}", f"P{101 + 2 * k}")
            folders = (f"RECOLA/group-{k}/{pair[0]}", f"RECOLA/group-{k}/{pair[1]}")
            site = "RECOLA"
        else:
            month, day = 3 + (i // 28) % 3, 1 + i % 28
            rec = f"NoXI/{i + 1:03d}_2016-{month:02d}-{day:02d}_{NOXI_CITIES[i % 3]}"
            folders = (f"{rec}/Expert_video", f"{rec}/Novice_video")
            site = "NoXI"
        people = tuple(
            Person(folder, sample_identity(rng), sample_style(rng), float(rng.uniform(95, 230)))
            for folder in folders
        )
        sessions.append(Session(i, site, people))
    return sessions


def _assign_splits(rng: np.random.Generator, sessions: list[Session], fractions: tuple[float, float, float]) -> None:
    if len(sessions) < 3:
        raise ValueError(f"sessions={len(sessions)}: need at least 3 sessions so train, val and test are non-empty")
    order = rng.permutation(len(sessions))
    n_val = max(1, round(fractions[1] * len(sessions)))
    n_test = max(1, round(fractions[2] * len(sessions)))
    for rank, idx in enumerate(order):
        sessions[idx].split = "val" if rank < n_val else "test" if rank < n_val + n_test else "train"


def neighbour_matrix(speaker_emotions: list[np.ndarray], threshold: float = NEIGHBOUR_THRESHOLD) -> np.ndarray:
    """Appropriate-reaction matrix over samples from their speakers' emotion (each (T, 25)).

    ``M[k, j] = 1`` when speaker j's clip-mean affect (valence, arousal, expression
    probabilities: columns 15..24) is within ``threshold`` of speaker k's, so listener j's real
    reaction also counts as appropriate for speaker k (B23 ``metric/FRC.py`` semantics).
    """
    summary = np.stack([e[:, 15:25].mean(axis=0) for e in speaker_emotions])
    dist = np.linalg.norm(summary[:, None] - summary[None], axis=-1)
    return (dist <= threshold).astype(np.uint8)


def _write_person_clip(split_root: Path, path: str, frames: np.ndarray, audio: np.ndarray,
                       emotion: np.ndarray, face_state: np.ndarray, video_format: str, sample_rate: int) -> None:
    video = split_root / "Video_files" / (path + (".mp4" if video_format == "mp4" else ""))
    write_video(video, frames, fps=25)
    write_wav(split_root / "Audio_files" / f"{path}.wav", audio, sample_rate)
    save_npy(split_root / "3D_FV_files" / f"{path}.npy", face_state.astype(np.float32))
    target = split_root / "Emotion" / f"{path}.csv"
    with atomic_path(target) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(EMOTION_COLUMNS)
        writer.writerows(np.round(emotion.astype(np.float64), 5).tolist())


def write_react_dataset(
    out: str | os.PathLike,
    sessions: int = 12,
    seed: int = 0,
    clips_per_session: int = 2,
    clip_frames: int = 751,
    image_size: int = 256,
    video_format: str = "mp4",
    sample_rate: int = 44100,
    recola_fraction: float = 0.1,
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    progress: bool = False,
) -> Path:
    """Simulate and write a REACT-layout dataset into ``out`` (which must not exist or be empty).

    The whole dataset is written into a temporary sibling folder and renamed at the end, so an
    interrupted run never leaves a partial dataset behind.
    """
    if video_format not in ("mp4", "png"):
        raise ValueError(f"video_format={video_format!r}: expected 'mp4' or 'png'")
    if clip_frames < 2:
        raise ValueError(f"clip_frames={clip_frames}: expected at least 2 frames")
    if clips_per_session < 1:
        raise ValueError(f"clips_per_session={clips_per_session}: expected at least 1")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out}: exists and is not empty; choose a new --out folder")
    rng = np.random.default_rng(seed)
    world = _sessions(rng, sessions, recola_fraction)
    _assign_splits(rng, world, split_fractions)
    renderer = FaceRenderer(image_size=image_size)
    moods = list(MOODS)
    rows: dict[str, list[tuple[str, str]]] = {s: [] for s in SPLITS}
    speaker_emotion: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {s: ([], []) for s in SPLITS}
    clip_log = []

    jobs = [(session, clip) for session in world for clip in range(1, clips_per_session + 1)]
    iterator: Iterator = iter(jobs)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(jobs, desc="make-data react", unit="clip")
    with atomic_path(out, is_dir=True) as tmp:
        for session, clip in iterator:
            mood = str(rng.choice(moods))
            people = session.people
            tracks = simulate_dyad_clip(rng, mood, (people[0].style, people[1].style), clip_frames)
            voices = []
            for track, person in zip(tracks, people):
                valence, arousal = (track.affect @ AFFECT_VALENCE_AROUSAL).T
                voices.append(synthesize_voice(rng, track.mouth_envelope, track.vowel, person.pitch_hz, sample_rate,
                                               valence=valence, arousal=arousal))
            paths = []
            for p, (person, track) in enumerate(zip(people, tracks)):
                path = f"{person.folder}/{clip}"
                emotion = emotion_vector(rng, track)
                frames = renderer.render_sequence(track.face_state, person.identity)
                audio = room_mix(voices[p], voices[1 - p], rng)
                _write_person_clip(tmp / session.split, path, frames, audio, emotion, track.face_state,
                                   video_format, sample_rate)
                speaker_emotion[session.split][p].append(emotion)
                paths.append(path)
            rows[session.split].append((paths[0], paths[1]))
            clip_log.append({"split": session.split, "paths": paths, "mood": mood,
                             "talking_fraction": [float(t.talking.mean()) for t in tracks]})
        for split in SPLITS:
            with open(tmp / f"{split}.csv", "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["", "speaker_path", "listener_path"])
                writer.writerows([i, s, lst] for i, (s, lst) in enumerate(rows[split]))
            # Mirrored order, as every REACT loader doubles the list: speakers = col1 + col2.
            col1, col2 = speaker_emotion[split]
            np.save(tmp / f"neighbour_emotion_{split}.npy", neighbour_matrix(col1 + col2))
        meta = {
            "generator": WORLD_VERSION,
            "settings": dict(sessions=sessions, seed=seed, clips_per_session=clips_per_session,
                             clip_frames=clip_frames, image_size=image_size, video_format=video_format,
                             sample_rate=sample_rate, recola_fraction=recola_fraction,
                             split_fractions=list(split_fractions)),
            "neighbour_threshold": NEIGHBOUR_THRESHOLD,
            "people": [{"folder": p.folder, "split": s.split, "identity": p.identity.to_dict(),
                        "style": p.style.to_dict(), "pitch_hz": p.pitch_hz} for s in world for p in s.people],
            "clips": clip_log,
        }
        (tmp / "facezoo_world.json").write_text(json.dumps(meta, indent=1))
    return out


def cached_react_dataset(cache_dir: str | os.PathLike | None = None, progress: bool = True, **settings) -> Path:
    """The embedded REACT world for ``settings`` (see :func:`write_react_dataset`), generated once
    under ``cache_dir`` (default ``$FACEZOO_HOME/data``); see :func:`~datamodules.synthetic.cache.cached_world`."""
    return cached_world("react-world", WORLD_VERSION, write_react_dataset, settings, cache_dir, progress)
