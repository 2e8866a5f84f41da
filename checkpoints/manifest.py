"""The manifest of published weights: one :class:`ManifestEntry` per weights file.

``checkpoints/manifest.json`` (shipped with the package) lists the weights trained on the
embedded world (``python -m checkpoints.build``); a lab publishes its own with ``facezoo export``
and either merges the entry into a manifest (``--manifest``) or points ``$FACEZOO_MANIFEST`` at
its own file. Field meanings are in ``docs/checkpoints.md``.

This module imports neither torch nor the zoo, so ``zoo.list_models()`` stays cheap.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_MANIFEST",
    "MANIFEST_FORMAT",
    "Manifest",
    "ManifestEntry",
    "UnknownModelError",
    "load_manifest",
    "manifest_path",
]

DEFAULT_MANIFEST = Path(__file__).with_name("manifest.json")
MANIFEST_FORMAT = 1
WEIGHT_FORMATS = ("safetensors", "torch")
# "method.tag": the timm / torchvision convention (conventions note, Sec. 7.12)
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*\.[a-z0-9][a-z0-9_\-]*$")
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
_URL_SCHEMES = ("https://", "http://", "hf://", "file://")


class UnknownModelError(ValueError):
    """A name that no manifest entry has; the message lists the known names."""


def _require(condition: bool, name: str, message: str) -> None:
    if not condition:
        raise ValueError(f"manifest entry {name!r}: {message}")


@dataclass
class ManifestEntry:
    """One published weights file.

    name: ``method.tag`` (e.g. ``reactface.demo``); method: the part before the dot.
    config: the model's ``{"class_path": ..., "init_args": {...}}`` (YAML primitives, as
        LightningCLI saves hyperparameters) or the path of a zoo yaml (its ``model`` section).
    url: ``https://``, ``http://``, ``hf://org/repo[@revision]/path``, ``file://`` or a path
        (relative paths are relative to the manifest's folder).
    sha256: the full hex digest of the file; size: its bytes.
    data: what it was trained on: ``{"description": str, "datamodule": {class_path, init_args}}``.
    metrics: what it reached (free-form JSON: ``{split or protocol: {metric: value}}``).
    license, versions (torch / lightning / facezoo / python it was exported with), format
    (``safetensors`` or ``torch`` = a state dict read with ``weights_only=True``), description,
    card (model card: path relative to the manifest, or URL), finetuned_from (a manifest name),
    created (ISO date), extra (any further keys, kept as they are).
    """

    name: str
    method: str
    config: dict[str, Any] | str
    url: str
    sha256: str
    size: int
    data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    license: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    format: str = "safetensors"
    description: str = ""
    card: str | None = None
    finetuned_from: str | None = None
    created: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    base_dir: Path | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        name = self.name
        _require(isinstance(name, str) and bool(NAME_PATTERN.match(name)), str(name),
                 "name must be 'method.tag' (lower case letters, digits, _ and -), e.g. 'reactface.demo'")
        _require(self.method == name.split(".", 1)[0], name,
                 f"method {self.method!r} must be the part of the name before the dot ({name.split('.', 1)[0]!r})")
        if isinstance(self.config, Mapping):
            _require(isinstance(self.config.get("class_path"), str), name,
                     "config must have a 'class_path' (and 'init_args') or be the path of a zoo yaml")
            _require(isinstance(self.config.get("init_args", {}), Mapping), name, "config.init_args must be a mapping")
        else:
            _require(isinstance(self.config, str) and self.config.endswith((".yaml", ".yml")), name,
                     f"config must be a {{class_path, init_args}} mapping or a .yaml path, got {self.config!r}")
        _require(isinstance(self.url, str) and bool(self.url), name, "url is empty")
        _require(isinstance(self.sha256, str) and bool(SHA256_PATTERN.match(self.sha256)), name,
                 f"sha256 must be 64 lower-case hex digits, got {self.sha256!r}")
        _require(isinstance(self.size, int) and self.size >= 0, name, f"size must be a byte count, got {self.size!r}")
        _require(self.format in WEIGHT_FORMATS, name, f"format must be one of {WEIGHT_FORMATS}, got {self.format!r}")
        for key in ("data", "metrics", "versions", "extra"):
            _require(isinstance(getattr(self, key), Mapping), name, f"{key} must be a JSON object")

    # ------------------------------------------------------------------ locations
    @property
    def is_remote(self) -> bool:
        return self.url.startswith(("https://", "http://", "hf://"))

    def location(self) -> str:
        """The url, with a manifest-relative path made absolute (URLs are returned as they are)."""
        if self.url.startswith(_URL_SCHEMES):
            return self.url
        path = Path(self.url).expanduser()
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        return str(path)

    def config_path(self) -> Path | None:
        """For a yaml config: its path (relative to the manifest's folder, else to the repository)."""
        if isinstance(self.config, Mapping):
            return None
        path = Path(self.config).expanduser()
        if path.is_absolute():
            return path
        candidates = [d / path for d in (self.base_dir, Path(__file__).resolve().parents[1]) if d is not None]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        return candidates[0] if candidates else path

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("base_dir", "extra")}
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base_dir: Path | None = None) -> ManifestEntry:
        if not isinstance(data, Mapping):
            raise ValueError(f"manifest entry must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)} - {"base_dir", "extra"}
        missing = [k for k in ("name", "method", "config", "url", "sha256", "size") if k not in data]
        if missing:
            raise ValueError(f"manifest entry {data.get('name', '?')!r}: missing {missing}")
        values = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(**values, extra=extra, base_dir=base_dir)


@dataclass
class Manifest:
    """Entries by name, and the file they came from (relative urls resolve against its folder)."""

    entries: dict[str, ManifestEntry] = field(default_factory=dict)
    path: Path | None = None

    def names(self) -> list[str]:
        return sorted(self.entries)

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def __iter__(self) -> Iterator[ManifestEntry]:
        return iter(self.entries[n] for n in self.names())

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, name: str) -> ManifestEntry:
        return self.get(name)

    def get(self, name: str) -> ManifestEntry:
        """The entry called ``name``, or :class:`UnknownModelError` listing the known names."""
        if name in self.entries:
            return self.entries[name]
        where = f" in {self.path}" if self.path is not None else ""
        close = difflib.get_close_matches(str(name), self.names(), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        known = ", ".join(self.names()) or "none"
        raise UnknownModelError(f"unknown model {name!r}{where}.{hint} Known models: {known}")

    def add(self, entry: ManifestEntry) -> None:
        """Add or replace ``entry``; a relative url keeps meaning the same file."""
        if entry.base_dir is not None and self.path is not None:
            def moved(value: str | None) -> str | None:
                if value is None or value.startswith(_URL_SCHEMES) or Path(value).is_absolute():
                    return value
                return os.path.relpath((entry.base_dir / value).resolve(), self.path.parent.resolve())

            entry = dataclasses.replace(entry, url=moved(entry.url), card=moved(entry.card), base_dir=self.path.parent)
        self.entries[entry.name] = entry

    def to_dict(self) -> dict[str, Any]:
        return {"format": MANIFEST_FORMAT, "models": [e.to_dict() for e in self]}

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the manifest (sorted by name) through a temporary file."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ValueError("Manifest.save: no path given and the manifest has none")
        text = json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"
        from datamodules.features.io import (
            atomic_path,  # lazy: `import zoo` reads manifests without cv2
        )

        with atomic_path(target) as tmp:
            tmp.write_text(text)
        return target


def manifest_path(path: str | os.PathLike | None = None) -> Path:
    """``path``, else ``$FACEZOO_MANIFEST``, else the shipped ``checkpoints/manifest.json``."""
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get("FACEZOO_MANIFEST")
    return Path(env).expanduser() if env else DEFAULT_MANIFEST


def load_manifest(path: str | os.PathLike | None = None) -> Manifest:
    """Read a manifest (default: ``$FACEZOO_MANIFEST`` or the shipped one), checking every entry."""
    target = manifest_path(path)
    if not target.is_file():
        raise FileNotFoundError(f"manifest {target}: no such file (expected a JSON manifest of published weights)")
    try:
        data = json.loads(target.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"manifest {target}: not valid JSON ({err})") from err
    if not isinstance(data, Mapping) or not isinstance(data.get("models"), list):
        raise ValueError(f"manifest {target}: expected an object with a 'models' list")
    if data.get("format", MANIFEST_FORMAT) != MANIFEST_FORMAT:
        raise ValueError(f"manifest {target}: format {data.get('format')!r}, this facezoo reads {MANIFEST_FORMAT}")
    manifest = Manifest(path=target)
    for raw in data["models"]:
        try:
            entry = ManifestEntry.from_dict(raw, base_dir=target.parent)
        except (TypeError, ValueError) as err:
            raise ValueError(f"manifest {target}: {err}") from err
        if entry.name in manifest.entries:
            raise ValueError(f"manifest {target}: {entry.name!r} is listed twice")
        manifest.entries[entry.name] = entry
    return manifest
