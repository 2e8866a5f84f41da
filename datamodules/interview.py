"""Dyadic interview DataModule (DyadGAN / Interactive GAN, arXiv 1801.09092).

Reads the interview layout (``docs/dyadgan.md``; written by ``facezoo make-data interview``):
``ROOT/sessions.csv`` and per session ``interviewee.mp4``, ``interviewer.mp4``,
``interviewee_affect.csv`` and the optional landmark / face-state npy files.

Preprocessing (paper Sec. 3.2, 4.3), computed once per session and cached on disk:

* **landmarks**: 68 iBUG points per interviewer frame from ``interviewer_landmarks.npy`` (the
  world's exact ones on embedded data; dlib/OpenFace/MediaPipe-mapped ones on real data);
* **rough alignment**: one square crop per session (its median face centre and width), so head
  motion within a session stays visible; the crop reproduces the rig's framing at
  ``crop_scale=1``; frames are resized to ``image_size`` and masked with the oval of
  :func:`datamodules.features.drawing.oval_mask` (outside = black), as the paper masks its pairs;
* **sketches**: 1-px polylines of the aligned landmarks inside the same oval (``drawing.sketch``);
* **shape parameters**: a 2-D point distribution model (:mod:`datamodules.features.shape_model`)
  fitted on the training split's interviewer landmarks, saved next to the cache (or read from
  ``shape_model``), standardised per parameter;
* **affect**: the interviewee's 8-d likelihoods from the csv; without a csv, from blendshapes
  (``interviewee_face_state.npy``) by :func:`affect_from_blendshapes`, an EMFACS-rule
  approximation of the commercial FACET SDK the paper used.

A sample covers ``history + horizon`` consecutive frames starting at ``start``; with
``t = start + history`` the interviewer frame to generate (the paper's 100 preceding interviewee
frames -> one interviewer frame):

- ``affect`` float32 (H+F, 8): interviewee affect (paper class order), frames start..t+F-1;
- ``shape`` float32 (H+F, P): interviewer standardised shape parameters, same frames;
- ``target_shape`` float32 (F, P): ``shape[H:]`` (the non-overlapping C-LSTM target);
- ``sketch`` float32 (1, S, S) and ``face`` float32 (3, S, S) in [-1, 1]: interviewer frame t;
- ``index``, ``start`` long.

Training items are ``clips_per_session`` random windows per training session per epoch, drawn by
a :class:`~datamodules.resumable.CropSampler` (resumable mid-epoch); val/test use
``eval_clips_per_session`` evenly spaced windows per session.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.features.drawing import oval_mask, sketch
from datamodules.features.face_state import (
    AFFECT_CLASSES,
    BLENDSHAPE_INDEX,
    EXPRESSION_DIM,
    NUM_LANDMARKS,
)
from datamodules.features.io import VIDEO_SUFFIXES, read_video, save_npy
from datamodules.features.shape_model import PointDistributionModel
from datamodules.home import dataset_root, facezoo_home
from datamodules.resumable import SplitLoaders, training_loader

SPLITS = ("train", "val", "test")
CACHE_VERSION = 1
LENGTH_TOLERANCE = 2  # frames by which a session's videos / csv / npy files may disagree (then cut to the shortest)
NUM_AFFECTS = len(AFFECT_CLASSES)
# The rig's framing (FaceRig mean face, zero pose): landmark centroid at (0.5, 0.530) of the image
# and jaw width (points 0-16) 0.391 of the side. The session crop puts faces in the same place.
RIG_CENTROID = (0.5, 0.5302)
RIG_JAW_WIDTH = 0.3913

# EMFACS prototypes (Friesen & Ekman 1983) written in MediaPipe blendshapes: joy AU6+12, anger
# AU4+5+7+23, surprise AU1+2+5+26, fear AU1+2+4+5+20, disgust AU9+10, sadness AU1+4+15.
# Contempt (unilateral AU12+14) is scored from the left/right asymmetry instead.
_PROTOTYPES: dict[str, dict[str, float]] = {
    "joy": {"mouthSmileLeft": 1.0, "mouthSmileRight": 1.0, "cheekSquintLeft": 0.6, "cheekSquintRight": 0.6},
    "anger": {"browDownLeft": 1.0, "browDownRight": 1.0, "eyeSquintLeft": 0.5, "eyeSquintRight": 0.5,
              "eyeWideLeft": 0.25, "eyeWideRight": 0.25, "mouthPressLeft": 0.7, "mouthPressRight": 0.7},
    "surprise": {"browInnerUp": 0.9, "browOuterUpLeft": 1.0, "browOuterUpRight": 1.0, "eyeWideLeft": 0.8,
                 "eyeWideRight": 0.8, "jawOpen": 0.5},
    "fear": {"browInnerUp": 1.0, "browOuterUpLeft": 0.5, "browOuterUpRight": 0.5, "browDownLeft": 0.25,
             "browDownRight": 0.25, "eyeWideLeft": 0.8, "eyeWideRight": 0.8, "mouthStretchLeft": 0.7,
             "mouthStretchRight": 0.7},
    "disgust": {"noseSneerLeft": 1.0, "noseSneerRight": 1.0, "mouthUpperUpLeft": 0.8, "mouthUpperUpRight": 0.8},
    "sadness": {"browInnerUp": 0.9, "browDownLeft": 0.3, "browDownRight": 0.3, "mouthFrownLeft": 1.0,
                "mouthFrownRight": 1.0},
}


def _prototype_matrix() -> np.ndarray:
    matrix = np.zeros((NUM_AFFECTS, EXPRESSION_DIM))
    for name, weights in _PROTOTYPES.items():
        for channel, w in weights.items():
            matrix[AFFECT_CLASSES.index(name), BLENDSHAPE_INDEX[channel]] = w
    return matrix


AFFECT_PROTOTYPES = _prototype_matrix()


def affect_from_blendshapes(blendshapes, temperature: float = 0.1) -> np.ndarray:
    """8-d affect likelihoods (T, 8), paper order, from blendshapes (T, 52) or face states (T, 58).

    An approximation of Emotient FACET (paper Sec. 4.2), which is commercial and closed: each
    category's evidence is the fraction of its EMFACS prototype that is active,
    ``(w . x) / (w . w)``; contempt's is the asymmetry ``|smile+dimple left - right|``;
    neutral's is ``1 - max(others)``; likelihoods are ``softmax(evidence / temperature)``.
    """
    x = np.asarray(blendshapes, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] not in (EXPRESSION_DIM, EXPRESSION_DIM + 6):
        raise ValueError(f"blendshapes: expected (T, 52) blendshapes or (T, 58) face states, got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("blendshapes: contains NaN or inf")
    if temperature <= 0:
        raise ValueError(f"temperature: expected > 0, got {temperature}")
    x = x[:, :EXPRESSION_DIM]
    evidence = x @ AFFECT_PROTOTYPES.T / np.maximum((AFFECT_PROTOTYPES**2).sum(axis=1), 1e-12)
    b = BLENDSHAPE_INDEX
    asymmetry = np.abs(x[:, b["mouthSmileLeft"]] + x[:, b["mouthDimpleLeft"]]
                       - x[:, b["mouthSmileRight"]] - x[:, b["mouthDimpleRight"]])
    evidence[:, AFFECT_CLASSES.index("contempt")] = asymmetry / 2.0
    others = [i for i, name in enumerate(AFFECT_CLASSES) if name != "neutral"]
    evidence[:, AFFECT_CLASSES.index("neutral")] = 1.0 - evidence[:, others].max(axis=1)
    logits = evidence / temperature
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    return (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)


def read_affect_csv(path: str | os.PathLike) -> np.ndarray:
    """(T, 8) float32 affect of an ``interviewee_affect.csv`` (header ``frame`` + the 8 classes, any order)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: affect csv not found")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ValueError(f"{path}: empty affect csv (expected a header frame,{','.join(AFFECT_CLASSES)})")
    header = [h.strip().lower() for h in rows[0]]
    missing = [name for name in AFFECT_CLASSES if name not in header]
    if missing:
        raise ValueError(f"{path}: affect csv lacks columns {missing} (header {rows[0]}; expected frame,{','.join(AFFECT_CLASSES)})")
    columns = [header.index(name) for name in AFFECT_CLASSES]
    try:
        values = np.array([[float(row[c]) for c in columns] for row in rows[1:]], dtype=np.float32)
    except (ValueError, IndexError) as err:
        raise ValueError(f"{path}: non-numeric or short row in the affect csv ({err})") from err
    if len(values) == 0 or not np.isfinite(values).all():
        raise ValueError(f"{path}: affect csv has no rows or non-finite values")
    return values.reshape(-1, NUM_AFFECTS)


@dataclass
class SessionFiles:
    name: str
    split: str
    folder: Path

    def video(self, role: str) -> Path:
        for suffix in VIDEO_SUFFIXES:
            if (self.folder / f"{role}{suffix}").is_file():
                return self.folder / f"{role}{suffix}"
        if (self.folder / role).is_dir():
            return self.folder / role
        raise FileNotFoundError(f"{self.folder}: no {role} video ({role}.mp4 or a folder {role}/1.png, ...)")


def read_sessions(root: str | os.PathLike) -> list[SessionFiles]:
    """The sessions listed in ``ROOT/sessions.csv`` (columns session, split; others optional)."""
    root = Path(root)
    table = root / "sessions.csv"
    if not table.is_file():
        raise FileNotFoundError(f"{table}: not found (expected the interview layout, see docs/dyadgan.md)")
    with open(table, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"session", "split"} <= set(reader.fieldnames):
            raise ValueError(f"{table}: expected columns session,split (got {reader.fieldnames})")
        sessions = []
        for row in reader:
            if row["split"] not in SPLITS:
                raise ValueError(f"{table}: session {row['session']!r} has split {row['split']!r}, expected one of {SPLITS}")
            folder = root / "sessions" / row["session"]
            if not folder.is_dir():
                raise FileNotFoundError(f"{folder}: session folder listed in {table} does not exist")
            sessions.append(SessionFiles(row["session"], row["split"], folder))
    return sessions


def session_crop(landmarks: np.ndarray, crop_scale: float) -> tuple[float, float, float]:
    """(x0, y0, side) of the session's square crop from its landmarks (T, 68, 2)."""
    centroid = np.median(landmarks.mean(axis=1), axis=0)
    width = float(np.median(np.linalg.norm(landmarks[:, 16] - landmarks[:, 0], axis=-1)))
    if width <= 1e-6:
        raise ValueError("landmarks: jaw width (points 0-16) is zero; are these 68 iBUG points?")
    side = width / RIG_JAW_WIDTH * crop_scale
    return float(centroid[0] - RIG_CENTROID[0] * side), float(centroid[1] - RIG_CENTROID[1] * side), side


def align_session(frames: np.ndarray, landmarks: np.ndarray, image_size: int, crop_scale: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Crop, resize and oval-mask a session's frames (T, H, W, 3); landmarks go to the crop's pixels."""
    x0, y0, side = session_crop(landmarks, crop_scale)
    scale = image_size / side
    # pixel centres: p_out + 0.5 = (p_in + 0.5 - origin) * scale
    affine = np.array([[scale, 0.0, (0.5 - x0) * scale - 0.5], [0.0, scale, (0.5 - y0) * scale - 0.5]])
    mask = oval_mask(image_size)
    out = np.empty((len(frames), image_size, image_size, 3), dtype=np.uint8)
    for t, frame in enumerate(frames):
        out[t] = cv2.warpAffine(frame, affine, (image_size, image_size), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    out[:, ~mask] = 0
    aligned = landmarks @ affine[:, :2].T + affine[:, 2]
    return out, aligned.astype(np.float32)


def _signature(path: Path) -> list:
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]


def default_cache_dir() -> Path:
    return facezoo_home() / "cache" / "interview"


class PreparedSession:
    """One session's cached arrays: aligned interviewer frames, landmarks, interviewee affect."""

    def __init__(self, files: SessionFiles, image_size: int, crop_scale: float, cache_dir: Path,
                 affect_source: str) -> None:
        self.files = files
        video = files.video("interviewer")
        landmark_file = files.folder / "interviewer_landmarks.npy"
        if not landmark_file.is_file():
            raise FileNotFoundError(
                f"{landmark_file}: not found; write the interviewer's 68 iBUG landmarks per frame as (T, 68, 2) "
                "pixel (x, y) (dlib, OpenFace, or MediaPipe mapped to 68 points)")
        affect_csv = files.folder / "interviewee_affect.csv"
        blend_file = files.folder / "interviewee_face_state.npy"
        use_csv = affect_source == "csv" or (affect_source == "auto" and affect_csv.is_file())
        affect_input = affect_csv if use_csv else blend_file
        if not affect_input.is_file():
            raise FileNotFoundError(
                f"{files.folder}: no interviewee affect: expected interviewee_affect.csv or, for the blendshape "
                f"estimator, interviewee_face_state.npy (T, 58) / (T, 52) (affect_source={affect_source!r})")
        sources = [video / "1.png" if video.is_dir() else video, landmark_file, affect_input]
        key = hashlib.sha1(json.dumps([CACHE_VERSION, image_size, crop_scale, use_csv,
                                       [_signature(p) for p in sources]]).encode()).hexdigest()[:16]
        self.cache = cache_dir / f"{files.name}-{key}"
        if not (self.cache / "done").is_file():
            self._compute(video, landmark_file, affect_input, use_csv, image_size, crop_scale)
        self.frames = np.load(self.cache / "frames.npy", mmap_mode="r")
        self.landmarks = np.load(self.cache / "landmarks.npy")
        self.affect = np.load(self.cache / "affect.npy")
        self.length = len(self.frames)

    def _compute(self, video: Path, landmark_file: Path, affect_input: Path, use_csv: bool, image_size: int,
                 crop_scale: float) -> None:
        frames = read_video(video)
        landmarks = np.load(landmark_file).astype(np.float64)
        if landmarks.ndim != 3 or landmarks.shape[1:] != (NUM_LANDMARKS, 2):
            raise ValueError(f"{landmark_file}: expected (T, 68, 2) pixel landmarks, got {landmarks.shape}")
        if not np.isfinite(landmarks).all():
            raise ValueError(f"{landmark_file}: contains NaN/inf (drop or interpolate frames without a detected face)")
        if use_csv:
            affect = read_affect_csv(affect_input)
        else:
            affect = affect_from_blendshapes(np.load(affect_input))
        lengths = {str(video): len(frames), str(landmark_file): len(landmarks), str(affect_input): len(affect)}
        if max(lengths.values()) - min(lengths.values()) > LENGTH_TOLERANCE:
            raise ValueError(f"session {self.files.name}: frame counts disagree by more than {LENGTH_TOLERANCE}: {lengths}")
        length = min(lengths.values())
        aligned, points = align_session(frames[:length], landmarks[:length], image_size, crop_scale)
        self.cache.mkdir(parents=True, exist_ok=True)
        save_npy(self.cache / "frames.npy", aligned)
        save_npy(self.cache / "landmarks.npy", points)
        save_npy(self.cache / "affect.npy", affect[:length].astype(np.float32))
        (self.cache / "done").write_text("ok")


def _to_unit(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(image, dtype=np.float32)).div_(127.5).sub_(1.0)


class InterviewClips(Dataset):
    """Windows of prepared sessions (see the module docstring for the item layout)."""

    def __init__(self, sessions: list[PreparedSession], shape_params: list[np.ndarray], history: int, horizon: int,
                 image_size: int, items: list[tuple[int, int | None]]) -> None:
        self.sessions, self.shape_params = sessions, shape_params
        self.history, self.horizon, self.image_size = history, horizon, image_size
        self.items = items  # (session index, fixed start or None for a sampler-chosen one)
        self.span = history + horizon
        self.mask = oval_mask(image_size)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def lengths(self) -> list[int]:
        return [self.sessions[s].length for s, _ in self.items]

    def __getitem__(self, index):
        if isinstance(index, (tuple, list)):
            index, start = int(index[0]), int(index[1])
        else:
            index, start = int(index), self.items[int(index)][1]
            if start is None:
                raise ValueError(f"item {index} has no fixed start: index training items as (index, start)")
        session_index = self.items[index][0]
        session = self.sessions[session_index]
        if not 0 <= start <= session.length - self.span:
            raise ValueError(f"start={start}: outside 0..{session.length - self.span} for session {session.files.name}")
        stop, t = start + self.span, start + self.history
        shape = torch.from_numpy(self.shape_params[session_index][start:stop]).float()
        lines = sketch(session.landmarks[t], self.image_size, oval_mask=self.mask)
        return {
            "affect": torch.from_numpy(np.ascontiguousarray(session.affect[start:stop])).float(),
            "shape": shape,
            "target_shape": shape[self.history:].clone(),
            "sketch": _to_unit(lines)[None],
            "face": _to_unit(session.frames[t]).permute(2, 0, 1).contiguous(),
            "index": torch.tensor(index),
            "start": torch.tensor(start),
        }


class InterviewDataModule(SplitLoaders, L.LightningDataModule):
    """Dyadic interview sessions for DyadGAN-style generation (see the module docstring).

    Args:
        root: an interview-layout folder; None = the embedded world, ``cached_interview_dataset(**world)``.
        world: keyword arguments of :func:`~datamodules.synthetic.interview_world.write_interview_dataset`.
        batch_size, eval_batch_size, num_workers, pin_memory: loader settings.
        image_size: side S of sketches and faces (64, 128 or 256: the U-Net depth must match).
        history: interviewee frames before the generated frame (paper 100).
        horizon: future frames per sample (the non-overlapping C-LSTM's 100).
        clips_per_session: random training windows per training session per epoch.
        eval_clips_per_session: evenly spaced val/test windows per session.
        num_modes: non-rigid PDM modes (None: enough for ``shape_variance``); P = 4 + num_modes.
        shape_variance: explained variance when ``num_modes`` is None.
        shape_model: path of a saved PDM to use instead of fitting one on the training split.
        crop_scale: session crop side in units of the rig framing (1 = the world's own framing).
        affect_source: "auto" (csv if present, else blendshapes), "csv" or "blendshapes".
        cache_dir: default ``$FACEZOO_HOME/cache/interview``.
    """

    def __init__(
        self,
        root: str | None = None,
        world: dict | None = None,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        image_size: int = 64,
        history: int = 100,
        horizon: int = 100,
        clips_per_session: int = 64,
        eval_clips_per_session: int = 4,
        num_modes: int | None = 20,
        shape_variance: float = 0.98,
        shape_model: str | None = None,
        crop_scale: float = 1.0,
        affect_source: str = "auto",
        cache_dir: str | None = None,
    ) -> None:
        super().__init__()
        for name, value in dict(batch_size=batch_size, image_size=image_size, history=history, horizon=horizon,
                                clips_per_session=clips_per_session, eval_clips_per_session=eval_clips_per_session).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        if eval_batch_size is not None and eval_batch_size < 1:
            raise ValueError(f"eval_batch_size: expected a positive int, got {eval_batch_size!r}")
        if num_workers < 0:
            raise ValueError(f"num_workers: expected >= 0, got {num_workers}")
        if affect_source not in ("auto", "csv", "blendshapes"):
            raise ValueError(f"affect_source: expected 'auto', 'csv' or 'blendshapes', got {affect_source!r}")
        if not crop_scale > 0:
            raise ValueError(f"crop_scale: expected > 0, got {crop_scale}")
        if world is not None and not isinstance(world, dict):
            raise ValueError(f"world: expected a dict of write_interview_dataset arguments, got {type(world).__name__}")
        self.save_hyperparameters()
        self.root, self.world = root, dict(world or {})
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.image_size, self.history, self.horizon = image_size, history, horizon
        self.clips_per_session, self.eval_clips_per_session = clips_per_session, eval_clips_per_session
        self.num_modes, self.shape_variance, self.shape_model_file = num_modes, shape_variance, shape_model
        self.crop_scale, self.affect_source = crop_scale, affect_source
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self._root: Path | None = None
        self._prepared: dict[str, list[PreparedSession]] = {}
        self._shape_model: PointDistributionModel | None = None
        self.shape_model_path: Path | None = None
        self.datasets: dict[str, InterviewClips] = {}

    # -- data and preprocessing ------------------------------------------------------------------

    @property
    def data_root(self) -> Path:
        if self._root is None:
            def embedded() -> Path:
                from datamodules.synthetic.interview_world import cached_interview_dataset

                return cached_interview_dataset(**self.world)

            self._root = dataset_root(self.root, "the interview layout with sessions.csv", embedded)
        return self._root

    def prepare_data(self) -> None:
        _ = self.data_root

    def sessions(self, split: str) -> list[PreparedSession]:
        """The preprocessed sessions of ``split`` (computed once, cached on disk)."""
        if split not in SPLITS:
            raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
        if split not in self._prepared:
            files = [s for s in read_sessions(self.data_root) if s.split == split]
            if not files:
                raise ValueError(f"{self.data_root}/sessions.csv: no session in split {split!r}")
            self._prepared[split] = [PreparedSession(f, self.image_size, self.crop_scale, self.cache_dir,
                                                     self.affect_source) for f in files]
        return self._prepared[split]

    @property
    def shape_model(self) -> PointDistributionModel:
        """The PDM: loaded from ``shape_model`` or fitted on the training interviewer landmarks and saved."""
        if self._shape_model is None:
            if self.shape_model_file is not None:
                self.shape_model_path = Path(self.shape_model_file).expanduser()
                self._shape_model = PointDistributionModel.load(self.shape_model_path)
            else:
                train = self.sessions("train")
                key = hashlib.sha1(json.dumps([CACHE_VERSION, self.num_modes, self.shape_variance,
                                               [str(s.cache) for s in train]]).encode()).hexdigest()[:16]
                path = self.cache_dir / f"shape_model-{key}.npz"
                if not path.is_file():
                    points = np.concatenate([s.landmarks for s in train])
                    PointDistributionModel.fit(points, self.num_modes, self.shape_variance).save(path)
                self.shape_model_path = path
                self._shape_model = PointDistributionModel.load(path)
            if self.num_modes is not None and self._shape_model.num_modes != self.num_modes:
                raise ValueError(f"shape model {self.shape_model_path} has {self._shape_model.num_modes} modes, "
                                 f"num_modes={self.num_modes}")
        return self._shape_model

    @property
    def num_shape_params(self) -> int:
        """P = 4 rigid + non-rigid modes: the model's ``shape_dim``."""
        return self.shape_model.num_params

    def shape_parameters(self, split: str) -> list[np.ndarray]:
        """Standardised interviewer shape parameters (T, P) of each session of ``split``."""
        model = self.shape_model
        return [model.encode(s.landmarks, standardise=True).astype(np.float32) for s in self.sessions(split)]

    def dictionary_data(self, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Training pairs for the affect-shape dictionary: interviewer shape parameters (N, P) at
        frames t >= history and the interviewee's mean affect over the ``history`` frames before t (N, 8)."""
        shapes, affects = [], []
        for session, params in zip(self.sessions("train"), self.shape_parameters("train")):
            cumulative = np.concatenate([np.zeros((1, NUM_AFFECTS)), np.cumsum(session.affect, axis=0, dtype=np.float64)])
            frames = np.arange(self.history, session.length, stride)
            affects.append((cumulative[frames] - cumulative[frames - self.history]) / self.history)
            shapes.append(params[frames])
        return np.concatenate(shapes).astype(np.float32), np.concatenate(affects).astype(np.float32)

    def face_attribute_data(self, split: str = "train", stride: int = 2) -> dict[str, np.ndarray]:
        """Real aligned faces of ``split`` with who they are and where their landmarks are, for
        training a feature network (``zoo.metrics.world_features``): every ``stride``-th
        interviewer frame (identity 0) and, where ``interviewee_landmarks.npy`` exists, every
        ``stride``-th interviewee frame aligned the same way (identity = 1 + the session's index;
        one interviewee per session, as in the layout).

        Returns ``faces`` uint8 (N, S, S, 3), ``identities`` int64 (N,), ``landmarks`` float32 (N, 68, 2).
        """
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
            raise ValueError(f"stride: expected a positive int, got {stride!r}")
        faces, identities, points = [], [], []
        for number, session in enumerate(self.sessions(split), start=1):
            faces.append(np.asarray(session.frames[::stride]))
            points.append(session.landmarks[::stride])
            identities.append(np.zeros(len(faces[-1]), dtype=np.int64))
            landmark_file = session.files.folder / "interviewee_landmarks.npy"
            if not landmark_file.is_file():
                continue
            landmarks = np.load(landmark_file).astype(np.float64)
            if landmarks.ndim != 3 or landmarks.shape[1:] != (NUM_LANDMARKS, 2) or not np.isfinite(landmarks).all():
                raise ValueError(f"{landmark_file}: expected finite (T, 68, 2) pixel landmarks, got {landmarks.shape}")
            frames = read_video(session.files.video("interviewee"))
            length = min(len(frames), len(landmarks))
            if abs(len(frames) - len(landmarks)) > LENGTH_TOLERANCE:
                raise ValueError(f"{landmark_file}: {len(landmarks)} frames, its video has {len(frames)}")
            aligned, aligned_points = align_session(frames[:length:stride], landmarks[:length:stride],
                                                    self.image_size, self.crop_scale)
            faces.append(aligned)
            points.append(aligned_points)
            identities.append(np.full(len(aligned), number, dtype=np.int64))
        return {"faces": np.concatenate(faces), "identities": np.concatenate(identities),
                "landmarks": np.concatenate(points).astype(np.float32)}

    def setup(self, stage: str | None = None) -> None:
        splits = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",), None: SPLITS}
        if stage not in splits:
            raise ValueError(f"stage must be one of fit/validate/test/predict or None, got {stage!r}")
        for split in splits[stage]:
            if split not in self.datasets:
                self.datasets[split] = self.make_dataset(split)

    def make_dataset(self, split: str) -> InterviewClips:
        sessions = self.sessions(split)
        span = self.history + self.horizon
        short = [s.files.name for s in sessions if s.length < span]
        if short:
            raise ValueError(f"sessions {short[:5]} of split {split!r} have fewer than history + horizon = {span} frames")
        if split == "train":
            items = [(i, None) for _ in range(self.clips_per_session) for i in range(len(sessions))]
        else:
            items = [(i, int(start)) for i, s in enumerate(sessions)
                     for start in np.linspace(0, s.length - span, self.eval_clips_per_session).round().astype(int)]
        return InterviewClips(sessions, self.shape_parameters(split), self.history, self.horizon, self.image_size, items)

    # -- loaders ---------------------------------------------------------------------------------

    def _loader(self, split: str, train: bool) -> DataLoader:
        if split not in self.datasets:
            self.setup({"train": "fit", "val": "validate", "test": "test"}[split])
        dataset = self.datasets[split]
        common = dict(num_workers=self.num_workers, pin_memory=self.pin_memory, persistent_workers=self.num_workers > 0)
        if train:
            return training_loader(dataset, dataset.lengths, dataset.span, self.batch_size, drop_last=True, **common)
        return DataLoader(dataset, batch_size=self.eval_batch_size, shuffle=False, **common)

    def __str__(self) -> str:
        return self.__repr__()

    def __repr__(self) -> str:
        where = str(self.root) if self.root is not None else f"embedded world {self.world}"
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self.datasets.items()) or "not set up"
        return (f"InterviewDataModule({where}; samples: {sizes}; history {self.history}, horizon {self.horizon}, "
                f"{self.image_size}px)")
