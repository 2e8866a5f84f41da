"""``facezoo make-data``: write the embedded world in a real dataset's published layout."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
from pathlib import Path

# Other layouts of the embedded world: module -> (help). Each module defines
# ``configure_layout_parser(parser)`` and ``run_layout(args) -> int``; a layout is offered once
# its module exists.
OTHER_LAYOUTS: dict[str, tuple[str, str]] = {
    "nemo": ("datamodules.synthetic.nemo_world", "UvA-NEMO Smile layout (CMM-Net)"),
    "disfa": ("datamodules.synthetic.disfa_world", "DISFA / DISFA+ layout (CMM-Net)"),
    "interview": ("datamodules.synthetic.interview_world", "dyadic interview layout (DyadGAN)"),
}


def _available_layouts() -> dict[str, tuple[str, str]]:
    return {name: entry for name, entry in OTHER_LAYOUTS.items() if importlib.util.find_spec(entry[0]) is not None}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    layouts = parser.add_subparsers(dest="layout", required=True, metavar="LAYOUT")
    for name, (module, help_text) in _available_layouts().items():
        importlib.import_module(module).configure_layout_parser(layouts.add_parser(name, help=help_text))
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
    layouts = _available_layouts()
    if args.layout in layouts:
        return int(importlib.import_module(layouts[args.layout][0]).run_layout(args) or 0)
    raise SystemExit(f"make-data: unknown layout {args.layout!r}")
