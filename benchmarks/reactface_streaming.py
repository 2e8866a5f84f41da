"""ReactFace online generation time: streaming (cached state) vs RF's prefix re-encoding.

    python benchmarks/reactface_streaming.py --config zoo/demo/reactface.yaml --frames 250 750 --json OUT
    python benchmarks/reactface_streaming.py --config zoo/reactface.yaml --random-audio-weights \
        --frames 50 150 --no-prefix --threads 2 --precision bf16-mixed --audio-feature-cache --json OUT

The model is built from the config as ``fit`` builds it (random weights; ``--ckpt`` loads trained
ones), inputs are random speaker video at the config's ``data.image_size`` and a random 16 kHz
waveform. For each length, ``generate(..., mode="stream")`` and ``mode="prefix"`` are timed (one
sample, the config's ``eval_window``, after one warm-up window). ``--train-steps N`` also times N
training steps (batch 1, ``--train-frames`` frames, stage 2 with M samples, no neighbours) and
reports peak RSS. ``--random-audio-weights`` swaps a pretrained wav2vec2 for the same
architecture with random weights (timing only; no download needed).

Writes ``{"frames": [...], "seconds": [...], "seconds_prefix": [...], ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import torch


def peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def build(config: list[Path], random_audio: bool):
    from zoo.generate import build_model

    extra = []
    if random_audio:
        # Wav2Vec2Config() defaults = the wav2vec2-base architecture
        extra = [Path(_write_override())]
    return build_model(list(config) + extra)


def prepare(config: list[Path], random_audio: bool, ckpt: Path | None, window: int | None):
    """The benchmarked model in eval mode (``ckpt`` weights loaded when given), its input image
    size and generation window (``window``, else the model's ``eval_window``)."""
    from zoo.common.react_io import config_image_size
    from zoo.generate import load_weights

    model = build(config, random_audio)
    if ckpt is not None:
        load_weights(model, ckpt)
    model.eval()
    return model, config_image_size(config), window or model.hparams.eval_window


def random_inputs(model, frames: int, size: int, generator: torch.Generator, batch: int = 1):
    """Random speaker inputs of the kind the model reads: frames in [-1, 1] (or, for
    ``speaker_motion: face_state`` models, small 3DMM-like face states) and a 16 kHz waveform."""
    if model.net.motion_input == "face_state":
        motion = torch.randn(batch, frames, 58, generator=generator) * 0.1
    else:
        motion = torch.rand(batch, frames, 3, size, size, generator=generator) * 2 - 1
    return motion, torch.randn(batch, frames * 640, generator=generator)


def _write_override() -> str:
    import tempfile

    fd, name = tempfile.mkstemp(suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        f.write("model:\n  init_args:\n    audio_pretrained: null\n    audio_config: {}\n")
    return name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, action="append", required=True)
    parser.add_argument("--ckpt", type=Path, default=None)
    parser.add_argument("--frames", type=int, nargs="+", default=[250, 750])
    parser.add_argument("--num-samples", type=int, default=1)
    parser.add_argument("--window", type=int, default=None, help="default: the model's eval_window")
    parser.add_argument("--no-prefix", action="store_true", help="time streaming only")
    parser.add_argument("--train-steps", type=int, default=0)
    parser.add_argument("--train-frames", type=int, default=64)
    parser.add_argument("--random-audio-weights", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--precision", choices=("32-true", "bf16-mixed"), default="32-true",
                        help="generation precision (bf16-mixed: bf16 autocast)")
    parser.add_argument("--audio-feature-cache", action="store_true",
                        help="stream: cache wav2vec2's CNN features of past audio")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    model, size, window = prepare(args.config, args.random_audio_weights, args.ckpt, args.window)
    g = torch.Generator().manual_seed(0)

    def inputs(frames: int, batch: int = 1):
        return random_inputs(model, frames, size, g, batch)

    options = {}
    if args.precision != "32-true":
        options["precision"] = args.precision
    if args.audio_feature_cache:
        options["audio_feature_cache"] = True
    video, audio = inputs(window)
    model.generate(video, audio, 1, window, **options)  # warm-up
    seconds, seconds_prefix = [], []
    for frames in args.frames:
        video, audio = inputs(frames)
        start = time.perf_counter()
        model.generate(video, audio, args.num_samples, window, mode="stream", **options)
        seconds.append(time.perf_counter() - start)
        if not args.no_prefix:
            start = time.perf_counter()
            model.generate(video, audio, args.num_samples, window, mode="prefix")
            seconds_prefix.append(time.perf_counter() - start)
        print(f"{frames:5d} frames: stream {seconds[-1]:8.2f} s ({frames / 25 / seconds[-1]:.2f}x real time)"
              + ("" if args.no_prefix else f"   prefix {seconds_prefix[-1]:8.2f} s"), flush=True)
    result = {
        "config": [str(c) for c in args.config], "image_size": size, "window": window,
        "num_samples": args.num_samples, "threads": torch.get_num_threads(), "precision": args.precision,
        "audio_feature_cache": args.audio_feature_cache,
        "machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "frames": args.frames, "seconds": seconds, "seconds_prefix": seconds_prefix,
        "realtime_factor": [f / 25 / s for f, s in zip(args.frames, seconds, strict=True)],
    }
    if len(args.frames) >= 2:
        result["stream_growth"] = seconds[-1] / seconds[0]
        if seconds_prefix:
            result["prefix_over_stream_at_longest"] = seconds_prefix[-1] / seconds[-1]
    if args.train_steps:
        model.train()
        model.log = model.log_dict = lambda *a, **k: None
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
        video, audio = inputs(args.train_frames)
        batch = {"speaker_video": video, "speaker_audio": audio,
                 "listener_3dmm": torch.randn(1, args.train_frames, 58) * 0.1,
                 "speaker_3dmm": torch.randn(1, args.train_frames, 58) * 0.1}
        times, cpu_times = [], []
        for step in range(args.train_steps + 1):
            start, cpu_start = time.perf_counter(), time.process_time()
            optimizer.zero_grad(set_to_none=True)
            model.hparams.appropriate_reconstruction = False  # no neighbours in a random batch
            model.loss_terms(batch, 2)["loss"].backward()
            optimizer.step()
            if step:  # the first step is warm-up
                times.append(time.perf_counter() - start)
                cpu_times.append(time.process_time() - cpu_start)
        result["train_step_seconds"] = sum(times) / len(times)
        result["train_step_cpu_seconds"] = sum(cpu_times) / len(cpu_times)
        result["train_frames"] = args.train_frames
        print(f"train step (batch 1, {args.train_frames} frames, stage 2): {result['train_step_seconds']:.2f} s "
              f"wall, {result['train_step_cpu_seconds']:.2f} s CPU (process, all threads)")
    result["peak_rss_mib"] = peak_rss_mib()
    result["loadavg_1min"] = os.getloadavg()[0]
    print(f"peak RSS {result['peak_rss_mib']:.0f} MiB; load average {result['loadavg_1min']:.1f} "
          f"on {os.cpu_count()} cores")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp.write_text(json.dumps(result, indent=2))
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
