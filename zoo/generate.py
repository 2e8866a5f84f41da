"""``facezoo generate``: run a trained zoo model on a user's inputs and write the results.

    facezoo generate --config zoo/<name>.yaml --ckpt RUN.ckpt --out DIR [--num-samples K]
                     [--seed S] [--device cpu|cuda] [method-specific inputs]
    facezoo generate --ckpt cmmnet.demo --out DIR [method-specific inputs]     # published weights

With ``--config`` the model is built from the config exactly as ``fit`` builds it (``ZooCLI`` with
``run=False``) and ``--ckpt`` is a Lightning checkpoint of it (``torch.load(weights_only=True)``),
an exported weights file or a published model's name (verified download, as ``facezoo download``);
every tensor must fit. Without ``--config``, ``--ckpt`` names published weights or an exported
file, and the model is built from the config the weights carry (:func:`zoo.load_model`). Then the
model class takes over. A model class supports ``generate`` by defining

* ``add_generate_arguments(parser: argparse.ArgumentParser) -> None`` (classmethod): its inputs,
  e.g. ``--speaker-video``/``--speaker-audio`` for ReactFace, ``--neutral-image``/``--label`` for
  CMM-Net, ``--affect`` for DyadGAN;
* ``generate_to_files(args: argparse.Namespace, out_dir: Path) -> list[Path]`` (method): run
  generation and write the outputs (npy, mp4, png) atomically, returning the paths written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ACCEPTS_EXTRA_ARGS = True  # the model named by --config (or by --ckpt's weights) adds its own input options
MODEL_OPTIONS = ("--config", "--ckpt")  # either names the model, so --help waits for its inputs


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", action="append", type=Path, default=None,
                        help="the model's zoo config (repeatable, later ones win), e.g. zoo/reactface.yaml; "
                             "not needed when --ckpt is published or exported weights, which carry their config")
    parser.add_argument("--ckpt", default=None,
                        help="the trained weights: a Lightning checkpoint (.ckpt) of --config's model, an exported "
                             ".safetensors file, or a published model's name (`facezoo download --list`); omit only "
                             "to smoke-test --config's untrained model")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--num-samples", type=int, default=1, help="samples per input (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")


def build_model(configs: list[Path]):
    """The LightningModule a config describes, built as ``fit`` would build it."""
    from zoo.lightning_cli import ZooCLI

    for config in configs:
        if not config.is_file():
            raise FileNotFoundError(f"--config {config}: no such file")
    args = [a for config in configs for a in ("--config", str(config))]
    # No logger or callbacks are needed to generate; don't let the config create run folders.
    args += ["--trainer.logger", "false", "--trainer.callbacks", "[]"]
    cli = ZooCLI(args=args, run=False, save_config_callback=None)
    return cli.model


def load_weights(model, ckpt: Path) -> None:
    """A Lightning checkpoint's ``state_dict`` into ``model`` (every tensor must fit)."""
    import torch

    if not ckpt.is_file():
        raise FileNotFoundError(f"--ckpt {ckpt}: no such file")
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    if "state_dict" not in state:
        raise ValueError(f"--ckpt {ckpt}: not a Lightning checkpoint (no 'state_dict' entry)")
    try:
        missing, unexpected = model.load_state_dict(state["state_dict"], strict=False)
    except RuntimeError as err:  # shape mismatches: a checkpoint of another configuration
        raise ValueError(f"--ckpt {ckpt} does not match the model of --config (was it trained with "
                         f"another configuration?): {str(err).splitlines()[1].strip()}") from err
    if missing or unexpected:
        raise ValueError(f"--ckpt {ckpt} does not match the config's model: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]} (is it a checkpoint of this config?)")


def published_model(ckpt: str | None):
    """Without ``--config``: the model that published or exported weights ``--ckpt`` describe, built
    from the config they carry, weights loaded (:func:`zoo.load_model`)."""
    if ckpt is None:
        raise ValueError("expected --config (a zoo config, with --ckpt for its trained weights) or --ckpt naming "
                         "published weights (e.g. --ckpt cmmnet.demo; list them with `facezoo download --list`)")
    if ckpt.endswith(".ckpt"):
        raise ValueError(f"--ckpt {ckpt}: a Lightning checkpoint does not say how to build its model; pass the "
                         "--config it was trained with")
    from zoo.common.pretrained import load_model

    return load_model(ckpt)


def load_checkpoint(model, ckpt: str) -> None:
    """``--ckpt`` into ``--config``'s model: a Lightning checkpoint, or published / exported weights
    (a manifest name is downloaded and verified); every tensor must fit."""
    if ckpt.endswith(".ckpt"):
        load_weights(model, Path(ckpt))
    else:
        from zoo.common.pretrained import load_pretrained

        load_pretrained(model, ckpt, argument="--ckpt")


def run(args: argparse.Namespace) -> int:
    import lightning as L
    import torch

    if args.num_samples < 1:
        raise ValueError(f"--num-samples must be >= 1, got {args.num_samples}")
    model = build_model(args.config) if args.config else published_model(args.ckpt)
    model_class = type(model)
    if not (hasattr(model_class, "add_generate_arguments") and hasattr(model_class, "generate_to_files")):
        raise ValueError(f"{model_class.__name__} does not support `facezoo generate` yet "
                         "(it defines no add_generate_arguments/generate_to_files)")
    parser = argparse.ArgumentParser(prog=f"facezoo generate ({model_class.__name__})")
    configure_parser(parser)
    model_class.add_generate_arguments(parser)
    full = parser.parse_args(args.argv)
    if args.config and args.ckpt is not None:  # after parsing: a mistyped option fails before weights are read or downloaded
        load_checkpoint(model, args.ckpt)
    elif args.ckpt is None:
        print("facezoo generate: no --ckpt given, generating with untrained weights", file=sys.stderr)
    L.seed_everything(full.seed, verbose=False)
    model = model.to(torch.device(full.device)).eval()
    full.out.mkdir(parents=True, exist_ok=True)
    written = model.generate_to_files(full, full.out)
    for path in written:
        print(path)
    return 0
