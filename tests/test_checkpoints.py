"""Manifest, resolver and `facezoo download`: downloads from a loopback HTTP server (verified,
resumed after a cut connection, a corrupted file refused and not cached), offline use from the
cache, hf:// through a fake Hub, local paths, and clear errors for bad names."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from pathlib import Path

import pytest
import torch

import zoo
from checkpoints import weights_sha256
from checkpoints.export import export_model
from checkpoints.manifest import Manifest, ManifestEntry, UnknownModelError, load_manifest
from checkpoints.resolve import ChecksumError, cached_path, fetch, parse_hf_url
from zoo.cli import main


# ---------------------------------------------------------------------- loopback server
class _Server:
    """Serves ``files`` (url path -> bytes) with Range support; ``cut`` (path -> n) makes the next
    full response for that path send only its first n bytes, then close the connection."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server.requests.append((self.path, self.headers.get("Range")))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                limit = server.cut.pop(self.path, None) if start == 0 else None
                self.wfile.write(body[start:] if limit is None else body[:limit])
                self.wfile.flush()
                self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


def _tiny_transae():
    from tiny_configs import TINY_W2V

    from zoo.transae import TransAE

    torch.manual_seed(0)
    return TransAE(feature_dim=16, num_heads=2, period=4, num_decoder_layers=1, video_stem_channels=4,
                   audio_pretrained=None, audio_config=TINY_W2V)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny random Trans-AE exported as transae.tiny: (weights bytes, sha256, model, entry dict)."""
    model = _tiny_transae().eval()
    model.face_mean.copy_(torch.linspace(0, 1, 58))
    model.face_mean_known.fill_(True)
    out = tmp_path_factory.mktemp("export")
    result = export_model(model, "transae.tiny", out, config={"class_path": "zoo.transae.TransAE",
                                                               "init_args": dict(model.hparams)})
    data = result.weights.read_bytes()
    return data, hashlib.sha256(data).hexdigest(), model, result.entry.to_dict()


def _manifest(tmp_path: Path, monkeypatch, entries: list[dict]) -> Path:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"format": 1, "models": entries}))
    monkeypatch.setenv("FACEZOO_MANIFEST", str(path))
    return path


def _weight_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and ".locks" not in p.parts]


# ---------------------------------------------------------------------- manifest
def test_manifest_entries_are_validated_and_round_trip(tmp_path, exported):
    _, sha, _, entry = exported
    good = ManifestEntry.from_dict(entry)
    for change, message in ((dict(name="TransAE"), "method.tag"), (dict(method="reactface"), "before the dot"),
                            (dict(sha256="abc"), "64 lower-case hex"), (dict(size=-1), "byte count"),
                            (dict(config={"init_args": {}}), "class_path"), (dict(format="pickle"), "format")):
        with pytest.raises(ValueError, match=message):
            ManifestEntry.from_dict({**entry, **change})
    manifest = Manifest(path=tmp_path / "m.json")
    manifest.add(good)
    manifest.save()
    again = load_manifest(tmp_path / "m.json")
    assert again.names() == ["transae.tiny"] and again["transae.tiny"].sha256 == sha
    assert again["transae.tiny"].config == good.config
    (tmp_path / "dup.json").write_text(json.dumps({"format": 1, "models": [entry, entry]}))
    with pytest.raises(ValueError, match="listed twice"):
        load_manifest(tmp_path / "dup.json")
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_manifest(tmp_path / "nope.json")


def test_unknown_names_and_paths_list_the_known_models(tmp_path, monkeypatch, exported):
    _manifest(tmp_path, monkeypatch, [exported[3]])
    assert zoo.list_models() == ["transae.tiny"]
    with pytest.raises(UnknownModelError, match=r"'transae.tinny'.*Did you mean transae.tiny.*Known models: transae.tiny"):
        zoo.load_model("transae.tinny")
    with pytest.raises(FileNotFoundError, match=r"missing.safetensors: no such weights file.*known models: transae.tiny"):
        zoo.load_model(str(tmp_path / "missing.safetensors"))
    with pytest.raises(SystemExit) as exit_info:
        main(["download", "reactface.nothere"])
    assert exit_info.value.code == 2


def test_shipped_manifest_parses_and_lists_its_files():
    manifest = load_manifest()
    for entry in manifest:
        if entry.is_remote:
            continue
        path = Path(entry.location())
        assert path.is_file(), f"{entry.name}: {path} missing (run make checkpoints)"
        assert path.stat().st_size == entry.size and weights_sha256(path) == entry.sha256
        assert entry.card is not None and (path.parent / Path(entry.card).name).is_file()


# ---------------------------------------------------------------------- http(s)
def test_http_download_is_verified_cached_loaded_and_generates(tmp_path, monkeypatch, server, exported):
    data, sha, model, entry = exported
    server.files["/w/transae.tiny.safetensors"] = data
    _manifest(tmp_path, monkeypatch, [{**entry, "url": server.url("/w/transae.tiny.safetensors")}])
    loaded = zoo.load_model("transae.tiny")
    assert not loaded.training and all(p.dtype == torch.float32 for p in loaded.parameters())
    assert loaded.facezoo_weights["sha256"] == sha
    cached = Path(loaded.facezoo_weights["path"])
    assert cached.parent == Path(__import__("os").environ["FACEZOO_HOME"]) / "checkpoints"
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == sha
    torch.testing.assert_close(loaded.face_mean, torch.linspace(0, 1, 58))  # small buffers stay float32
    g = torch.Generator().manual_seed(0)
    video, audio = torch.rand(1, 8, 3, 32, 32, generator=g) * 2 - 1, torch.randn(1, 8 * 640, generator=g)
    out = loaded.generate(video, audio, num_samples=2)
    assert out.shape == (1, 2, 8, 58) and torch.isfinite(out).all()
    torch.testing.assert_close(out, model.generate(video, audio, num_samples=2), atol=2e-2, rtol=0)
    zoo.load_model("transae.tiny")  # second time: from the cache
    assert len(server.requests) == 1
    assert weights_sha256("transae.tiny") == sha and weights_sha256(cached) == sha


def test_corrupted_download_is_refused_and_nothing_is_cached(tmp_path, server, exported):
    data, sha, _, _ = exported
    bad = bytearray(data)
    bad[len(bad) // 2] ^= 0xFF
    server.files["/bad.safetensors"] = bytes(bad)
    with pytest.raises(ChecksumError) as error:
        fetch(server.url("/bad.safetensors"), sha, cache_dir=tmp_path / "cache", progress=False)
    message = str(error.value)
    assert "/bad.safetensors" in message and sha in message and hashlib.sha256(bad).hexdigest() in message
    assert _weight_files(tmp_path / "cache") == []
    # a cached file corrupted later is refused too, and fetched again
    server.files["/good.safetensors"] = data
    path = fetch(server.url("/good.safetensors"), sha, cache_dir=tmp_path / "cache", progress=False)
    path.write_bytes(bytes(bad))
    assert fetch(server.url("/good.safetensors"), sha, cache_dir=tmp_path / "cache", progress=False).read_bytes() == data
    assert len(server.requests) == 3


def test_cut_connection_keeps_the_part_and_resumes_with_a_range_request(tmp_path, server, exported):
    data, sha, _, _ = exported
    half = len(data) // 2
    server.files["/w.safetensors"] = data
    server.cut["/w.safetensors"] = half
    cache = tmp_path / "cache"
    with pytest.raises(ConnectionError, match=f"{half} bytes are kept"):
        fetch(server.url("/w.safetensors"), sha, cache_dir=cache, progress=False, retries=0)
    part = cached_path(server.url("/w.safetensors"), sha, cache).with_suffix(".safetensors.part")
    assert part.stat().st_size == half and not cached_path(server.url("/w.safetensors"), sha, cache).exists()
    path = fetch(server.url("/w.safetensors"), sha, cache_dir=cache, progress=False)  # next call resumes
    assert path.read_bytes() == data and not part.exists()
    assert server.requests == [("/w.safetensors", None), ("/w.safetensors", f"bytes={half}-")]
    # within one call: the retry resumes from the partial file
    server.requests.clear()
    server.cut["/w.safetensors"] = 1000
    path = fetch(server.url("/w.safetensors"), sha, cache_dir=tmp_path / "other", progress=False)
    assert path.read_bytes() == data
    assert server.requests == [("/w.safetensors", None), ("/w.safetensors", "bytes=1000-")]


def test_offline_uses_the_cache_and_names_the_missing_file(tmp_path, monkeypatch, server, exported):
    data, sha, _, _ = exported
    server.files["/w.safetensors"] = data
    cache = tmp_path / "cache"
    fetch(server.url("/w.safetensors"), sha, cache_dir=cache, progress=False)
    url = server.url("/w.safetensors")
    server.close()
    server.close = lambda: None  # the fixture's teardown
    monkeypatch.setenv("FACEZOO_OFFLINE", "1")
    assert fetch(url, sha, cache_dir=cache).read_bytes() == data
    with pytest.raises(FileNotFoundError, match=r"offline.*expected .*other-"):
        fetch(url.replace("/w.", "/other."), sha, cache_dir=cache)


def test_http_errors_are_clear(tmp_path, server):
    with pytest.raises(FileNotFoundError, match="HTTP 404"):
        fetch(server.url("/none.safetensors"), "0" * 64, cache_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="64 hex digits"):
        fetch(server.url("/none.safetensors"), "xyz", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="unsupported URL scheme"):
        fetch("ftp://example.org/w.safetensors", cache_dir=tmp_path)


# ---------------------------------------------------------------------- hf://, file://, paths
def test_hf_urls_go_through_hf_hub_download_and_are_verified(tmp_path, monkeypatch, exported):
    import huggingface_hub

    data, sha, _, _ = exported
    calls = []

    def fake_hf_hub_download(repo_id, filename, revision=None, cache_dir=None, local_files_only=None):
        calls.append((repo_id, filename, revision, local_files_only))
        blob = Path(cache_dir) / "blobs" / "x"
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data if "good" in filename else data[:-1] + b"\0")
        link = Path(cache_dir) / "snapshots" / filename
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(blob)
        return str(link)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_hf_hub_download)
    assert parse_hf_url("hf://lab/zoo@v1/weights/a.safetensors") == ("lab/zoo", "weights/a.safetensors", "v1")
    path = fetch("hf://lab/zoo@v1/good.safetensors", sha, cache_dir=tmp_path / "c")
    assert path.read_bytes() == data and calls[-1] == ("lab/zoo", "good.safetensors", "v1", None)
    assert str(path).startswith(str(tmp_path / "c" / "huggingface"))
    with pytest.raises(ChecksumError, match="removed from the cache"):
        fetch("hf://lab/zoo/bad.safetensors", sha, cache_dir=tmp_path / "c")
    assert not (tmp_path / "c" / "huggingface" / "blobs" / "x").exists()
    monkeypatch.setenv("FACEZOO_OFFLINE", "1")
    fetch("hf://lab/zoo/good.safetensors", sha, cache_dir=tmp_path / "c")
    assert calls[-1][-1] is True  # offline: cached files only
    with pytest.raises(ValueError, match="hf://org/repo"):
        fetch("hf://lab/only-repo", cache_dir=tmp_path / "c")


def test_local_paths_file_urls_and_manifest_relative_urls(tmp_path, monkeypatch, exported):
    data, sha, _, entry = exported
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "t.safetensors").write_bytes(data)
    assert fetch(f"file://{tmp_path}/weights/t.safetensors", sha) == tmp_path / "weights" / "t.safetensors"
    with pytest.raises(ChecksumError, match="corrupted or is not the one"):
        fetch(tmp_path / "weights" / "t.safetensors", "0" * 64)
    _manifest(tmp_path, monkeypatch, [{**entry, "url": "weights/t.safetensors"}])
    assert zoo.load_model("transae.tiny").facezoo_weights["path"] == str(tmp_path / "weights" / "t.safetensors")


def test_download_command_prints_where_each_file_is(tmp_path, monkeypatch, capsys, server, exported):
    data, sha, _, entry = exported
    server.files["/a.safetensors"] = data
    _manifest(tmp_path, monkeypatch, [{**entry, "url": server.url("/a.safetensors")},
                                      {**entry, "name": "transae.local", "url": "local.safetensors"}])
    (tmp_path / "local.safetensors").write_bytes(data)
    assert main(["download", "--all", "--cache-dir", str(tmp_path / "dl"), "--quiet"]) == 0
    lines = dict(line.split("\t") for line in capsys.readouterr().out.splitlines())
    assert Path(lines["transae.tiny"]).parent == tmp_path / "dl"
    assert lines["transae.local"] == str(tmp_path / "local.safetensors")
    with pytest.raises(SystemExit):
        main(["download"])
    assert "give model names or --all" in capsys.readouterr().err


def test_weights_files_take_strided_views_and_read_back_equal(tmp_path):
    from checkpoints.weights import read_weights, save_weights

    basis = torch.arange(12.0).reshape(3, 4)
    tensors = {"extras.shape_model.modes": basis.t(), "w": torch.ones(2)}  # a transposed view, as a PCA basis
    path = save_weights(tmp_path / "m.safetensors", tensors, name="x.y", config=None)
    loaded, metadata = read_weights(path)
    assert torch.equal(loaded["extras.shape_model.modes"], basis.t()) and metadata["name"] == "x.y"
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # the temporary sibling was renamed away


def test_published_files_get_the_umask_mode_not_mkstemps_private_one(tmp_path):
    import os
    import stat

    from checkpoints.weights import save_weights

    old = os.umask(0o022)
    try:
        path = save_weights(tmp_path / "w.safetensors", {"w": torch.ones(3)}, name="x.y", config=None)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # readable by the lab it is published to


# ---------------------------------------------------------------------- facezoo generate --ckpt
def test_generate_command_takes_published_names_exported_files_and_lightning_checkpoints(
        tmp_path, monkeypatch, capsys, exported):
    """`facezoo generate --ckpt NAME` builds the model from the weights' own config; with --config,
    --ckpt may also be an exported file or a Lightning checkpoint. All give the same reactions."""
    import numpy as np
    import yaml

    from datamodules.features.io import write_video, write_wav

    data, _, model, entry = exported
    (tmp_path / "t.safetensors").write_bytes(data)
    _manifest(tmp_path, monkeypatch, [{**entry, "url": "t.safetensors"}])
    config = tmp_path / "tiny.yaml"
    # a zoo config: the model, and a DataModule that `generate` builds but never reads
    config.write_text(yaml.safe_dump({"model": entry["config"], "data": {"class_path": "datamodules.react.REACTDataModule"}}))
    torch.save({"state_dict": model.state_dict()}, tmp_path / "run.ckpt")
    rng = np.random.default_rng(0)
    video = write_video(tmp_path / "s.mp4", rng.integers(0, 255, (8, 32, 32, 3), dtype=np.uint8))
    wav = write_wav(tmp_path / "s.wav", rng.standard_normal(8 * 1764).astype(np.float32) * 0.1, 44100)
    inputs = ["--speaker-video", str(video), "--speaker-audio", str(wav), "--num-samples", "2", "--image-size", "32"]

    outputs = {}
    for name, weights in {"published name": ["--ckpt", "transae.tiny"],
                          "exported file": ["--config", str(config), "--ckpt", str(tmp_path / "t.safetensors")],
                          "lightning checkpoint": ["--config", str(config), "--ckpt", str(tmp_path / "run.ckpt")]}.items():
        out = tmp_path / name.replace(" ", "_")
        assert main(["generate", *weights, "--out", str(out), *inputs]) == 0
        outputs[name] = np.load(out / "s_reactions.npy")
    assert outputs["published name"].shape == (2, 8, 58)
    for name in ("exported file", "lightning checkpoint"):
        np.testing.assert_allclose(outputs[name], outputs["published name"], atol=1e-5)

    def error_of(argv: list[str]) -> str:
        with pytest.raises(SystemExit) as exit_info:
            main(["generate", *argv, "--out", str(tmp_path / "bad"), *inputs])
        assert exit_info.value.code == 2
        return capsys.readouterr().err

    assert "--config" in error_of([])  # neither: says what is expected
    assert "pass the --config it was trained with" in error_of(["--ckpt", str(tmp_path / "run.ckpt")])
    assert "Did you mean transae.tiny" in error_of(["--ckpt", "transae.tinny"])
    assert "no such weights file" in error_of(["--config", str(config), "--ckpt", str(tmp_path / "nope.safetensors")])
    assert not (tmp_path / "bad").exists()
