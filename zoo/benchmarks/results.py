"""Benchmark result records: one JSON file per (suite, model or reference), written atomically.

Layout: ``<results>/<suite>/<name>.json``. A record says what was scored (model name, weights
sha256, where the weights came from), on what (data description, split, frames, seed), with
what (package versions, git commit) and how long it took; ``metrics`` maps a protocol name to
``{metric: value}`` (NaN is stored as null). Records are the leaderboard's only input besides
the checkpoint manifest.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import re
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from datamodules.features.io import atomic_path

__all__ = [
    "SCHEMA_VERSION",
    "BenchmarkResult",
    "git_commit",
    "file_sha256",
    "package_versions",
    "read_results",
    "result_path",
    "safe_name",
    "write_result",
]

SCHEMA_VERSION = 1
KINDS = ("model", "reference")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class BenchmarkResult:
    """One benchmarked model or reference on one suite."""

    suite: str
    name: str
    kind: str  # "model" or "reference"
    metrics: dict[str, dict[str, float | None]]  # protocol -> metric -> value
    leaderboard_protocol: str  # which entry of ``metrics`` the leaderboard shows
    data: dict[str, Any]
    seed: int
    method: str | None = None
    weights_sha256: str | None = None
    source: dict[str, Any] = field(default_factory=dict)
    protocol: dict[str, Any] = field(default_factory=dict)  # K, split, frames, feature space...
    versions: dict[str, str | None] = field(default_factory=dict)
    git_commit: str | None = None
    wall_time_s: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    schema: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind: expected one of {KINDS}, got {self.kind!r}")
        if self.leaderboard_protocol not in self.metrics:
            raise ValueError(f"leaderboard_protocol {self.leaderboard_protocol!r} is not a key of metrics "
                             f"({sorted(self.metrics)})")
        self.metrics = {p: {k: _finite_or_none(v) for k, v in m.items()} for p, m in self.metrics.items()}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any], source: str = "record") -> BenchmarkResult:
        if not isinstance(record, Mapping):
            raise ValueError(f"{source}: expected a JSON object, got {type(record).__name__}")
        if record.get("schema") != SCHEMA_VERSION:
            raise ValueError(f"{source}: schema {record.get('schema')!r}, expected {SCHEMA_VERSION} "
                             "(re-run `facezoo benchmark` to regenerate it)")
        known = set(cls.__dataclass_fields__)
        missing = {"suite", "name", "kind", "metrics", "leaderboard_protocol", "data", "seed"} - set(record)
        if missing:
            raise ValueError(f"{source}: missing fields {sorted(missing)}")
        try:
            return cls(**{k: v for k, v in record.items() if k in known})
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: {err}") from err

    @property
    def shown(self) -> dict[str, float | None]:
        """The metrics the leaderboard shows."""
        return self.metrics[self.leaderboard_protocol]


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def safe_name(name: str) -> str:
    """A file name for a model name (``transae.demo`` stays; other characters become ``_``)."""
    cleaned = _SAFE.sub("_", name).strip("._")
    if not cleaned:
        raise ValueError(f"name: {name!r} has no usable characters for a file name")
    return cleaned


def result_path(results_dir: str | os.PathLike, suite: str, name: str) -> Path:
    return Path(results_dir) / suite / f"{safe_name(name)}.json"


def write_result(result: BenchmarkResult, results_dir: str | os.PathLike) -> Path:
    """Write ``result`` to ``<results_dir>/<suite>/<name>.json`` through a temporary file."""
    path = result_path(results_dir, result.suite, result.name)
    text = json.dumps(result.to_dict(), indent=1, sort_keys=True, allow_nan=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text)
        tmp.chmod(0o644)  # mkstemp makes 0600; results are shared files
    return path


def read_results(results_dir: str | os.PathLike) -> list[BenchmarkResult]:
    """Every ``<suite>/<name>.json`` under ``results_dir``, sorted by (suite, kind, name)."""
    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"--results {root}: not a directory (expected <suite>/<name>.json files "
                                "written by `facezoo benchmark --suite ...`)")
    results = []
    for path in sorted(root.glob("*/*.json")):
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from err
        result = BenchmarkResult.from_dict(record, source=str(path))
        if result.suite != path.parent.name:
            raise ValueError(f"{path}: suite {result.suite!r} does not match its folder {path.parent.name!r}")
        results.append(result)
    return sorted(results, key=lambda r: (r.suite, r.kind, r.name))


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_versions() -> dict[str, str | None]:
    """Versions that decide the numbers: python, torch, lightning, numpy, facezoo."""
    from importlib import metadata

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in ("torch", "lightning", "numpy", "facezoo"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def git_commit(path: str | os.PathLike | None = None) -> str | None:
    """HEAD of the checkout holding ``path`` (default: this package), ``+dirty`` when tracked
    files differ from it; None outside a git checkout or without git."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                               capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "") if head else None
