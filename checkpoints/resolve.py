"""Resolve a weights URL to a verified local file: download, resume, verify sha256, cache.

Schemes (``docs/checkpoints.md``):

* ``https://`` / ``http://``: downloaded with urllib into ``<cache>/<stem>-<sha256[:12]><suffix>``
  (``$FACEZOO_HOME/checkpoints`` by default). Bytes go to ``<final>.part``; an interrupted
  download is resumed from it with an HTTP ``Range`` request (by the retries of one call, or by
  the next call); the file is moved into place with ``os.replace`` only once its sha256 matches.
  A mismatch deletes the partial file and raises :class:`ChecksumError`. A cached file is
  re-verified before every use (as torch.hub's ``check_hash``), so a corrupted cache is refused.
* ``hf://org/repo[@revision]/path/in/repo``: ``huggingface_hub.hf_hub_download`` into
  ``<cache>/huggingface`` (it honours ``HF_HUB_OFFLINE``), then verified.
* ``file://`` and plain paths: verified where they are (not copied).

Offline: ``FACEZOO_OFFLINE=1`` (or ``offline=True``) never opens a connection; a cached file is
used, a missing one raises FileNotFoundError naming the file expected in the cache.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from checkpoints.manifest import SHA256_PATTERN, ManifestEntry
from datamodules.home import facezoo_home
from datamodules.home import file_lock as _lock  # two fetches of one file must not share a .part

__all__ = ["ChecksumError", "default_cache_dir", "fetch", "sha256_file", "cached_path", "is_offline"]

CHUNK = 1 << 20
USER_AGENT = "facezoo-checkpoints"


class ChecksumError(ValueError):
    """A file whose sha256 is not the one expected (nothing is cached)."""


def default_cache_dir() -> Path:
    """``$FACEZOO_HOME/checkpoints``."""
    return facezoo_home() / "checkpoints"


def is_offline() -> bool:
    return os.environ.get("FACEZOO_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_sha(sha256: str | None, what: str) -> str | None:
    if sha256 is None:
        return None
    sha256 = sha256.lower()
    if not SHA256_PATTERN.match(sha256):
        raise ValueError(f"sha256 for {what}: expected 64 hex digits, got {sha256!r}")
    return sha256


def _verify(path: Path, sha256: str | None, source: str) -> None:
    if sha256 is None:
        return
    actual = sha256_file(path)
    if actual != sha256:
        raise ChecksumError(f"{path} (from {source}): sha256 mismatch: expected {sha256}, got {actual}")


def cached_path(url: str, sha256: str | None, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where an http(s) file is cached: the URL's file name with the hash (or the URL's) inside."""
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    name = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)).name or "weights"
    stem, suffix = (name.split(".", 1) + [""])[:2]
    key = sha256[:12] if sha256 else "url" + hashlib.sha1(url.encode()).hexdigest()[:12]
    return base / f"{stem}-{key}{'.' + suffix if suffix else ''}"


# ---------------------------------------------------------------------- http(s)
class _Progress:
    def __init__(self, enabled: bool, url: str, total: int | None) -> None:
        self.enabled, self.url, self.total, self.last = enabled, url, total, 0.0

    def __call__(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not final and now - self.last < 1.0):
            return
        self.last = now
        total = f"/{self.total / 1e6:.1f}" if self.total else ""
        print(f"facezoo: {self.url}: {done / 1e6:.1f}{total} MB", file=sys.stderr, flush=True)


def _download_once(url: str, part: Path, progress: bool, timeout: float) -> None:
    """One request; appends to ``part`` from its current size (HTTP Range) when the server
    answers 206, else starts over. Raises ConnectionError if the body ends early."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        status = response.status
        resumed = offset > 0 and status == 206
        if resumed:
            content_range = response.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {offset}-"):
                raise ConnectionError(f"{url}: server answered the range request with {content_range!r}")
        elif status != 200:
            raise ConnectionError(f"{url}: unexpected HTTP status {status}")
        start = offset if resumed else 0
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        report = _Progress(progress, url, total)
        done = start
        with open(part, "ab" if resumed else "wb") as out:
            while True:
                try:
                    block = response.read(CHUNK)
                except http.client.IncompleteRead as err:  # chunked bodies cut short
                    out.write(err.partial)
                    done += len(err.partial)
                    raise ConnectionError(f"{url}: connection closed after {done} bytes") from err
                if not block:
                    break
                out.write(block)
                done += len(block)
                report(done)
        report(done, final=True)
        if total is not None and done != total:
            raise ConnectionError(f"{url}: connection closed after {done} of {total} bytes")


def _download(url: str, target: Path, sha256: str | None, progress: bool, retries: int, timeout: float) -> Path:
    part = target.with_name(target.name + ".part")
    with _lock(target.parent / ".locks" / f"{target.name}.lock"):
        if target.is_file():  # another process finished it while we waited
            return target
        attempts = retries + 1
        for attempt in range(attempts):
            try:
                _download_once(url, part, progress, timeout)
                break
            except urllib.error.HTTPError as err:
                if err.code == 416 and part.exists():  # our partial file is no prefix of theirs
                    part.unlink()
                    continue
                if 400 <= err.code < 500:
                    raise FileNotFoundError(f"{url}: HTTP {err.code} {err.reason}") from err
                error: Exception = err
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as err:
                error = err
            if attempt == attempts - 1:
                kept = part.stat().st_size if part.exists() else 0
                raise ConnectionError(
                    f"downloading {url} failed after {attempts} attempt(s): {error}. "
                    f"{kept} bytes are kept in {part}; run again to resume") from error
            time.sleep(min(2.0**attempt * 0.1, 5.0))
        actual = sha256_file(part) if sha256 is not None else None
        if actual != sha256:
            part.unlink(missing_ok=True)
            raise ChecksumError(
                f"{url}: sha256 mismatch: expected {sha256}, got {actual}; the download was deleted and "
                "nothing was cached (a corrupted file, or a manifest that does not match it)")
        os.replace(part, target)
    return target


def _fetch_http(url: str, sha256: str | None, cache_dir: Path | None, progress: bool, retries: int,
                offline: bool, timeout: float) -> Path:
    target = cached_path(url, sha256, cache_dir)
    if target.is_file():
        try:
            _verify(target, sha256, url)
            return target
        except ChecksumError:
            target.unlink()  # a corrupted cache entry is never used; fetch it again
            if offline:
                raise
    if offline:
        raise FileNotFoundError(
            f"{url}: not in the cache and offline (FACEZOO_OFFLINE): expected {target}. Run "
            "`facezoo download NAME` on a connected machine and copy the file there (or unset FACEZOO_OFFLINE)")
    return _download(url, target, sha256, progress, retries, timeout)


# ---------------------------------------------------------------------- hf://
def parse_hf_url(url: str) -> tuple[str, str, str | None]:
    """``hf://org/repo[@revision]/path/in/repo`` -> (repo_id, filename, revision)."""
    rest = url[len("hf://"):]
    parts = rest.split("/")
    if len(parts) < 3 or not all(parts[:2]) or not parts[-1]:
        raise ValueError(f"{url}: expected hf://org/repo[@revision]/path/in/repo")
    org, repo = parts[0], parts[1]
    revision = None
    if "@" in repo:
        repo, revision = repo.split("@", 1)
    return f"{org}/{repo}", "/".join(parts[2:]), revision


def _fetch_hf(url: str, sha256: str | None, cache_dir: Path | None, offline: bool) -> Path:
    repo_id, filename, revision = parse_hf_url(url)
    from huggingface_hub import hf_hub_download

    hub_cache = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / "huggingface"
    try:
        path = Path(hf_hub_download(repo_id=repo_id, filename=filename, revision=revision,
                                    cache_dir=str(hub_cache), local_files_only=offline or None))
    except Exception as err:  # LocalEntryNotFoundError, HfHubHTTPError, OfflineModeIsEnabled, ...
        raise FileNotFoundError(
            f"{url}: could not get {filename} from the Hugging Face Hub repo {repo_id} into {hub_cache} "
            f"({type(err).__name__}: {err}). Offline (HF_HUB_OFFLINE / FACEZOO_OFFLINE) only cached files "
            "are used: run `facezoo download NAME` where the Hub is reachable") from err
    try:
        _verify(path, sha256, url)
    except ChecksumError as err:
        # drop the bad blob and its snapshot link: nothing unverified stays in the cache
        blob = Path(os.path.realpath(path))
        path.unlink(missing_ok=True)
        blob.unlink(missing_ok=True)
        raise ChecksumError(f"{err}; removed from the cache") from None
    return path


# ---------------------------------------------------------------------- entry point
def fetch(entry_or_url: ManifestEntry | str | os.PathLike, sha256: str | None = None, *,
          cache_dir: str | os.PathLike | None = None, progress: bool = True, retries: int = 3,
          offline: bool | None = None, timeout: float = 60.0) -> Path:
    """A verified local copy of a manifest entry's file or of a URL / path.

    ``sha256`` (default: the entry's) is checked before the path is returned; ``None`` for a bare
    URL means "unverified". ``retries``: extra attempts, each resuming the partial download.
    """
    if isinstance(entry_or_url, ManifestEntry):
        entry = entry_or_url
        if sha256 is not None and sha256.lower() != entry.sha256:
            raise ValueError(f"fetch({entry.name!r}): sha256 {sha256} differs from the manifest's {entry.sha256}")
        location, sha256 = entry.location(), entry.sha256
    elif isinstance(entry_or_url, (str, os.PathLike)):
        location = os.fspath(entry_or_url)
    else:
        raise ValueError(f"fetch: expected a ManifestEntry, URL or path, got {type(entry_or_url).__name__}")
    sha256 = _check_sha(sha256, location)
    if retries < 0:
        raise ValueError(f"retries: expected >= 0, got {retries}")
    offline = is_offline() if offline is None else offline
    cache = Path(cache_dir).expanduser() if cache_dir is not None else None
    if location.startswith(("https://", "http://")):
        return _fetch_http(location, sha256, cache, progress, retries, offline, timeout)
    if location.startswith("hf://"):
        return _fetch_hf(location, sha256, cache, offline)
    if location.startswith("file://"):
        parsed = urllib.parse.urlparse(location)
        path = Path(urllib.request.url2pathname(parsed.netloc + parsed.path))
    elif "://" in location:
        raise ValueError(f"{location}: unsupported URL scheme (expected https://, http://, hf://, file:// or a path)")
    else:
        path = Path(location).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{location}: no such weights file")
    try:
        _verify(path, sha256, location)
    except ChecksumError as err:
        raise ChecksumError(f"{err} (the local file is corrupted or is not the one the manifest lists)") from None
    return path
