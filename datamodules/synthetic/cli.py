"""``facezoo make-data``: write the embedded world in a real dataset's published layout."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure_parser(parser: argparse.ArgumentParser) -> None:
    layouts = parser.add_subparsers(dest="layout", required=True, metavar="LAYOUT")
    react = layouts.add_parser(
        "react", help="REACT 2023/2024 (RECOLA + NoXI) layout",
        description="Write dyadic sessions in the REACT 2023/2024 layout: videos, wav, 3D_FV_files, "
                    "Emotion csvs, split csvs and neighbour_emotion_<split>.npy.",
    )
    react.add_argument("--out", required=True, type=Path, help="new folder to write (must not exist or be empty)")
    react.add_argument("--sessions", type=int, default=12, help="number of dyadic sessions (default 12)")
    react.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    react.add_argument("--clips-per-session", type=int, default=2, help="30 s clips per session (default 2)")
    react.add_argument("--clip-frames", type=int, default=751, help="frames per clip at 25 fps (default 751, as REACT)")
    react.add_argument("--image-size", type=int, default=256, help="video frame size in pixels (default 256, as REACT)")
    react.add_argument("--video-format", choices=("mp4", "png"), default="mp4",
                       help="mp4 files (ReactFace loader) or folders of 1.png, 2.png, ... (challenge loader)")


def run(args: argparse.Namespace) -> int:
    if args.layout == "react":
        from datamodules.synthetic.react_world import write_react_dataset

        for name in ("sessions", "clips_per_session", "clip_frames", "image_size"):
            if getattr(args, name) < 1:
                raise SystemExit(f"make-data react: --{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
        root = write_react_dataset(
            args.out, sessions=args.sessions, seed=args.seed, clips_per_session=args.clips_per_session,
            clip_frames=args.clip_frames, image_size=args.image_size, video_format=args.video_format,
            progress=True,
        )
        print(f"wrote a REACT-layout dataset to {root}")
        print(f"train with: lightning fit --config zoo/demo/transae.yaml --data.init_args.root {root}")
        return 0
    raise SystemExit(f"make-data: unknown layout {args.layout!r}")
