"""FID_world's feature network: it learns identity and landmarks, is deterministic, caches, and
its Fréchet distance behaves (0 for identical sets, grows with a shift); bad input errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo.metrics import world_features
from zoo.metrics.world_features import (
    WorldFaceNet,
    cached_world_face_net,
    extract_world_features,
    load_world_face_net,
    train_world_face_net,
    world_fid,
)

S = 16


def _faces(n: int, seed: int = 0):
    """Two people (a dark-red and a light-blue square face) whose square moves: landmarks follow it."""
    rng = np.random.default_rng(seed)
    faces = np.zeros((n, S, S, 3), dtype=np.uint8)
    identities = rng.integers(0, 2, n)
    offsets = rng.integers(2, 7, (n, 2))
    base = rng.uniform(0, 6, (68, 2))
    landmarks = np.empty((n, 68, 2), dtype=np.float32)
    for i in range(n):
        x, y = offsets[i]
        faces[i, y:y + 8, x:x + 8] = (150, 30, 30) if identities[i] == 0 else (90, 160, 230)
        landmarks[i] = base + offsets[i]
    return faces, identities, landmarks


def test_network_learns_identity_and_landmarks():
    faces, ids, points = _faces(192)
    net = train_world_face_net(faces[:128], ids[:128], points[:128], steps=120, batch_size=32, width=8, seed=0)
    logits, predicted = net.predict(torch.from_numpy(faces[128:]))
    accuracy = (logits.argmax(1).numpy() == ids[128:]).mean()
    assert accuracy == 1.0
    error = np.abs(predicted.numpy() - points[128:]).mean()
    baseline = np.abs(points[:128].mean(0) - points[128:]).mean()
    assert error < 0.5 * baseline  # it locates the face, not just the average position
    assert extract_world_features(net, faces[:5]).shape == (5, net.num_features) and net.num_features == 16  # 2 blocks: 8, 16 wide


def test_training_is_deterministic_and_leaves_the_global_rng_alone():
    faces, ids, points = _faces(40)
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = train_world_face_net(faces, ids, points, steps=4, batch_size=8, width=4, seed=1)
    torch.testing.assert_close(torch.rand(3), expected_next)
    b = train_world_face_net(faces, ids, points, steps=4, batch_size=8, width=4, seed=1)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(x, y, msg=name)
    c = train_world_face_net(faces, ids, points, steps=4, batch_size=8, width=4, seed=2)
    assert not torch.equal(a.body[0].weight, c.body[0].weight)


def test_cached_network_is_trained_once_and_reloads(tmp_path, monkeypatch):
    faces, ids, points = _faces(40)
    net = cached_world_face_net(faces, ids, points, cache_dir=tmp_path, steps=3, batch_size=8, width=4)
    files = list(tmp_path.glob("world-face-net-*.pt"))
    assert len(files) == 1 and not list(tmp_path.glob(".*tmp*"))

    def refuse(*args, **kwargs):
        raise AssertionError("trained again although cached")

    monkeypatch.setattr(world_features, "train_world_face_net", refuse)
    again = cached_world_face_net(faces, ids, points, cache_dir=tmp_path, steps=3, batch_size=8, width=4)
    torch.testing.assert_close(extract_world_features(again, faces), extract_world_features(net, faces))
    with pytest.raises(AssertionError, match="trained again"):  # other data -> another key
        cached_world_face_net(faces[:-1], ids[:-1], points[:-1], cache_dir=tmp_path, steps=3, batch_size=8, width=4)
    with pytest.raises(ValueError, match="unknown settings"):
        cached_world_face_net(faces, ids, points, cache_dir=tmp_path, epochs=3)


def test_world_fid_is_zero_for_identical_sets_and_grows_with_a_shift():
    faces, ids, points = _faces(80)
    net = train_world_face_net(faces, ids, points, steps=30, batch_size=16, width=4)
    assert abs(world_fid(net, faces, faces)) < 1e-6
    darker = (faces.astype(np.int16) * 0.7).astype(np.uint8)
    much_darker = (faces.astype(np.int16) * 0.3).astype(np.uint8)
    near, far = world_fid(net, darker, faces), world_fid(net, much_darker, faces)
    assert 0 < near < far
    # channels-first input and another size (resized to the training size) are accepted
    bigger = torch.from_numpy(faces).permute(0, 3, 1, 2).repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    assert extract_world_features(net, bigger).shape == (80, net.num_features)


def test_bad_input(tmp_path):
    faces, ids, points = _faces(20)
    with pytest.raises(ValueError, match="faces: expected uint8"):
        train_world_face_net(faces.astype(np.float32), ids, points, steps=1)
    with pytest.raises(ValueError, match="landmarks"):
        train_world_face_net(faces, ids, points[:, :10], steps=1)
    with pytest.raises(ValueError, match="identities"):
        train_world_face_net(faces, ids[:-1], points, steps=1)
    with pytest.raises(ValueError, match="at least 16"):
        train_world_face_net(faces[:8], ids[:8], points[:8], steps=1)
    with pytest.raises(ValueError, match="power of two"):
        WorldFaceNet(image_size=24)
    with pytest.raises(FileNotFoundError, match="world face network"):
        load_world_face_net(tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a world face network"):
        load_world_face_net(tmp_path / "other.pt")
