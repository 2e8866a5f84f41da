"""Where a ReactFace streaming window's time goes (paper scale: 224 px, wav2vec2-base, window 8).

    python benchmarks/reactface_profile.py --config zoo/reactface.yaml --random-audio-weights \
        --frames 104 --threads 1 --precision 32-true --json OUT

Builds the model from the config as ``fit`` does (``--random-audio-weights``: the wav2vec2-base
architecture with random weights, no download; timing only), streams ``--frames`` frames of
random 224-px video and audio through ``ReactFace.generate(mode="stream")`` after one warm-up
clip, and times every component per window with hooks: wall time (``perf_counter``) and CPU time
of the process (``process_time``: with one thread on a machine shared with other jobs, the CPU time
is close to what the window costs on an idle core; with several threads it also counts OpenMP
spinning). One window of 8 frames at 25 fps has a 320 ms budget. Rows nest: "video encoder"
includes its conv rows, "wav2vec2" its CNN / transformer rows; "other" = total - speaker
encoder - reaction side (masks, bookkeeping, timeline).

Writes ``{"rows": {name: {"wall_ms": .., "cpu_ms": ..}}, "window_wall_ms": .., "realtime_factor": .., ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reactface_streaming import prepare, random_inputs  # noqa: E402  (same model construction as the speed benchmark)

Clock = tuple[float, float]


class Timers:
    """Accumulated (wall, cpu) seconds per name; nested calls of one name count once."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self._open: dict[str, tuple[int, Clock]] = {}

    def start(self, name: str) -> None:
        depth, clock = self._open.get(name, (0, (0.0, 0.0)))
        if depth == 0:
            clock = (time.perf_counter(), time.process_time())
        self._open[name] = (depth + 1, clock)

    def stop(self, name: str) -> None:
        depth, (wall, cpu) = self._open[name]
        if depth == 1:
            self.wall[name] += time.perf_counter() - wall
            self.cpu[name] += time.process_time() - cpu
        self._open[name] = (depth - 1, (wall, cpu))

    def clear(self) -> None:
        self.wall.clear()
        self.cpu.clear()

    def hook_module(self, name: str, module: torch.nn.Module) -> None:
        module.register_forward_pre_hook(lambda m, a: self.start(name))
        module.register_forward_hook(lambda m, a, o: self.stop(name))

    def wrap_method(self, name: str, owner: type, method: str) -> None:
        original = getattr(owner, method)

        def timed(*args, **kwargs):
            self.start(name)
            try:
                return original(*args, **kwargs)
            finally:
                self.stop(name)

        setattr(owner, method, timed)


def instrument(model, timers: Timers) -> list[str]:
    """Hooks on the components of one streaming window; returns the row names in print order."""
    from zoo.common.streaming import SpeakerEncoderStream, VideoEncoderStream
    from zoo.reactface.nets import ReactFaceNet

    net = model.net
    speaker = net.speaker_encoder
    rows = ["speaker encoder (stream step)"]
    timers.wrap_method(rows[0], SpeakerEncoderStream, "step")
    if speaker.motion_input == "face_state":
        rows.append("  face-state encoder")
        timers.hook_module(rows[-1], speaker.video_encoder)
    elif speaker.motion_input == "video":
        rows.append("  video encoder")
        timers.wrap_method(rows[-1], VideoEncoderStream, "__call__")
        for name in ("conv1", "conv2", "conv3", "conv4", "conv5"):
            rows.append(f"    {name} Conv3d")
            timers.hook_module(rows[-1], getattr(speaker.video_encoder, name).conv)
    if speaker.audio_encoder is not None:
        rows.append("  speech encoder")
        timers.wrap_method(rows[-1], SpeakerEncoderStream, "_encode_audio")
        w2v = getattr(speaker.audio_encoder, "model", None)
        if w2v is not None:
            for label, module in (("    wav2vec2 CNN feature encoder", w2v.feature_extractor),
                                  ("    wav2vec2 feature projection", w2v.feature_projection),
                                  ("    wav2vec2 transformer (incl. pos. conv)", w2v.encoder),
                                  ("      positional conv", w2v.encoder.pos_conv_embed)):
                rows.append(label)
                timers.hook_module(label, module)
    rows.append("  speaker attention layers")
    for layer in (speaker.video_layer, speaker.fusion_layer1, speaker.fusion_layer2):
        if layer is not None:
            for child in layer.children():
                timers.hook_module(rows[-1], child)
    rows.append("reaction side (step, K samples)")
    timers.wrap_method(rows[-1], ReactFaceNet, "step")
    for label, module in (("  past interaction encoder", net.past_encoder), ("  CIE", net.cie),
                          ("  sampling decoder", net.sampling_decoder),
                          ("  listener reaction decoder", net.reaction_decoder)):
        rows.append(label)
        timers.hook_module(label, module)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, action="append", required=True)
    parser.add_argument("--ckpt", type=Path, default=None)
    parser.add_argument("--frames", type=int, default=104, help="timed clip length (13 windows of 8)")
    parser.add_argument("--num-samples", type=int, default=1)
    parser.add_argument("--window", type=int, default=None, help="default: the model's eval_window")
    parser.add_argument("--precision", choices=("32-true", "bf16-mixed"), default="32-true")
    parser.add_argument("--audio-context-frames", type=int, default=None, help="default: the model's")
    parser.add_argument("--audio-feature-cache", action="store_true",
                        help="cache wav2vec2's CNN features of past audio (Wav2Vec2FeatureStream)")
    parser.add_argument("--random-audio-weights", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1, help="timed clips; the figures are their mean")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.frames < 1 or args.repeats < 1 or args.threads < 1:
        parser.error("--frames, --repeats and --threads must be positive")
    torch.set_num_threads(args.threads)

    model, size, window = prepare(args.config, args.random_audio_weights, args.ckpt, args.window)
    g = torch.Generator().manual_seed(0)

    def run(frames: int) -> None:
        video, audio = random_inputs(model, frames, size, g)
        options = {"precision": args.precision, "audio_context_frames": args.audio_context_frames,
                   "audio_feature_cache": args.audio_feature_cache}
        defaults = {"precision": "32-true", "audio_context_frames": None, "audio_feature_cache": False}
        # only the options that differ from the defaults: the script also profiles older checkouts
        model.generate(video, audio, args.num_samples, window, mode="stream",
                       **{k: v for k, v in options.items() if v != defaults[k]})

    timers = Timers()
    rows = instrument(model, timers)
    run(2 * window)  # warm-up: oneDNN primitive creation, allocator
    timers.clear()
    load_before = os.getloadavg()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(args.repeats):
        run(args.frames)
    windows = args.repeats * -(-args.frames // window)
    total_wall = (time.perf_counter() - wall0) / windows * 1000
    total_cpu = (time.process_time() - cpu0) / windows * 1000
    load_after = os.getloadavg()

    def ms(table: dict[str, float], name: str) -> float:
        return table.get(name, 0.0) / windows * 1000

    result_rows = {name.strip(): {"wall_ms": ms(timers.wall, name), "cpu_ms": ms(timers.cpu, name)} for name in rows}
    accounted = [n for n in ("speaker encoder (stream step)", "reaction side (step, K samples)")]
    result_rows["other (masks, timeline, bookkeeping)"] = {
        "wall_ms": total_wall - sum(result_rows[n]["wall_ms"] for n in accounted),
        "cpu_ms": total_cpu - sum(result_rows[n]["cpu_ms"] for n in accounted),
    }
    budget = window / 25 * 1000
    print(f"{'component':44s} {'wall ms':>9s} {'cpu ms':>9s} {'% cpu':>6s}   per window of {window} frames "
          f"({budget:.0f} ms budget)")
    for name in rows + ["other (masks, timeline, bookkeeping)"]:
        row = result_rows[name.strip()]
        print(f"{name:44s} {row['wall_ms']:9.1f} {row['cpu_ms']:9.1f} {100 * row['cpu_ms'] / total_cpu:6.1f}")
    print(f"{'total':44s} {total_wall:9.1f} {total_cpu:9.1f}")
    print(f"real-time factor: wall {budget / total_wall:.2f}x, cpu {budget / total_cpu:.2f}x "
          f"(threads {args.threads}, precision {args.precision}, audio feature cache "
          f"{args.audio_feature_cache}, K {args.num_samples}); "
          f"load average {load_before[0]:.1f} -> {load_after[0]:.1f} on {os.cpu_count()} cores")
    result = {
        "config": [str(c) for c in args.config], "image_size": size, "window": window, "frames": args.frames,
        "repeats": args.repeats, "num_samples": args.num_samples, "threads": args.threads,
        "precision": args.precision, "audio_feature_cache": args.audio_feature_cache, "audio_context_frames": args.audio_context_frames
        if args.audio_context_frames is not None else model.hparams.audio_context_frames,
        "rows": result_rows, "window_wall_ms": total_wall, "window_cpu_ms": total_cpu,
        "realtime_factor": budget / total_wall, "realtime_factor_cpu": budget / total_cpu,
        "loadavg_1min": [load_before[0], load_after[0]], "cpu_count": os.cpu_count(),
    }
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp.write_text(json.dumps(result, indent=2))
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
