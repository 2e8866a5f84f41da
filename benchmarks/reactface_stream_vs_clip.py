"""REACT metrics of ReactFace's streaming generation vs whole-clip generation, with the same noise.

    python benchmarks/reactface_stream_vs_clip.py --config zoo/demo/reactface.yaml \
        --weights checkpoints/weights/reactface.demo.safetensors --json OUT

Issue 4: "where a component cannot be streamed exactly (wav2vec2 attends over its whole input),
use a bounded left context, document it, and measure the difference in the REACT metrics
between streaming and whole-clip generation". Every variant generates K reactions for every
clip of the split (the DataModule's evaluation clips, first ``eval_clip_length`` frames) with the
same noise (one generator seeded per clip; the windows draw it in the same order), and is scored
with :func:`zoo.metrics.react.score` (``--protocol``, default facezoo) against the split's
appropriate-reaction matrix. Variants:

* ``clip``: the whole-clip path of training/validation: the speaker encoder over the whole clip
  (wav2vec 2.0 over all 30 s of audio, bidirectional), then the window-by-window rollout.
* ``stream``: ``generate(mode="stream")`` with the model's ``audio_context_frames``.
* ``stream:ctx=N``: streaming with N frames of audio context; ``stream:cache``: with
  ``audio_feature_cache``; ``stream:bf16``: ``precision="bf16-mixed"``; options combine
  (``stream:bf16:cache``).
* ``prefix``: RF's re-encoding of the whole prefix per window (slow: O(T^2)).

For each variant the table also gives the mean absolute difference of its reactions from the
``clip`` reactions (same noise), in face-state units.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
import yaml


def parse_variant(name: str) -> dict:
    """``stream:ctx=8:cache:bf16`` -> generate() keyword arguments (``clip`` -> {"clip": True})."""
    head, *options = name.split(":")
    if head == "clip" and not options:
        return {"clip": True}
    if head not in ("stream", "prefix"):
        raise ValueError(f"variant {name!r}: expected clip, prefix or stream[:ctx=N][:cache][:bf16]")
    kwargs: dict = {"mode": head}
    for option in options:
        if option == "cache":
            kwargs["audio_feature_cache"] = True
        elif option == "bf16":
            kwargs["precision"] = "bf16-mixed"
        elif option.startswith("ctx="):
            kwargs["audio_context_frames"] = int(option[4:])
        else:
            raise ValueError(f"variant {name!r}: unknown option {option!r} (ctx=N, cache, bf16)")
    return kwargs


def datamodule_from_config(configs: list[Path]):
    """The config's REACT DataModule (``data.init_args``; later files override earlier ones)."""
    from datamodules.react import REACTDataModule

    init: dict = {}
    for path in configs:
        data = (yaml.safe_load(path.read_text()) or {}).get("data") or {}
        init.update(data.get("init_args") or {})
    init["num_workers"] = 0
    return REACTDataModule(**init)


@torch.no_grad()
def generate_split(model, loader, variant: dict, num_samples: int, seed: int, max_clips: int | None):
    """(N, K, T, 58) predictions, (N, T, 58) listeners and speakers in the split's order."""
    preds, listeners, speakers = [], [], []
    seen = 0
    for batch in loader:
        video, audio, frames = model._speaker_inputs(batch)
        for i in range(batch["listener_3dmm"].shape[0]):
            if max_clips is not None and seen >= max_clips:
                break
            g = torch.Generator().manual_seed(seed + int(batch["index"][i]))
            v = None if video is None else video[i:i + 1]
            a = None if audio is None else audio[i:i + 1]
            if variant.get("clip"):
                net = model.net
                encoding = net.encode_speaker(v, a, frames)
                out, _ = net.rollout(encoding, model.hparams.eval_window, repeats=num_samples, generator=g)
                out = out.float().reshape(1, num_samples, frames, -1)
            else:
                out = model.generate(v, a, num_samples, num_frames=frames, generator=g, **variant)
            preds.append(out)
            listeners.append(batch["listener_3dmm"][i:i + 1].float())
            speakers.append(batch["speaker_3dmm"][i:i + 1].float())
            seen += 1
    return torch.cat(preds), torch.cat(listeners), torch.cat(speakers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, action="append", required=True,
                        help="the model's training config (its data section builds the DataModule)")
    parser.add_argument("--weights", required=True, help=".safetensors / .ckpt / manifest name (zoo.load_model)")
    parser.add_argument("--split", default="val", choices=("val", "test"))
    parser.add_argument("--num-samples", type=int, default=10)
    parser.add_argument("--variants", nargs="+", default=["clip", "stream", "stream:cache", "stream:bf16"])
    parser.add_argument("--protocol", default="facezoo")
    parser.add_argument("--max-clips", type=int, default=None, help="score only the first N clips")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    for path in args.config:
        if not path.is_file():
            raise FileNotFoundError(f"--config {path}: no such file")
    variants = {name: parse_variant(name) for name in args.variants}
    if "clip" not in variants:
        variants = {"clip": {"clip": True}, **variants}  # the reference of the difference column
    torch.set_num_threads(args.threads)

    import zoo
    from zoo.metrics.react import score

    model = zoo.load_model(args.weights)
    datamodule = datamodule_from_config(args.config)
    datamodule.setup("validate" if args.split == "val" else "test")
    loader = datamodule.val_dataloader() if args.split == "val" else datamodule.test_dataloader()
    neighbours = torch.as_tensor(datamodule.neighbour_matrix(args.split))
    results: dict[str, dict] = {}
    reference = None
    for name, variant in variants.items():
        start = time.perf_counter()
        preds, listeners, speakers = generate_split(model, loader, variant, args.num_samples, args.seed,
                                                    args.max_clips)
        seconds = time.perf_counter() - start
        n = preds.shape[0]
        metrics = score(preds, listeners, speakers, neighbours[:n, :n], protocol=args.protocol, progress=False)
        if reference is None:
            reference = preds
        row = {**metrics, "mean_abs_diff_vs_clip": float((preds - reference).abs().mean()),
               "generate_seconds": round(seconds, 1)}
        results[name] = row
        print(f"{name:22s} " + "  ".join(f"{k} {v:.4f}" for k, v in row.items()), flush=True)
    out = {"config": [str(c) for c in args.config], "weights": str(args.weights), "split": args.split,
           "clips": int(reference.shape[0]), "frames": int(reference.shape[2]), "num_samples": args.num_samples,
           "protocol": args.protocol, "variants": results}
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp.write_text(json.dumps(out, indent=2))
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
