"""The one command line of facezoo: ``facezoo``, ``lightning`` and ``python -m zoo``.

* ``fit | validate | test | predict`` go to :class:`zoo.lightning_cli.ZooCLI`, a ``LightningCLI`` in subclass mode
  for both model and data, so ``--config zoo/<name>.yaml``, ``--print_config`` and swapping any
  ``class_path`` from the command line work as in Lightning's docs.
* Zoo subcommands (``make-data``, ``score``, ...) are argparse programs registered in
  :data:`ZOO_COMMANDS`.
* The ``lightning`` package (>= 2.5.1) installs no ``lightning`` script; the name belongs to
  lightning-sdk (the Lightning AI cloud CLI). Our ``lightning`` script serves our subcommands and
  forwards anything else to lightning-sdk when it is installed.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import subprocess
import sys
from collections.abc import Sequence

LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test", "predict")

# name -> (module with configure_parser(parser) and run(args) -> int, one-line help)
ZOO_COMMANDS: dict[str, tuple[str, str]] = {
    "make-data": ("datamodules.synthetic.cli", "write the embedded world in a real dataset's layout"),
    "score": ("zoo.metrics.cli", "score predicted reactions with the REACT metrics"),
    "generate": ("zoo.generate", "generate with a trained zoo model (add --config C --help for its inputs)"),
}
# Commands whose module is added by later work register here only once the module exists.
_OPTIONAL_COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": ("datamodules.features.prepare", "turn raw videos into the zoo's representations (MediaPipe)"),
    "download": ("checkpoints.cli", "download published weights by name"),
    "export": ("checkpoints.export", "publish a trained run: slim weights, manifest entry, model card"),
    "benchmark": ("zoo.benchmark", "run a leaderboard benchmark suite"),
}
ZOO_COMMANDS.update({name: entry for name, entry in _OPTIONAL_COMMANDS.items()
                     if importlib.util.find_spec(entry[0].rsplit(".", 1)[0]) is not None
                     and importlib.util.find_spec(entry[0]) is not None})


def _zoo_command(name: str, argv: Sequence[str], prog: str) -> int:
    module_name, help_text = ZOO_COMMANDS[name]
    module = importlib.import_module(module_name)
    argv = list(argv)
    # Commands whose options depend on an earlier one (generate: the model of --config adds its
    # own inputs) parse in two phases; their first phase leaves --help to the second.
    two_phase = getattr(module, "ACCEPTS_EXTRA_ARGS", False)
    parser = argparse.ArgumentParser(prog=f"{prog} {name}", description=help_text,
                                     add_help=not (two_phase and any(
                                         option in argv for option in getattr(module, "MODEL_OPTIONS", ("--config",)))))
    module.configure_parser(parser)
    if two_phase:
        args, _ = parser.parse_known_args(argv)
        args.argv = argv
    else:
        args = parser.parse_args(argv)
    try:
        return int(module.run(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        parser.exit(2, f"{prog} {name}: error: {err}\n")


def _usage(prog: str) -> str:
    lines = [
        f"usage: {prog} COMMAND [options]",
        "",
        "Training and evaluation (LightningCLI; `COMMAND --help` for all options):",
        *(f"  {c:<12}{h}" for c, h in (
            ("fit", "train a model:  fit --config zoo/demo/transae.yaml"),
            ("validate", "run the validation loop"),
            ("test", "run the test loop"),
            ("predict", "run the predict loop"),
        )),
        "",
        "Zoo commands:",
        *(f"  {c:<12}{h}" for c, (_, h) in ZOO_COMMANDS.items()),
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None, prog: str = "facezoo") -> int:
    """Entry point of ``facezoo`` and ``python -m zoo``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(_usage(prog))
        return 0 if argv else 2
    command = argv[0]
    if command in ZOO_COMMANDS:
        return _zoo_command(command, argv[1:], prog)
    if command in LIGHTNING_SUBCOMMANDS:
        # LightningCLI warns when given args that equal sys.argv; let it read sys.argv itself then.
        from zoo.lightning_cli import ZooCLI  # imported here: `--help` and zoo commands stay fast

        ZooCLI(args=None if argv == sys.argv[1:] else argv, parser_kwargs={"prog": prog})
        return 0
    sys.stderr.write(f"{prog}: unknown command {command!r}\n\n" + _usage(prog))
    return 2


def lightning_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lightning`` script: our subcommands, else lightning-sdk's CLI."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] in LIGHTNING_SUBCOMMANDS or argv[0] in ZOO_COMMANDS:
        return main(argv, prog="lightning")
    if importlib.util.find_spec("lightning_sdk") is not None:
        # lightning-sdk owns the `lightning` name since Lightning 2.5.1 (PL PR #19442, #20588).
        return subprocess.call([sys.executable, "-m", "lightning_sdk.cli.entrypoint", *argv], env=os.environ.copy())
    sys.stderr.write(
        f"lightning: {argv[0]!r} is not a facezoo command.\n"
        f"facezoo's `lightning` runs {', '.join(LIGHTNING_SUBCOMMANDS)} and {', '.join(ZOO_COMMANDS)}; "
        "other commands belong to the Lightning AI cloud CLI (lightning-sdk), which is not installed "
        "(pip install lightning-sdk).\n"
    )
    return 2
