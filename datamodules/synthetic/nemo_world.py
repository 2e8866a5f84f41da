"""The embedded world in the UvA-NEMO Smile Database layout (CMM-Net's main dataset).

``write_nemo_dataset`` simulates people smiling, posed ("deliberate") and spontaneous, each in
several ways, renders them with :class:`~datamodules.synthetic.face_renderer.FaceRenderer` at
50 fps and writes what a UvA-NEMO user would recognise (notes C.1)::

    ROOT/videos/<SSS>_deliberate_smile_<k>.mp4     SSS = 3-digit subject code (not contiguous)
    ROOT/videos/<SSS>_spontaneous_smile_<k>.mp4    50 fps, start and end neutral
    ROOT/UvA-NEMO_Smile_Database_File_Details.txt  4 preamble lines, then
                                                   ``filename subject_code gender age label``
    ROOT/landmarks/<stem>.npy                      (T, 68, 2) float32 true iBUG landmarks (pixels)
    ROOT/face_state/<stem>.npy                     (T, 58) float32 true face state
    ROOT/facezoo_world.json                        settings, identities, every smile's style

The world's smile dynamics follow what separates the two classes in the literature
(Dibeklioglu et al. ECCV 2012, the paper's ref. [9]; Cohn & Schmidt 2004): posed smiles have a
faster, larger onset, a shorter apex and offset, more left/right asymmetry (amplitude and
timing) and little cheek raise; spontaneous smiles rise slowly and smoothly, are symmetric and
raise the cheeks (AU6, the Duchenne marker). Within each class a smile is open- or
closed-mouthed and the eyes stay open or close partly, so one class holds several visibly
different modes (CMM-Net Fig. 1, 6). Each video starts and ends neutral, as in UvA-NEMO.

``cached_nemo_dataset`` generates it once under ``$FACEZOO_HOME/data`` and reuses it.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from datamodules.features.face_state import BLENDSHAPE_INDEX, FACE_STATE_DIM, ROTATION, TRANSLATION
from datamodules.features.io import atomic_path, save_npy, write_video
from datamodules.features.rig import FaceRig
from datamodules.synthetic.appearance import Identity, sample_identity

# Shared with the REACT world: the cache root and the generate-once file lock.
from datamodules.synthetic.cache import cached_world
from datamodules.synthetic.face_renderer import FaceRenderer

WORLD_VERSION = "nemo-world-1"
FPS = 50  # UvA-NEMO: 50 fps (notes C.1)
LABELS = ("deliberate", "spontaneous")  # file-name words; 0 / 1 as the MeshSmileNet fold files
FILE_DETAILS = "UvA-NEMO_Smile_Database_File_Details.txt"
MOUTH_STYLES = ("closed", "open")
EYE_STYLES = ("open", "closing")

_B = BLENDSHAPE_INDEX


@dataclass(frozen=True)
class SmileStyle:
    """Everything that shapes one smile; written to ``facezoo_world.json`` as ground truth."""

    label: str  # "deliberate" or "spontaneous"
    mouth: str  # "closed" or "open"
    eyes: str  # "open" or "closing"
    lead_frames: int  # neutral frames before the onset
    onset_frames: int
    apex_frames: int
    offset_frames: int
    tail_frames: int  # neutral frames after the offset
    amplitude: float  # mouthSmile at apex, stronger side
    weak_side: float  # weaker side's amplitude as a fraction of the stronger one
    weak_side_lag: int  # frames the weaker side trails
    left_stronger: bool
    cheek_raise: float  # cheekSquint at apex as a fraction of the amplitude
    jaw_open: float  # jawOpen at apex (0 for closed-mouth smiles)
    eye_closure: float  # eyeBlink held at apex (0 for open eyes)
    overshoot: float  # fraction the onset overshoots the apex level (posed smiles snap)

    @property
    def frames(self) -> int:
        return self.lead_frames + self.onset_frames + self.apex_frames + self.offset_frames + self.tail_frames

    def to_dict(self) -> dict:
        return asdict(self)


def sample_smile_style(rng: np.random.Generator, label: str, fps: float = FPS) -> SmileStyle:
    """A random smile of class ``label`` (frame counts at ``fps``; UvA-NEMO's 50 by default,
    DISFA's 20 in :mod:`~datamodules.synthetic.disfa_world`: the durations in seconds are the same)."""
    if fps <= 0:
        raise ValueError(f"fps: expected > 0, got {fps}")
    if label not in LABELS:
        raise ValueError(f"label: expected one of {LABELS}, got {label!r}")
    posed = label == "deliberate"
    mouth = MOUTH_STYLES[int(rng.random() < (0.55 if posed else 0.45))]
    eyes = EYE_STYLES[int(rng.random() < (0.3 if posed else 0.5))]

    def seconds(lo: float, hi: float) -> int:
        return max(2, int(round(rng.uniform(lo, hi) * fps)))

    return SmileStyle(
        label=label,
        mouth=mouth,
        eyes=eyes,
        lead_frames=seconds(0.3, 0.8),
        # N2S lengths around the paper's T = 32 (Sec. 4.1): spontaneous 0.5-0.9 s, posed 0.24-0.5 s
        onset_frames=seconds(0.24, 0.5) if posed else seconds(0.5, 0.9),
        apex_frames=seconds(0.4, 1.0) if posed else seconds(0.7, 1.6),
        offset_frames=seconds(0.3, 0.6) if posed else seconds(0.6, 1.2),
        tail_frames=seconds(0.3, 0.6),
        amplitude=float(rng.uniform(0.75, 1.0) if posed else rng.uniform(0.5, 0.85)),
        weak_side=float(rng.uniform(0.6, 0.85) if posed else rng.uniform(0.93, 1.0)),
        weak_side_lag=int(round((rng.integers(2, 7) if posed else rng.integers(0, 2)) * fps / FPS)),
        left_stronger=bool(rng.random() < 0.5),
        cheek_raise=float(rng.uniform(0.0, 0.3) if posed else rng.uniform(0.6, 1.0)),
        jaw_open=float(rng.uniform(0.2, 0.4)) if mouth == "open" else 0.0,
        eye_closure=float(rng.uniform(0.45, 0.7)) if eyes == "closing" else 0.0,
        overshoot=float(rng.uniform(0.05, 0.15) if posed else 0.0),
    )


def _envelope(style: SmileStyle, lag: int = 0, onset_scale: float = 1.0, fps: float = FPS) -> np.ndarray:
    """0 -> 1 -> 0 activation over the video: raised-cosine onset (spontaneous: smooth; posed: a
    fast ramp with overshoot settling during the apex), plateau, raised-cosine offset."""
    n = style.frames
    out = np.zeros(n, dtype=np.float64)
    start = style.lead_frames + lag
    onset = max(2, int(round(style.onset_frames * onset_scale)))
    t = np.arange(onset) / onset
    rise = 0.5 - 0.5 * np.cos(np.pi * t)
    apex_start = start + onset
    apex_stop = style.lead_frames + style.onset_frames + style.apex_frames + lag
    out[start:min(apex_start, n)] = rise[: max(0, min(apex_start, n) - start)]
    if apex_stop > apex_start:
        span = np.arange(apex_stop - apex_start)
        # an overshoot decaying over ~10 frames (posed smiles "snap" into place)
        plateau = 1.0 + style.overshoot * np.exp(-span / (10.0 * fps / FPS))
        out[apex_start:min(apex_stop, n)] = plateau[: max(0, min(apex_stop, n) - apex_start)]
    fall_t = np.arange(style.offset_frames) / style.offset_frames
    fall = 0.5 + 0.5 * np.cos(np.pi * fall_t)
    stop = min(apex_stop + style.offset_frames, n)
    out[apex_stop:stop] = fall[: max(0, stop - apex_stop)]
    return out


def _blinks(rng: np.random.Generator, frames: int, fps: float = FPS) -> np.ndarray:
    """Blinks as a Poisson process (~17 / min), each 160-280 ms."""
    closure = np.zeros(frames)
    t = int(rng.exponential(fps * 60 / 17))
    while t < frames:
        length = max(2, int(round(rng.integers(8, 15) * fps / FPS)))
        span = np.arange(min(length, frames - t))
        closure[t + span] = np.sin(np.pi * (span + 0.5) / length)
        t += length + int(rng.exponential(fps * 60 / 17)) + 4
    return closure


def _slow_noise(rng: np.random.Generator, frames: int, amplitude: float, channels: int,
                fps: float = FPS) -> np.ndarray:
    """Smooth random drift (sum of a few low-frequency sinusoids), for head pose."""
    t = np.arange(frames) / fps
    out = np.zeros((frames, channels))
    for _ in range(3):
        freq = rng.uniform(0.1, 0.6, channels)
        phase = rng.uniform(0, 2 * np.pi, channels)
        out += np.sin(2 * np.pi * freq * t[:, None] + phase)
    return amplitude * out / 3.0


def simulate_smile(rng: np.random.Generator, style: SmileStyle, fps: float = FPS) -> np.ndarray:
    """Face states (T, 58) of one smile: neutral, onset, apex, offset, neutral (``style``'s
    frame counts are at ``fps``)."""
    n = style.frames
    face = np.zeros((n, FACE_STATE_DIM))
    strong = _envelope(style, fps=fps)
    weak = _envelope(style, lag=style.weak_side_lag, fps=fps) * style.weak_side
    left, right = (strong, weak) if style.left_stronger else (weak, strong)
    face[:, _B["mouthSmileLeft"]] = style.amplitude * left
    face[:, _B["mouthSmileRight"]] = style.amplitude * right
    # the cheek follows the lip corners a little later (slower onset)
    cheek = _envelope(style, lag=int(round(2 * fps / FPS)), onset_scale=1.3, fps=fps)
    cheek_left, cheek_right = (1.0, style.weak_side) if style.left_stronger else (style.weak_side, 1.0)
    face[:, _B["cheekSquintLeft"]] = style.cheek_raise * style.amplitude * cheek_left * cheek
    face[:, _B["cheekSquintRight"]] = style.cheek_raise * style.amplitude * cheek_right * cheek
    both = (left + right) / 2
    if style.jaw_open > 0:
        face[:, _B["jawOpen"]] = style.jaw_open * both
        face[:, _B["mouthUpperUpLeft"]] = face[:, _B["mouthUpperUpRight"]] = 0.5 * style.jaw_open * both
        face[:, _B["mouthLowerDownLeft"]] = face[:, _B["mouthLowerDownRight"]] = 0.6 * style.jaw_open * both
    else:
        # a closed smile stretches and presses the lips a little
        face[:, _B["mouthPressLeft"]] = face[:, _B["mouthPressRight"]] = 0.25 * both
    # Duchenne narrowing of the eyes comes with the cheek raise
    squint = 0.5 * style.cheek_raise * cheek
    face[:, _B["eyeSquintLeft"]] = face[:, _B["eyeSquintRight"]] = squint
    blink = _blinks(rng, n, fps)
    held = style.eye_closure * _envelope(style, lag=int(round(3 * fps / FPS)), fps=fps)
    closure = np.clip(np.maximum(blink, held), 0.0, 1.0)
    face[:, _B["eyeBlinkLeft"]] = face[:, _B["eyeBlinkRight"]] = closure
    # head: slow drift, plus a small chin-up / tilt during spontaneous smiles
    rotation = _slow_noise(rng, n, 0.025, 3, fps)
    if style.label == "spontaneous":
        rotation[:, 0] -= 0.04 * rng.uniform(0.5, 1.0) * both
        rotation[:, 2] += 0.03 * rng.uniform(-1.0, 1.0) * both
    face[:, ROTATION] = rotation
    face[:, TRANSLATION] = _slow_noise(rng, n, 0.01, 3, fps) * np.array([1.0, 1.0, 2.0])
    return np.clip(face, -1.0, 1.0).astype(np.float32)


@dataclass
class NemoVideo:
    stem: str
    subject: int
    label: str
    style: SmileStyle


def _subject_codes(rng: np.random.Generator, subjects: int) -> np.ndarray:
    """Sorted, non-contiguous 3-digit codes (UvA-NEMO's go up to about 564 for 400 people)."""
    pool = max(subjects + 1, int(subjects * 1.4) + 1)
    if pool > 999:
        raise ValueError(f"subjects={subjects}: UvA-NEMO codes have 3 digits, at most 998 subjects")
    return np.sort(rng.choice(np.arange(1, pool + 1), size=subjects, replace=False))


def _labels_for(rng: np.random.Generator, count: int) -> list[str]:
    """Per-subject class mix: both classes as soon as there are two videos, the rest at random."""
    labels = [LABELS[int(rng.random() < 0.5)]] if count == 1 else list(LABELS)
    labels += [LABELS[int(rng.random() < 0.5)] for _ in range(count - len(labels))]
    return sorted(labels)


def write_nemo_dataset(
    out: str | os.PathLike,
    subjects: int = 40,
    videos_per_subject: int = 3,
    seed: int = 0,
    image_size: int = 256,
    progress: bool = False,
) -> Path:
    """Simulate and write a UvA-NEMO-layout dataset into ``out`` (must not exist or be empty).

    Written into a temporary sibling folder and renamed at the end, so an interrupted run leaves
    no partial dataset.
    """
    if subjects < 1:
        raise ValueError(f"subjects={subjects}: expected at least 1")
    if videos_per_subject < 1:
        raise ValueError(f"videos_per_subject={videos_per_subject}: expected at least 1")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out}: exists and is not empty; choose a new --out folder")
    rng = np.random.default_rng(seed)
    renderer = FaceRenderer(image_size=image_size)
    codes = _subject_codes(rng, subjects)
    people: list[dict] = []
    videos: list[tuple[NemoVideo, Identity]] = []
    for code in codes:
        identity = sample_identity(rng)
        gender = "male" if identity.beard != "none" or rng.random() < 0.4 else "female"
        age = int(rng.integers(8, 77))  # UvA-NEMO: ages 8-76
        people.append({"subject": int(code), "gender": gender, "age": age, "identity": identity.to_dict()})
        counts = dict.fromkeys(LABELS, 0)
        for label in _labels_for(rng, videos_per_subject):
            counts[label] += 1
            stem = f"{code:03d}_{label}_smile_{counts[label]}"
            videos.append((NemoVideo(stem, int(code), label, sample_smile_style(rng, label)), identity))
    iterator: Iterator = iter(videos)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(videos, desc="make-data nemo", unit="video")
    person = {p["subject"]: p for p in people}
    with atomic_path(out, is_dir=True) as tmp:
        for video, identity in iterator:
            face_state = simulate_smile(rng, video.style)
            landmarks = FaceRig.landmarks_2d(face_state.astype(np.float64), identity.shape_coefficients.astype(np.float64),
                                             image_size=image_size)
            write_video(tmp / "videos" / f"{video.stem}.mp4", renderer.render_sequence(face_state, identity), fps=FPS)
            save_npy(tmp / "landmarks" / f"{video.stem}.npy", landmarks.astype(np.float32))
            save_npy(tmp / "face_state" / f"{video.stem}.npy", face_state)
        lines = [
            "UvA-NEMO Smile Database: file details",
            f"(embedded facezoo world {WORLD_VERSION}, seed {seed}; same columns as the published table)",
            f"{len(videos)} videos, {subjects} subjects, {FPS} fps",
            "",
            "filename\tsubject_code\tgender\tage\tlabel",
        ]
        for video, _ in videos:
            p = person[video.subject]
            lines.append(f"{video.stem}.mp4\t{video.subject}\t{p['gender']}\t{p['age']}\t{video.label}")
        (tmp / FILE_DETAILS).write_text("\n".join(lines) + "\n")
        meta = {
            "generator": WORLD_VERSION,
            "settings": dict(subjects=subjects, videos_per_subject=videos_per_subject, seed=seed,
                             image_size=image_size),
            "fps": FPS,
            "people": people,
            "videos": [{"stem": v.stem, "subject": v.subject, "label": v.label, "style": v.style.to_dict()}
                       for v, _ in videos],
        }
        (tmp / "facezoo_world.json").write_text(json.dumps(meta, indent=1))
    return out


def cached_nemo_dataset(cache_dir: str | os.PathLike | None = None, progress: bool = True, **settings) -> Path:
    """The embedded UvA-NEMO world for ``settings`` (see :func:`write_nemo_dataset`), generated
    once under ``cache_dir`` (default ``$FACEZOO_HOME/data``), behind a file lock."""
    return cached_world("nemo-world", WORLD_VERSION, write_nemo_dataset, settings, cache_dir, progress)


# ---------------------------------------------------------------------------------------------
# facezoo make-data nemo


def configure_layout_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Write posed and spontaneous smiles in the UvA-NEMO Smile Database layout: "
                          "videos/<SSS>_{deliberate,spontaneous}_smile_<k>.mp4 at 50 fps, the File_Details "
                          "table, and the true landmarks and face states.")
    parser.add_argument("--out", required=True, type=Path, help="new folder to write (must not exist or be empty)")
    parser.add_argument("--subjects", type=int, default=40, help="number of people (default 40; 10 folds need >= 10)")
    parser.add_argument("--videos-per-subject", type=int, default=3, help="smile videos per person (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--image-size", type=int, default=256, help="video frame size in pixels (default 256)")


def run_layout(args: argparse.Namespace) -> int:
    for name in ("subjects", "videos_per_subject", "image_size"):
        if getattr(args, name) < 1:
            raise SystemExit(f"make-data nemo: --{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    root = write_nemo_dataset(args.out, subjects=args.subjects, videos_per_subject=args.videos_per_subject,
                              seed=args.seed, image_size=args.image_size, progress=True)
    print(f"wrote a UvA-NEMO-layout dataset to {root}")
    print(f"train with: lightning fit --config zoo/demo/cmmnet.yaml --data.init_args.root {root}")
    return 0
