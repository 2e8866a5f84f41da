"""``facezoo download NAME [NAME ...] | --all [--cache-dir DIR]``: fetch published weights by
name (verified, cached) and print where each file is, e.g. to fill an air-gapped node's cache."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from checkpoints.manifest import load_manifest
from checkpoints.resolve import default_cache_dir, fetch


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME", help="manifest names (see --list)")
    parser.add_argument("--all", action="store_true", help="every model in the manifest")
    parser.add_argument("--list", action="store_true", help="list the manifest's models and exit")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help=f"cache folder for downloads (default {default_cache_dir()})")
    parser.add_argument("--manifest", type=Path, default=None,
                        help="manifest to read (default $FACEZOO_MANIFEST or the shipped checkpoints/manifest.json)")
    parser.add_argument("--quiet", action="store_true", help="no download progress on stderr")


def run(args: argparse.Namespace) -> int:
    manifest = load_manifest(args.manifest)
    if args.list:
        for entry in manifest:
            print(f"{entry.name}\t{entry.size / 1e6:.2f} MB\t{entry.url}")
        return 0
    if args.all == bool(args.names):
        raise ValueError("give model names or --all (not both); known models: " + (", ".join(manifest.names()) or "none"))
    entries = list(manifest) if args.all else [manifest.get(name) for name in args.names]  # unknown names fail first
    for entry in entries:
        path = fetch(entry, cache_dir=args.cache_dir, progress=not args.quiet)
        print(f"{entry.name}\t{path}")
        sys.stdout.flush()
    return 0
