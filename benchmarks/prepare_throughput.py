"""Throughput of ``facezoo prepare`` (frames/s): decode alone, then the whole per-video pipeline
(decode + landmarks + features + crops/drawings + writing), with the landmarker injected (the
embedded world's known geometry, so the figure is the pipeline's own cost) and, when a
``face_landmarker.task`` is available, the real MediaPipe model. ``--workers`` > 1 prepares
copies of the video in parallel processes (one video per process).

    python benchmarks/prepare_throughput.py --frames 250 --size 256 --source-size 512 --workers 1 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datamodules.features.face_state import BLENDSHAPE_INDEX, FACE_STATE_DIM
from datamodules.features.io import atomic_path, iter_video, write_video
from datamodules.features.mediapipe_landmarks import (
    FACE_LANDMARKER_ENV,
    GroundTruthLandmarker,
    MediaPipeLandmarkerFactory,
    face_landmarker_cache_path,
)
from datamodules.features.prepare import PrepareConfig, prepare_videos
from datamodules.synthetic.appearance import sample_identity
from datamodules.synthetic.face_renderer import FaceRenderer


@dataclass(frozen=True)
class KnownGeometry:
    """Picklable factory of :class:`GroundTruthLandmarker` (same truth for every copy)."""

    states: np.ndarray
    identity: np.ndarray
    size: int
    fps: float

    def __call__(self, video: Path) -> GroundTruthLandmarker:
        return GroundTruthLandmarker(self.states, self.identity, self.size, self.fps)

    def describe(self) -> dict:
        return {"kind": "ground_truth"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=250, help="frames of the benchmark video (25 fps)")
    parser.add_argument("--source-size", type=int, default=512, help="side of the rendered source video")
    parser.add_argument("--size", type=int, default=256, help="crop size")
    parser.add_argument("--workers", type=int, nargs="+", default=[1], help="parallel videos to time (one copy each)")
    parser.add_argument("--model", type=Path, default=None, help="face_landmarker.task for the real-model figure")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the figures here")
    return parser.parse_args(argv)


def _states(frames: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(frames) / 25.0
    states = np.zeros((frames, FACE_STATE_DIM))
    smile = 0.4 + 0.4 * np.sin(2 * np.pi * 0.3 * t)
    for name in ("mouthSmileLeft", "mouthSmileRight", "cheekSquintLeft", "cheekSquintRight"):
        states[:, BLENDSHAPE_INDEX[name]] = smile
    states[:, BLENDSHAPE_INDEX["jawOpen"]] = np.clip(rng.normal(0.15, 0.1, frames), 0, 1)
    states[:, 52:55] = 0.2 * np.sin(2 * np.pi * np.array([0.2, 0.13, 0.07]) * t[:, None])
    return states


def _time_prepare(root: Path, factory, config: PrepareConfig, workers: int, frames: int) -> float:
    out = Path(tempfile.mkdtemp(prefix="prepare-bench-"))
    try:
        start = time.perf_counter()
        summaries = prepare_videos(root, out, factory, config, workers=workers, show_progress=False)
        elapsed = time.perf_counter() - start
    finally:
        shutil.rmtree(out, ignore_errors=True)
    failed = [s.error for s in summaries if s.status != "done"]
    if failed:
        raise RuntimeError(f"benchmark run failed: {failed}")
    return len(summaries) * frames / elapsed


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    identity = sample_identity(rng)
    states = _states(args.frames, rng)
    frames = FaceRenderer(args.source_size).render_sequence(states, identity)
    work = Path(tempfile.mkdtemp(prefix="prepare-bench-src-"))
    result: dict = {"frames": args.frames, "source_size": args.source_size, "crop_size": args.size,
                    "cpu_count": os.cpu_count(), "platform": platform.platform(), "runs": []}
    try:
        max_workers = max(args.workers)
        for k in range(max_workers):
            write_video(work / f"copy{k}" / "clip.mp4", frames, fps=25.0)
        start = time.perf_counter()
        decoded = sum(1 for _ in iter_video(work / "copy0" / "clip.mp4"))
        result["decode_fps"] = decoded / (time.perf_counter() - start)
        print(f"decode only: {result['decode_fps']:.1f} frames/s ({args.source_size}x{args.source_size} mp4)")
        config = PrepareConfig(size=args.size, fps=25.0)
        known = KnownGeometry(states, identity.shape_coefficients, args.source_size, 25.0)
        model = args.model or (Path(os.environ[FACE_LANDMARKER_ENV]) if os.environ.get(FACE_LANDMARKER_ENV) else None)
        if model is None and face_landmarker_cache_path().is_file():
            model = face_landmarker_cache_path()
        landmarkers = {"injected": known}
        if model is not None:
            landmarkers["mediapipe"] = MediaPipeLandmarkerFactory(str(model))
        else:
            print("real MediaPipe: skipped (no face_landmarker.task; pass --model)")
        for name, factory in landmarkers.items():
            for workers in args.workers:
                with tempfile.TemporaryDirectory(prefix="prepare-bench-in-") as tmp:
                    for k in range(workers):  # one video per worker
                        shutil.copytree(work / f"copy{k}", Path(tmp) / f"copy{k}")
                    fps = _time_prepare(Path(tmp), factory, config, workers, args.frames)
                result["runs"].append({"landmarker": name, "workers": workers, "frames_per_s": fps})
                print(f"prepare, {name} landmarker, {workers} worker(s): {fps:.1f} frames/s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
