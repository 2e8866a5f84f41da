"""Speed of the face-state rendering path on one CPU core: rig landmarks, sketches / landmark
images (draw_landmarks), and the procedural face renderer (frames/s), per image size.

Face states are a random but plausible mix (blendshapes in [0, 0.6], head rotation within
±0.3 rad); identities are sampled, so every hair style / accessory mix is timed.

    python benchmarks/render_speed.py --frames 500 --sizes 256 128 --identities 8 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from datamodules.features.drawing import draw_landmarks, landmark_image
from datamodules.features.face_state import FACE_STATE_DIM
from datamodules.features.io import atomic_path
from datamodules.features.rig import FaceRig
from datamodules.synthetic.appearance import sample_identity
from datamodules.synthetic.face_renderer import FaceRenderer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=500, help="frames per timed sequence")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 128, 64])
    parser.add_argument("--identities", type=int, default=8, help="sampled people, one sequence each")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the figures here")
    return parser.parse_args(argv)


def face_states(frames: int, rng: np.random.Generator) -> np.ndarray:
    states = np.zeros((frames, FACE_STATE_DIM))
    states[:, :52] = rng.uniform(0.0, 0.6, (frames, 52))
    states[:, 52:55] = rng.uniform(-0.3, 0.3, (frames, 3))
    return states


def timed(fn, repeats: int = 3) -> float:
    """Best of ``repeats`` wall-clock seconds (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        begin = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - begin)
    return best


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.frames < 1 or args.identities < 1:
        raise ValueError("--frames and --identities must be positive")
    cv2.setNumThreads(1)  # one core, as the target is stated
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    states = face_states(args.frames, rng)
    people = [sample_identity(rng) for _ in range(args.identities)]
    result: dict = {"frames": args.frames, "identities": args.identities, "sizes": {}}
    rig_seconds = timed(lambda: FaceRig.landmarks_2d(states, people[0].shape_coefficients.astype(np.float64), 256))
    result["rig_frames_per_s"] = args.frames / rig_seconds
    for size in args.sizes:
        points = FaceRig.landmarks_2d(states, None, size)
        renderer = FaceRenderer(size)
        per_person = [args.frames / timed(lambda p=p, r=renderer: r.render_sequence(states, p), repeats=1) for p in people]
        result["sizes"][str(size)] = {
            "render_frames_per_s": float(np.mean(per_person)),
            "render_frames_per_s_min": float(np.min(per_person)),
            "sketch_frames_per_s": args.frames / timed(lambda pts=points, s=size: draw_landmarks(pts, s)),
            "sketch_aa_frames_per_s": args.frames / timed(lambda pts=points, s=size: draw_landmarks(pts, s, antialias=True)),
            "landmark_image_64_frames_per_s": args.frames / timed(lambda pts=points, s=size: landmark_image(pts, source_size=s)),
        }
    result.update({"cpu_count": os.cpu_count(), "opencv": cv2.__version__, "platform": platform.platform()})

    print(f"Rendering speed, one core, {args.frames} frames x {args.identities} identities")
    print(f"  rig landmarks_2d (numpy): {result['rig_frames_per_s']:,.0f} frames/s")
    for size, row in result["sizes"].items():
        print(f"  {size:>4}px  face renderer {row['render_frames_per_s']:7.0f} frames/s (slowest person "
              f"{row['render_frames_per_s_min']:.0f})  sketch {row['sketch_frames_per_s']:7.0f}  "
              f"sketch AA {row['sketch_aa_frames_per_s']:7.0f}  landmark image 64 {row['landmark_image_64_frames_per_s']:7.0f}")
    if args.json:
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
