"""``facezoo generate`` for REACT-style models (speaker video + speech in, listener face states out).

Shared by ReactFace and Trans-AE: their ``add_generate_arguments`` / ``generate_to_files`` call
:func:`add_react_generate_arguments` / :func:`react_generate_to_files`.

Inputs are prepared as ``REACTDataModule`` prepares a clip: frames Resize(S*256/224) +
CenterCrop(S) -> [-1, 1] (B23 ``Transform``, RF ``VideoTransform``), the waveform resampled to
16 kHz and normalised to zero mean / unit variance over the clip (``Wav2Vec2Processor``), 640
samples per 25 fps frame. S is ``--image-size``, else the config's ``data.init_args.image_size``.

Outputs in ``--out``: ``<stem>_reactions.npy`` (K, T, 58) float32 face states with the mean face
added back (raw coefficients, as RF ``evaluate.py`` saves them), and ``<stem>_reactions.mp4``:
the speaker beside the K reactions, rendered face state -> landmarks -> sketch (``--render
sketch``) or the procedural face (``--render face``) with :mod:`zoo.render`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from datamodules.features.face_state import FACE_STATE_DIM
from datamodules.features.io import iter_video, read_wav, resample, save_npy

__all__ = [
    "SAMPLE_RATE",
    "FPS",
    "RENDERERS",
    "add_react_generate_arguments",
    "read_speaker_inputs",
    "read_speaker_face_state",
    "config_image_size",
    "resolve_face_mean",
    "write_reaction_outputs",
    "react_generate_to_files",
]

SAMPLE_RATE = 16000
FPS = 25
RENDERERS = ("sketch", "face")
AUDIO_NORM_EPS = 1e-7  # Wav2Vec2FeatureExtractor (as datamodules.react)


def add_react_generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--speaker-video", type=Path, required=True,
                        help="the speaker's video: an mp4 or a folder of numbered PNG frames, 25 fps")
    parser.add_argument("--speaker-audio", type=Path, default=None,
                        help="the speaker's speech as a wav (any rate; resampled to 16 kHz)")
    parser.add_argument("--speaker-3dmm", type=Path, default=None,
                        help="the speaker's (T, 58) 3DMM coefficients npy (REACT 3D_FV_files); the motion "
                             "input of models with speaker_motion: face_state (the CPU demos)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="model input size (default: the config's data image_size, else 224)")
    parser.add_argument("--max-frames", type=int, default=None, help="use at most this many frames")
    parser.add_argument("--face-mean", type=Path, default=None,
                        help="(58,) npy added back to the mean-subtracted predictions (default: the mean "
                             "stored in the checkpoint, else zeros)")
    parser.add_argument("--render", choices=RENDERERS, default="sketch",
                        help="how the reactions are drawn in the mp4 (default: landmark sketches)")
    parser.add_argument("--render-size", type=int, default=256, help="tile size of the mp4 (default 256)")


def config_image_size(configs: list[Path] | None, default: int = 224) -> int:
    """``data.init_args.image_size`` of the last config that sets it, else ``default``."""
    import yaml

    size = default
    for config in configs or []:
        try:
            data = yaml.safe_load(Path(config).read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        value = ((data.get("data") or {}).get("init_args") or {}).get("image_size")
        if isinstance(value, int):
            size = value
    return size


def read_speaker_inputs(
    video_path: Path,
    audio_path: Path | None,
    image_size: int,
    *,
    max_frames: int | None = None,
    display_size: int = 256,
) -> tuple[torch.Tensor, torch.Tensor | None, np.ndarray]:
    """(video (1, T, 3, S, S) in [-1, 1], audio (1, T*640) normalised or None, display uint8 (T, D, D, 3)).

    T = the number of video frames (cut to the audio's whole frames and ``max_frames``).
    """
    from datamodules.react import resize_and_centre_crop

    if image_size < 32:
        raise ValueError(f"--image-size must be >= 32, got {image_size}")
    video_path = Path(video_path)
    if not video_path.exists():
        raise FileNotFoundError(f"--speaker-video {video_path}: no such file or folder")
    model_frames, display = [], []
    for frame in iter_video(video_path):
        if max_frames is not None and len(model_frames) >= max_frames:
            break
        model_frames.append(resize_and_centre_crop(frame, image_size))
        display.append(resize_and_centre_crop(frame, display_size))
    if not model_frames:
        raise ValueError(f"--speaker-video {video_path}: no decodable frames")
    frames = len(model_frames)
    audio = None
    spf = SAMPLE_RATE // FPS
    if audio_path is not None:
        audio_path = Path(audio_path)
        if not audio_path.is_file():
            raise FileNotFoundError(f"--speaker-audio {audio_path}: no such file")
        wave, rate = read_wav(audio_path)
        wave = resample(wave, rate, SAMPLE_RATE).astype(np.float32)
        audio_frames = len(wave) // spf
        if audio_frames < 1:
            raise ValueError(f"--speaker-audio {audio_path}: shorter than one frame ({spf} samples at 16 kHz)")
        frames = min(frames, audio_frames)
        wave = wave[: frames * spf]
        wave = (wave - wave.mean()) / np.sqrt(wave.var() + AUDIO_NORM_EPS)
        audio = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))[None]
    stack = np.stack(model_frames[:frames]).astype(np.float32) / 127.5 - 1.0
    video = torch.from_numpy(stack).permute(0, 3, 1, 2)[None].contiguous()
    return video, audio, np.stack(display[:frames])


def resolve_face_mean(model: torch.nn.Module, path: Path | None) -> tuple[np.ndarray, str]:
    """The (58,) mean to add back and where it came from."""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"--face-mean {path}: no such file")
        mean = np.load(path).astype(np.float32).reshape(-1)
        if mean.shape != (FACE_STATE_DIM,):
            raise ValueError(f"--face-mean {path}: expected {FACE_STATE_DIM} values, got shape {mean.shape}")
        return mean, str(path)
    stored = getattr(model, "face_mean", None)
    known = getattr(model, "face_mean_known", None)
    if isinstance(stored, torch.Tensor) and known is not None and bool(known):
        return stored.detach().float().cpu().numpy(), "checkpoint"
    print("facezoo generate: no --face-mean and none stored in the checkpoint; writing mean-subtracted "
          "face states (the reactions are drawn around the rig's neutral face)", file=sys.stderr)
    return np.zeros(FACE_STATE_DIM, dtype=np.float32), "zeros"


def write_reaction_outputs(
    out_dir: Path,
    stem: str,
    reactions: np.ndarray,
    speaker_frames: np.ndarray,
    *,
    render: str = "sketch",
    render_size: int = 256,
) -> list[Path]:
    """Write ``<stem>_reactions.npy`` (K, T, 58) and ``<stem>_reactions.mp4`` (speaker | K reactions)."""
    import cv2

    from zoo.render import render_face_video, render_sketch_video, save_video, tile_videos

    reactions = np.asarray(reactions, dtype=np.float32)
    if reactions.ndim != 3 or reactions.shape[-1] != FACE_STATE_DIM:
        raise ValueError(f"reactions must be (K, T, {FACE_STATE_DIM}), got {reactions.shape}")
    if render not in RENDERERS:
        raise ValueError(f"render must be one of {RENDERERS}, got {render!r}")
    if len(speaker_frames) != reactions.shape[1]:
        raise ValueError(f"{len(speaker_frames)} speaker frames for {reactions.shape[1]} reaction frames")
    out_dir = Path(out_dir)
    npy = out_dir / f"{stem}_reactions.npy"
    save_npy(npy, reactions)
    speaker = np.asarray(speaker_frames, dtype=np.uint8)
    if speaker.shape[1:3] != (render_size, render_size):
        speaker = np.stack([cv2.resize(f, (render_size, render_size), interpolation=cv2.INTER_AREA)
                            for f in speaker])
    draw: Callable[[np.ndarray], np.ndarray] = (
        (lambda states: render_sketch_video(states, image_size=render_size)) if render == "sketch"
        else (lambda states: render_face_video(states, image_size=render_size))
    )
    tiles = [speaker] + [draw(sample) for sample in reactions]
    labels = ["speaker"] + [f"reaction {k + 1}" for k in range(len(reactions))]
    mp4 = save_video(out_dir / f"{stem}_reactions.mp4", tile_videos(tiles, labels), fps=FPS)
    return [npy, Path(mp4)]


def react_generate_to_files(
    model: torch.nn.Module,
    args: argparse.Namespace,
    out_dir: Path,
    generate: Callable[[torch.Tensor | None, torch.Tensor | None, int], torch.Tensor],
    *,
    needs_audio: bool,
) -> list[Path]:
    """Read the speaker inputs of ``args``, ``generate(motion, audio, K) -> (1, K, T, 58)``, write
    files. The motion input is the video, or for ``speaker_motion="face_state"`` models the
    ``--speaker-3dmm`` coefficients minus the model's face mean (the video is then only drawn)."""
    name = type(model).__name__
    if needs_audio and getattr(args, "speaker_audio", None) is None:
        raise ValueError(f"{name} uses the speaker's speech: pass --speaker-audio A.wav")
    net = getattr(model, "net", None)
    reads_face_state = getattr(net, "motion_input", None) == "face_state"
    speaker_3dmm = getattr(args, "speaker_3dmm", None)
    mean, _ = resolve_face_mean(model, args.face_mean)
    max_frames, rows = args.max_frames, None
    if reads_face_state:
        rows = read_speaker_face_state(speaker_3dmm, name)
        max_frames = len(rows) if max_frames is None else min(max_frames, len(rows))
    elif speaker_3dmm is not None:
        raise ValueError(f"--speaker-3dmm is only read by models with speaker_motion: face_state; this {name} "
                         "reads the speaker's frames")
    image_size = args.image_size or config_image_size(getattr(args, "config", None))
    video, audio, display = read_speaker_inputs(
        args.speaker_video, args.speaker_audio if needs_audio else None, image_size,
        max_frames=max_frames, display_size=args.render_size,
    )
    if rows is not None:  # video and audio were read up to the 3DMM's length, so no longer than it
        video = torch.from_numpy(np.ascontiguousarray(rows[: len(display)] - mean[None]))[None]
    device = next(model.parameters()).device
    reactions = generate(video.to(device), None if audio is None else audio.to(device), int(args.num_samples))
    if reactions.ndim != 4 or reactions.shape[0] != 1:
        raise RuntimeError(f"generate returned {tuple(reactions.shape)}, expected (1, K, T, 58)")
    raw = reactions[0].float().cpu().numpy() + mean[None, None]
    stem = Path(args.speaker_video).stem or "speaker"
    return write_reaction_outputs(out_dir, stem, raw, display[: raw.shape[1]], render=args.render,
                                  render_size=args.render_size)


def read_speaker_face_state(path: Path | None, model_name: str) -> np.ndarray:
    """``--speaker-3dmm``: the speaker's (T, 58) coefficients as float32, checked."""
    from datamodules.react_files import load_tdmm

    if path is None:
        raise ValueError(f"this {model_name} reads the speaker's motion from its 3DMM coefficients "
                         "(speaker_motion: face_state): pass --speaker-3dmm S.npy, a (T, 58) array")
    rows = np.asarray(load_tdmm(path), dtype=np.float32)
    if not np.isfinite(rows).all():
        raise ValueError(f"--speaker-3dmm {path}: contains NaN or infinite values")
    return rows
