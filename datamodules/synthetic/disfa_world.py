"""The embedded world in the DISFA + DISFA+ layout (CMM-Net's paired spontaneous/posed data).

``write_disfa_dataset`` reuses the UvA-NEMO world's smile simulation
(:mod:`~datamodules.synthetic.nemo_world`: posed smiles fast, large, asymmetric, little cheek
raise; spontaneous slow, symmetric, Duchenne) and writes what :mod:`datamodules.disfa` reads::

    ROOT/DISFA/Videos_LeftCamera/LeftVideoSNxxx_comp.avi   one long session per person (20 fps):
                                                          spontaneous smiles among other
                                                          expressions (surprise, frown) and rest
    ROOT/DISFA/ActionUnit_Labels/SNxxx/SNxxx_au<N>.txt     "frameIdx,intensity", 1-based, integer
                                                          0..5, the 12 DISFA AUs; one line more
                                                          than the video has frames, as DISFA's
                                                          4845 labels for 4844 frames
    ROOT/DISFA/landmarks/LeftVideoSNxxx_comp.npy          (T, 68, 2) true iBUG landmarks (pixels)
    ROOT/DISFA+/Labels/SNxxx/SNxxx/<Trial>/AU<N>.txt       "000.jpg <intensity>" per frame
    ROOT/DISFA+/Images/SNxxx/<Trial>/000.jpg ...           one posed expression per trial
    ROOT/DISFA+/landmarks/SNxxx/<Trial>.npy               (T, 68, 2) true landmarks
    ROOT/face_state/...                                   (T, 58) true face states, same names
    ROOT/facezoo_world.json                               settings, identities, every episode

Labels are the world's own face state through the fixed blendshape rules
(:func:`datamodules.features.au_rules.au_from_blendshapes`), rounded to DISFA's integer levels.
DISFA+ trials are ``A_Smile_TrailNo_<k>`` (posed smiles held 1.5-2.5 s at the apex) and ``Z_SupriseText_TrailNo_1`` (a
posed surprise, which the reader must skip); "Trail" is DISFA+'s own spelling (notes C.3).
Session head pose is one continuous slow drift (the NEMO world's per-smile drift would jump
between episodes). ``cached_disfa_dataset`` generates it once under ``$FACEZOO_HOME/data``.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from datamodules.features.au_rules import au_from_blendshapes
from datamodules.features.face_state import (
    BLENDSHAPE_INDEX,
    EXPRESSION_DIM,
    FACE_STATE_DIM,
    ROTATION,
    TRANSLATION,
)
from datamodules.features.io import atomic_path, save_npy, write_video
from datamodules.features.rig import FaceRig
from datamodules.synthetic.appearance import Identity, sample_identity
from datamodules.synthetic.cache import cached_world
from datamodules.synthetic.face_renderer import FaceRenderer
from datamodules.synthetic.nemo_world import (
    _blinks,
    _slow_noise,
    sample_smile_style,
    simulate_smile,
)

__all__ = ["WORLD_VERSION", "DISFA_AUS", "simulate_session", "simulate_expression", "write_disfa_dataset",
           "cached_disfa_dataset", "configure_layout_parser", "run_layout"]

WORLD_VERSION = "disfa-world-1"
DISFA_AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)  # notes C.2 (same as datamodules.disfa)
DISFA_FPS = 20.0
POSED_TRIAL = "A_Smile_TrailNo_{k}"
OTHER_TRIAL = "Z_SupriseText_TrailNo_1"
_B = BLENDSHAPE_INDEX
_EXPRESSIONS = {  # non-smile episodes: blendshape -> weight at apex
    "surprise": {"browInnerUp": 0.8, "browOuterUpLeft": 0.7, "browOuterUpRight": 0.7, "eyeWideLeft": 0.6,
                 "eyeWideRight": 0.6, "jawOpen": 0.35},
    "frown": {"browDownLeft": 0.7, "browDownRight": 0.7, "mouthFrownLeft": 0.5, "mouthFrownRight": 0.5,
              "mouthShrugLower": 0.3},
}


def simulate_expression(rng: np.random.Generator, kind: str, fps: float) -> np.ndarray:
    """Face states (T, 58) of one non-smile expression: rest, rise, hold, fall, rest."""
    if kind not in _EXPRESSIONS:
        raise ValueError(f"kind: expected one of {sorted(_EXPRESSIONS)}, got {kind!r}")
    phases = [max(2, int(round(rng.uniform(lo, hi) * fps))) for lo, hi in ((0.2, 0.5), (0.3, 0.6), (0.5, 1.2),
                                                                           (0.3, 0.6), (0.2, 0.5))]
    rise = 0.5 - 0.5 * np.cos(np.pi * np.arange(phases[1]) / phases[1])
    envelope = np.concatenate([np.zeros(phases[0]), rise, np.ones(phases[2]), rise[::-1], np.zeros(phases[4])])
    face = np.zeros((len(envelope), FACE_STATE_DIM))
    strength = rng.uniform(0.7, 1.0)
    for name, weight in _EXPRESSIONS[kind].items():
        face[:, _B[name]] = strength * weight * envelope
    return face.astype(np.float32)


def simulate_session(rng: np.random.Generator, smiles: int, others: int, fps: float = DISFA_FPS) -> tuple[np.ndarray, list[dict]]:
    """A DISFA-style session: ``smiles`` spontaneous smiles and ``others`` other expressions in a
    random order, separated by 1-3 s of rest; returns face states (T, 58) and the episodes."""
    kinds = ["smile"] * smiles + [str(k) for k in rng.choice(sorted(_EXPRESSIONS), size=others)]
    rng.shuffle(kinds)
    parts, episodes, t = [], [], 0
    for kind in kinds:
        rest = np.zeros((int(round(rng.uniform(1.0, 3.0) * fps)), FACE_STATE_DIM), dtype=np.float32)
        parts.append(rest)
        t += len(rest)
        if kind == "smile":
            style = sample_smile_style(rng, "spontaneous", fps)
            face = simulate_smile(rng, style, fps)
            episode = {"kind": kind, "start": t, "frames": len(face), "style": style.to_dict()}
        else:
            face = simulate_expression(rng, kind, fps)
            episode = {"kind": kind, "start": t, "frames": len(face)}
        parts.append(face)
        episodes.append(episode)
        t += len(face)
    parts.append(np.zeros((int(round(fps)), FACE_STATE_DIM), dtype=np.float32))
    face = np.concatenate(parts)
    n = len(face)
    # one continuous head drift and blink process over the session
    face[:, ROTATION] = _slow_noise(rng, n, 0.025, 3, fps)
    face[:, TRANSLATION] = _slow_noise(rng, n, 0.01, 3, fps) * np.array([1.0, 1.0, 2.0])
    blink = _blinks(rng, n, fps)
    for side in ("eyeBlinkLeft", "eyeBlinkRight"):
        face[:, _B[side]] = np.maximum(face[:, _B[side]], blink)
    return np.clip(face, -1.0, 1.0).astype(np.float32), episodes


def au_labels(face_state: np.ndarray) -> np.ndarray:
    """DISFA-style integer intensities (T, 12) of the world's face state (0..5)."""
    au = au_from_blendshapes(face_state[:, :EXPRESSION_DIM].astype(np.float64), [f"AU{n}" for n in DISFA_AUS])
    return np.clip(np.rint(au), 0, 5).astype(np.int64)


def _write_text(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def _render(renderer: FaceRenderer, face: np.ndarray, identity: Identity, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    marks = FaceRig.landmarks_2d(face.astype(np.float64), identity.shape_coefficients.astype(np.float64),
                                 image_size=image_size)
    return renderer.render_sequence(face, identity), marks.astype(np.float32)


def write_disfa_dataset(
    out: str | os.PathLike,
    subjects: int = 12,
    plus_subjects: int = 9,
    smiles_per_session: int = 4,
    other_expressions: int = 2,
    posed_trials: int = 3,
    seed: int = 0,
    image_size: int = 128,
    disfa_fps: float = DISFA_FPS,
    disfa_plus_fps: float = DISFA_FPS,
    progress: bool = False,
) -> Path:
    """Simulate and write a DISFA + DISFA+ layout dataset into ``out`` (new or empty folder),
    through a temporary sibling folder renamed at the end (no partial dataset on interruption).

    ``subjects`` DISFA people (codes SN001..SN032 as DISFA's, not contiguous, when <= 32);
    the first ``plus_subjects`` of them (shuffled) also have DISFA+ trials (CMM-Net: nine).
    """
    for name, value in dict(subjects=subjects, smiles_per_session=smiles_per_session, posed_trials=posed_trials,
                            image_size=image_size).items():
        if value < 1:
            raise ValueError(f"{name}={value}: expected at least 1")
    if not 0 <= plus_subjects <= subjects:
        raise ValueError(f"plus_subjects={plus_subjects}: expected 0..subjects={subjects}")
    if other_expressions < 0:
        raise ValueError(f"other_expressions={other_expressions}: expected >= 0")
    if disfa_fps <= 0 or disfa_plus_fps <= 0:
        raise ValueError(f"disfa_fps, disfa_plus_fps: expected > 0, got {disfa_fps}, {disfa_plus_fps}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out}: exists and is not empty; choose a new --out folder")
    rng = np.random.default_rng(seed)
    renderer = FaceRenderer(image_size=image_size)
    pool = max(32, subjects)
    if pool > 999:
        raise ValueError(f"subjects={subjects}: SNxxx codes have 3 digits")
    codes = np.sort(rng.choice(np.arange(1, pool + 1), size=subjects, replace=False))
    plus = set(rng.permutation(codes)[:plus_subjects].tolist())
    people, sessions, trials = [], [], []
    for code in codes:
        identity = sample_identity(rng)
        people.append({"subject": int(code), "identity": identity.to_dict(), "disfa_plus": int(code) in plus})
        sessions.append((int(code), identity))
        if int(code) in plus:
            for k in range(1, posed_trials + 1):
                trials.append((int(code), identity, POSED_TRIAL.format(k=k)))
            trials.append((int(code), identity, OTHER_TRIAL))
    jobs = len(sessions) + len(trials)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=jobs, desc="make-data disfa", unit="video")
    meta_sessions, meta_trials = [], []
    with atomic_path(out, is_dir=True) as tmp:
        disfa, disfa_plus = tmp / "DISFA", tmp / "DISFA+"
        for code, identity in sessions:
            sn = f"SN{code:03d}"
            stem = f"LeftVideo{sn}_comp"
            face, episodes = simulate_session(rng, smiles_per_session, other_expressions, disfa_fps)
            frames, marks = _render(renderer, face, identity, image_size)
            write_video(disfa / "Videos_LeftCamera" / f"{stem}.avi", frames, fps=disfa_fps)
            save_npy(disfa / "landmarks" / f"{stem}.npy", marks)
            save_npy(tmp / "face_state" / "DISFA" / f"{stem}.npy", face)
            labels = au_labels(face)
            labels = np.concatenate([labels, labels[-1:]])  # one label line more than frames, as DISFA
            for column, au in enumerate(DISFA_AUS):
                _write_text(disfa / "ActionUnit_Labels" / sn / f"{sn}_au{au}.txt",
                            [f"{i},{v}" for i, v in enumerate(labels[:, column].tolist(), start=1)])
            meta_sessions.append({"subject": code, "video": stem, "frames": len(face), "episodes": episodes})
            if bar is not None:
                bar.update()
        for code, identity, trial in trials:
            sn = f"SN{code:03d}"
            if trial == OTHER_TRIAL:
                face, style = simulate_expression(rng, "surprise", disfa_plus_fps), None
            else:
                # DISFA+ participants pose and hold the expression: a longer apex than UvA-NEMO's
                style = replace(sample_smile_style(rng, "deliberate", disfa_plus_fps),
                                apex_frames=int(round(rng.uniform(1.5, 2.5) * disfa_plus_fps)))
                face = simulate_smile(rng, style, disfa_plus_fps)
            frames, marks = _render(renderer, face, identity, image_size)
            names = [f"{i:03d}.jpg" for i in range(len(face))]
            folder = disfa_plus / "Images" / sn / trial
            folder.mkdir(parents=True, exist_ok=True)
            for name, frame in zip(names, frames):
                if not cv2.imwrite(str(folder / name), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                                   [cv2.IMWRITE_JPEG_QUALITY, 95]):
                    raise RuntimeError(f"{folder / name}: OpenCV could not write the frame")
            save_npy(disfa_plus / "landmarks" / sn / f"{trial}.npy", marks)
            save_npy(tmp / "face_state" / "DISFA+" / sn / f"{trial}.npy", face)
            labels = au_labels(face)
            for column, au in enumerate(DISFA_AUS):
                _write_text(disfa_plus / "Labels" / sn / sn / trial / f"AU{au}.txt",
                            [f"{n} {v}" for n, v in zip(names, labels[:, column].tolist())])
            meta_trials.append({"subject": code, "trial": trial, "frames": len(face),
                                "style": style.to_dict() if style is not None else {"kind": "surprise"}})
            if bar is not None:
                bar.update()
        meta = {
            "generator": WORLD_VERSION,
            "settings": dict(subjects=subjects, plus_subjects=plus_subjects, smiles_per_session=smiles_per_session,
                             other_expressions=other_expressions, posed_trials=posed_trials, seed=seed,
                             image_size=image_size, disfa_fps=disfa_fps, disfa_plus_fps=disfa_plus_fps),
            "people": people,
            "disfa_sessions": meta_sessions,
            "disfa_plus_trials": meta_trials,
        }
        (tmp / "facezoo_world.json").write_text(json.dumps(meta, indent=1))
    if bar is not None:
        bar.close()
    return out


def cached_disfa_dataset(cache_dir: str | os.PathLike | None = None, progress: bool = True, **settings) -> Path:
    """The embedded DISFA/DISFA+ world for ``settings`` (see :func:`write_disfa_dataset`),
    generated once under ``cache_dir`` (default ``$FACEZOO_HOME/data``), behind a file lock."""
    return cached_world("disfa-world", WORLD_VERSION, write_disfa_dataset, settings, cache_dir, progress)


# ---------------------------------------------------------------------------------------------
# facezoo make-data disfa


def configure_layout_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Write spontaneous smiles in the DISFA layout (long 20 fps sessions, per-AU label files) "
                          "and posed smiles of the same people in the DISFA+ layout (per-trial labels and frames), "
                          "with the true landmarks and face states.")
    parser.add_argument("--out", required=True, type=Path, help="new folder to write (must not exist or be empty)")
    parser.add_argument("--subjects", type=int, default=12, help="DISFA people (default 12)")
    parser.add_argument("--plus-subjects", type=int, default=9, help="of them, people also in DISFA+ (default 9)")
    parser.add_argument("--smiles-per-session", type=int, default=4, help="spontaneous smiles per DISFA video (default 4)")
    parser.add_argument("--other-expressions", type=int, default=2, help="non-smile episodes per DISFA video (default 2)")
    parser.add_argument("--posed-trials", type=int, default=3, help="posed smile trials per DISFA+ person (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--image-size", type=int, default=128, help="frame size in pixels (default 128)")
    parser.add_argument("--disfa-fps", type=float, default=DISFA_FPS, help="DISFA frame rate (default 20)")
    parser.add_argument("--disfa-plus-fps", type=float, default=DISFA_FPS, help="DISFA+ frame rate (default 20)")


def run_layout(args: argparse.Namespace) -> int:
    for name in ("subjects", "smiles_per_session", "posed_trials", "image_size"):
        if getattr(args, name) < 1:
            raise SystemExit(f"make-data disfa: --{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if not 0 <= args.plus_subjects <= args.subjects:
        raise SystemExit(f"make-data disfa: --plus-subjects must be in 0..--subjects, got {args.plus_subjects}")
    root = write_disfa_dataset(args.out, subjects=args.subjects, plus_subjects=args.plus_subjects,
                               smiles_per_session=args.smiles_per_session, other_expressions=args.other_expressions,
                               posed_trials=args.posed_trials, seed=args.seed, image_size=args.image_size,
                               disfa_fps=args.disfa_fps, disfa_plus_fps=args.disfa_plus_fps, progress=True)
    print(f"wrote a DISFA + DISFA+ layout dataset to {root}")
    print(f"train with: lightning fit --config zoo/demo/cmmnet_disfa.yaml --data.init_args.root {root} "
          f"--data.init_args.disfa_plus_fps {args.disfa_plus_fps}")
    return 0
