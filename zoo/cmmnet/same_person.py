"""What distinct smiles *of one person and one class* look like: the scale for CMM-Net's mode diversity.

The K modes all start from one neutral face and one label, so their diversity should be judged
against smiles that share the person and the class and differ only in how the smile is made.
Comparing with *different* real people (``diversity_*_real`` in :mod:`zoo.cmmnet.evaluate`) mixes
face shape into the figure.

* Embedded UvA-NEMO world (:mod:`datamodules.synthetic.nemo_world`, whose
  ``facezoo_world.json`` keeps each video's :class:`~datamodules.synthetic.nemo_world.SmileStyle`
  and each person's identity): every test smile is re-simulated in all the world's variants
  (open / closed mouth x eyes open / closing, :data:`~datamodules.synthetic.nemo_world.MOUTH_STYLES`,
  :data:`~datamodules.synthetic.nemo_world.EYE_STYLES`) with the same timing, amplitude, asymmetry,
  cheek raise, blinks and head drift (one seed for all variants), rendered with the world's own
  renderer, and cut and eye-aligned exactly as the DataModule did (the same N2S frame indices).
* Real data: the test sequences of the same subject and class, where a subject has several
  (:func:`same_subject_groups`).
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["WORLD_FILE", "smile_variants", "variant_styles", "world_variant_sequences", "same_subject_groups"]

WORLD_FILE = "facezoo_world.json"


def variant_styles() -> list[tuple[str, str]]:
    """The (mouth, eyes) style of each world variant, in the order :func:`smile_variants` and
    :func:`world_variant_sequences` give them."""
    from datamodules.synthetic.nemo_world import EYE_STYLES, MOUTH_STYLES

    return [(m, e) for m in MOUTH_STYLES for e in EYE_STYLES]


def smile_variants(style: Any, seed: int = 0) -> list[Any]:
    """The world's smile variants of ``style`` (a :class:`~datamodules.synthetic.nemo_world.SmileStyle`):
    one per (mouth, eyes) pair, everything else kept. A variant's ``jaw_open`` / ``eye_closure``
    is the original's where mouth / eyes agree, else the value of a smile drawn by the world's
    own :func:`~datamodules.synthetic.nemo_world.sample_smile_style` (same class, seeded), so the
    reference uses the world's ranges without restating them."""
    from datamodules.synthetic.nemo_world import EYE_STYLES, MOUTH_STYLES, sample_smile_style

    if style.mouth not in MOUTH_STYLES or style.eyes not in EYE_STYLES:
        raise ValueError(f"style: mouth {style.mouth!r} / eyes {style.eyes!r} are not the world's "
                         f"{MOUTH_STYLES} / {EYE_STYLES}")
    rng = np.random.default_rng(seed)
    jaw = {style.mouth: style.jaw_open}
    closure = {style.eyes: style.eye_closure}
    for _ in range(1000):  # each draw picks mouth / eyes at random: all four turn up within a few draws
        if len(jaw) == len(MOUTH_STYLES) and len(closure) == len(EYE_STYLES):
            break
        drawn = sample_smile_style(rng, style.label)
        jaw.setdefault(drawn.mouth, drawn.jaw_open)
        closure.setdefault(drawn.eyes, drawn.eye_closure)
    else:  # pragma: no cover - would need a world that never draws a variant
        raise ValueError(f"smile_variants: the world's sampler never drew some of {MOUTH_STYLES} x {EYE_STYLES}")
    return [dataclasses.replace(style, mouth=m, eyes=e, jaw_open=float(jaw[m]), eye_closure=float(closure[e]))
            for m, e in variant_styles()]


def _world_meta(root: Path) -> dict | None:
    path = root / WORLD_FILE
    if not path.is_file():
        return None
    meta = json.loads(path.read_text())
    if not str(meta.get("generator", "")).startswith("nemo-world"):
        return None
    return meta


def world_variant_sequences(root: str | Path, stems: list[str], segments: list[np.ndarray],
                            image_size: int) -> dict[str, Tensor] | None:
    """Re-simulated variants of the embedded NEMO world's videos ``stems`` (module docstring).

    ``segments``: each video's N2S source frame indices (the DataModule's cached ``indices``).
    Returns ``video`` (N, V, T, 3, S, S) in [-1, 1] and ``landmark_images`` (N, V, T, 1, S, S) in
    {0, 1}, V = 4 variants; ``None`` when ``root`` holds no NEMO-world metadata (real data).
    Raises ValueError when the metadata lacks a stem (a different world than the cache).
    """
    from datamodules.features.rig import FaceRig
    from datamodules.smile import align_sequence
    from datamodules.synthetic.appearance import Identity
    from datamodules.synthetic.face_renderer import FaceRenderer
    from datamodules.synthetic.nemo_world import SmileStyle, simulate_smile

    root = Path(root)
    meta = _world_meta(root)
    if meta is None:
        return None
    if len(stems) != len(segments):
        raise ValueError(f"stems and segments: {len(stems)} vs {len(segments)} entries")
    videos = {v["stem"]: v for v in meta["videos"]}
    people = {p["subject"]: p for p in meta["people"]}
    missing = [s for s in stems if s not in videos]
    if missing:
        raise ValueError(f"{root / WORLD_FILE}: no style for videos {missing[:3]}; the metadata belongs to another world")
    world_size, fps = int(meta["settings"]["image_size"]), float(meta["fps"])
    renderer = FaceRenderer(image_size=world_size)
    frames_out, marks_out = [], []
    for stem, indices in zip(stems, segments):
        video = videos[stem]
        style = SmileStyle(**video["style"])
        identity = Identity.from_dict(people[video["subject"]]["identity"])
        seed = zlib.crc32(stem.encode())  # one seed per video, shared by its variants: same blinks and head drift
        indices = np.asarray(indices, dtype=np.int64)
        per_variant_frames, per_variant_marks = [], []
        for variant in smile_variants(style, seed):
            face_state = simulate_smile(np.random.default_rng(seed), variant, fps)
            landmarks = FaceRig.landmarks_2d(face_state.astype(np.float64), identity.shape_coefficients.astype(np.float64),
                                             image_size=world_size)
            wanted = np.unique(indices)
            rendered = renderer.render_sequence(face_state[wanted], identity)
            aligned = align_sequence(dict(zip(wanted.tolist(), rendered)), landmarks, indices, image_size)
            per_variant_frames.append(aligned["frames"])
            per_variant_marks.append(aligned["landmark_images"])
        frames_out.append(np.stack(per_variant_frames))
        marks_out.append(np.stack(per_variant_marks))
    video = torch.from_numpy(np.stack(frames_out)).float().div(127.5).sub(1).permute(0, 1, 2, 5, 3, 4)
    marks = torch.from_numpy(np.stack(marks_out).astype(np.float32))[:, :, :, None]
    return {"video": video.contiguous(), "landmark_images": marks}


def same_subject_groups(subjects: Tensor, labels: Tensor) -> list[list[int]]:
    """Indices of the sequences sharing a (subject, class), for every pair with at least two."""
    if subjects.shape != labels.shape or subjects.ndim != 1:
        raise ValueError(f"subjects, labels: expected two (N,) tensors, got {tuple(subjects.shape)}, {tuple(labels.shape)}")
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, (s, c) in enumerate(zip(subjects.tolist(), labels.tolist())):
        groups[(int(s), int(c))].append(i)
    return [g for g in groups.values() if len(g) > 1]
