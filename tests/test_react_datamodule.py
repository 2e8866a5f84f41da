"""REACTDataModule / REACTClips on tiny REACT copies written by ``react_layout``: both layouts and
video formats, the role-swapped order, neighbours, crops, audio, mean face, the disk cache and
every bad-input error."""

from __future__ import annotations

import os
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from react_layout import REACTLayout, write_emotion_csv, write_react_layout
from scipy.signal import resample_poly

import datamodules.react as react
from datamodules import REACTDataModule
from datamodules.features.io import write_video, write_wav
from datamodules.react import REACTClips, resize_and_centre_crop

FRAMES, SIZE, S = 40, 32, 28  # 28 px: Resize(round(28*256/224) = 32) is a no-op, CenterCrop(28) keeps [2:30]
CROP = slice(2, 30)
CLIP = 16


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> dict[tuple[str, str], REACTLayout]:
    root = tmp_path_factory.mktemp("react")
    return {
        (variant, fmt): write_react_layout(root / f"{variant}-{fmt}", variant=variant, video_format=fmt, frames=FRAMES, image_size=SIZE, seed=7)
        for variant in ("b23", "rf")
        for fmt in ("png", "mp4")
    }


@pytest.fixture
def layout(layouts) -> REACTLayout:
    return layouts[("b23", "png")]


def small_layout(tmp_path: Path, **kwargs) -> REACTLayout:
    kwargs.setdefault("pairs", {"train": 2, "val": 1, "test": 1})
    return write_react_layout(tmp_path / "react", frames=kwargs.pop("frames", 20), image_size=SIZE, **kwargs)


def make_dm(root: Path, tmp_path: Path, **kwargs) -> REACTDataModule:
    defaults = dict(clip_length=CLIP, eval_clip_length=FRAMES, image_size=S, batch_size=2, cache_dir=str(tmp_path / "cache"))
    return REACTDataModule(root=str(root), **{**defaults, **kwargs})


def train_mean(layout: REACTLayout) -> np.ndarray:
    clips = dict.fromkeys(p for row in layout.pairs["train"] for p in row)
    return np.concatenate([layout.tdmm[c] for c in clips]).astype(np.float64).mean(axis=0).astype(np.float32)


def reference_audio(layout: REACTLayout, rel: str, start: int, frames: int) -> np.ndarray:
    audio = resample_poly(layout.audio[rel], 160, 441).astype(np.float64)  # 44.1 kHz -> 16 kHz
    audio = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)  # over the whole clip
    return audio[start * 640 : (start + frames) * 640]


def to_uint8(video: torch.Tensor) -> np.ndarray:
    return ((video.permute(0, 2, 3, 1).numpy() + 1) * 127.5).round()


# -- reading ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["b23", "rf"])
@pytest.mark.parametrize("fmt", ["png", "mp4"])
def test_layouts_and_video_formats_read_the_written_numbers(layouts, tmp_path, variant, fmt):
    layout = layouts[(variant, fmt)]
    dm = make_dm(layout.root, tmp_path, num_neighbours=2)
    dm.setup("validate")
    batch = next(iter(dm.val_dataloader()))
    speakers, listeners = layout.mirrored("val")
    mean = train_mean(layout)
    np.testing.assert_allclose(dm.face_mean, mean, rtol=1e-6, atol=1e-6)
    assert batch["speaker_video"].shape == (2, FRAMES, 3, S, S) and batch["speaker_video"].dtype == torch.float32
    assert batch["speaker_audio"].shape == (2, FRAMES * 640)
    for b, k in enumerate(batch["index"].tolist()):
        spk, lst = speakers[k], listeners[k]
        np.testing.assert_allclose(batch["speaker_3dmm"][b].numpy(), layout.tdmm[spk] - mean, atol=1e-5)
        np.testing.assert_allclose(batch["listener_3dmm"][b].numpy(), layout.tdmm[lst] - mean, atol=1e-5)
        np.testing.assert_array_equal(batch["speaker_emotion"][b].numpy(), layout.emotion[spk])
        np.testing.assert_array_equal(batch["listener_emotion"][b].numpy(), layout.emotion[lst])
        np.testing.assert_allclose(batch["speaker_audio"][b].numpy(), reference_audio(layout, spk, 0, FRAMES), atol=1e-4)
        video = to_uint8(batch["speaker_video"][b])
        expected = layout.frames[spk][:, CROP, CROP]
        if fmt == "png":  # lossless: the exact centre crop
            np.testing.assert_array_equal(video, expected)
        else:  # mp4v is lossy; a wrong crop or frame order is off by tens of levels
            assert np.abs(video - expected).mean() < 6.0
    assert batch["speaker_video"].min() >= -1 and batch["speaker_video"].max() <= 1


def test_resize_and_centre_crop_matches_torchvision_rule():
    frame = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    np.testing.assert_array_equal(resize_and_centre_crop(frame, 224), frame[16:240, 16:240])  # Resize(256) no-op
    wide = np.random.default_rng(1).integers(0, 256, (100, 150, 3), dtype=np.uint8)
    out = resize_and_centre_crop(wide, 64)  # shorter side -> round(64*256/224) = 73, then 64x64 centre
    assert out.shape == (64, 64, 3)
    flat = np.full((300, 400, 3), 90, dtype=np.uint8)
    np.testing.assert_array_equal(resize_and_centre_crop(flat, 224), np.full((224, 224, 3), 90))


def test_mirrored_order_swaps_roles(layout, tmp_path):
    dataset = REACTClips(layout.root, "train", clip_length=FRAMES, random_crop=False, image_size=S, load_listener_video=True, cache_dir=tmp_path)
    pairs = len(layout.pairs["train"])
    assert len(dataset) == 2 * pairs and dataset.num_pairs == pairs
    for k in range(pairs):
        a, b = dataset[k], dataset[k + pairs]
        spk, lst = layout.pairs["train"][k]
        assert dataset.speakers[k].path == spk == dataset.listeners[k + pairs].path
        np.testing.assert_array_equal(a["speaker_3dmm"], layout.tdmm[spk])
        for x, y in (("speaker", "listener"), ("listener", "speaker")):
            for modality in ("3dmm", "emotion", "video"):
                torch.testing.assert_close(a[f"{x}_{modality}"], b[f"{y}_{modality}"], rtol=0, atol=0)
        assert not torch.equal(a["speaker_3dmm"], a["listener_3dmm"])

    plain = REACTClips(layout.root, "train", clip_length=FRAMES, random_crop=False, load_video=False, mirrored=False, num_neighbours=2, cache_dir=tmp_path)
    assert len(plain) == pairs
    assert [c.path for c in plain.speakers] == [s for s, _ in layout.pairs["train"]]
    np.testing.assert_array_equal(plain.neighbours, layout.neighbours["train"][:pairs, :pairs])


@pytest.mark.parametrize("num_neighbours", [1, 8])
def test_neighbours_are_appropriate_listener_reactions_in_the_crop_window(layout, tmp_path, num_neighbours):
    torch.manual_seed(0)
    dm = make_dm(layout.root, tmp_path, num_neighbours=num_neighbours, load_video=False, load_audio=False)
    dm.setup("fit")
    matrix = layout.neighbours["train"]
    np.testing.assert_array_equal(dm.neighbour_matrix("train"), matrix)
    assert dm.neighbour_matrix("train").dtype == bool
    _, listeners = layout.mirrored("train")
    mean = train_mean(layout)
    for batch in dm.train_dataloader():
        assert batch["neighbour_3dmm"].shape == (len(batch["index"]), num_neighbours, CLIP, 58)
        for b, (k, start) in enumerate(zip(batch["index"].tolist(), batch["start"].tolist(), strict=True)):
            chosen = np.flatnonzero(matrix[k])[:num_neighbours]
            mask = batch["neighbour_mask"][b].numpy()
            np.testing.assert_array_equal(mask, np.arange(num_neighbours) < len(chosen))
            for slot, j in enumerate(chosen):
                expected = layout.tdmm[listeners[j]][start : start + CLIP] - mean
                np.testing.assert_allclose(batch["neighbour_3dmm"][b, slot].numpy(), expected, atol=1e-5)
            assert not batch["neighbour_3dmm"][b, len(chosen) :].any()


def test_a_neighbour_one_frame_short_repeats_its_last_frame(tmp_path):
    layout = small_layout(tmp_path, pairs={"train": 2, "val": 1, "test": 1})
    speakers, listeners = layout.mirrored("train")
    short = layout.file("train", "tdmm", listeners[1])
    np.save(short, layout.tdmm[listeners[1]][:19])
    matrix = np.eye(4, dtype=bool)
    matrix[0, 1] = True
    np.save(layout.root / "neighbour_emotion_train.npy", matrix)
    dataset = REACTClips(layout.root, "train", clip_length=10, load_video=False, load_audio=False, num_neighbours=2, cache_dir=tmp_path / "c")
    out, mask = dataset._neighbours(0, 10, 20)
    expected = layout.tdmm[listeners[1]][10:19]
    np.testing.assert_array_equal(mask.numpy(), [True, True])
    np.testing.assert_array_equal(out[1].numpy(), np.concatenate([expected, expected[-1:]]))
    np.testing.assert_array_equal(out[0].numpy(), layout.tdmm[listeners[0]][10:20])
    np.save(short, layout.tdmm[listeners[1]][:18])
    with pytest.raises(ValueError, match=re.escape(str(short))):
        REACTClips(layout.root, "train", clip_length=10, load_video=False, load_audio=False, num_neighbours=2, cache_dir=tmp_path / "c")._neighbours(0, 10, 20)


def test_training_crop_is_the_same_window_in_every_modality(layout, tmp_path):
    dataset = REACTClips(layout.root, "train", clip_length=CLIP, image_size=S, load_listener_video=True, cache_dir=tmp_path)
    speakers, listeners = layout.mirrored("train")
    torch.manual_seed(3)
    starts = set()
    for _ in range(150):
        item = dataset[1]
        starts.add(int(item["start"]))
    assert starts <= set(range(FRAMES - CLIP + 1)) and {0, FRAMES - CLIP} <= starts and len(starts) > 15
    for k in range(len(dataset)):
        item = dataset[k]
        start, window = int(item["start"]), slice(int(item["start"]), int(item["start"]) + CLIP)
        np.testing.assert_array_equal(item["speaker_3dmm"].numpy(), layout.tdmm[speakers[k]][window])
        np.testing.assert_array_equal(item["listener_3dmm"].numpy(), layout.tdmm[listeners[k]][window])
        np.testing.assert_array_equal(item["speaker_emotion"].numpy(), layout.emotion[speakers[k]][window])
        np.testing.assert_array_equal(item["listener_emotion"].numpy(), layout.emotion[listeners[k]][window])
        np.testing.assert_array_equal(to_uint8(item["speaker_video"]), layout.frames[speakers[k]][window, CROP, CROP])
        np.testing.assert_array_equal(to_uint8(item["listener_video"]), layout.frames[listeners[k]][window, CROP, CROP])
        np.testing.assert_allclose(item["speaker_audio"].numpy(), reference_audio(layout, speakers[k], start, CLIP), atol=1e-4)


def test_audio_is_resampled_normalised_and_padded_by_at_most_one_frame(tmp_path):
    layout = small_layout(tmp_path)
    dataset = REACTClips(layout.root, "val", clip_length=20, random_crop=False, load_video=False, audio_sample_rate=16000, cache_dir=tmp_path / "c")
    audio = dataset[0]["speaker_audio"].numpy()
    assert audio.shape == (20 * 640,) and audio.dtype == np.float32
    rel = layout.pairs["val"][0][0]
    whole = dataset.cache.audio(layout.file("val", "audio", rel), 16000)  # the clip, normalised as a whole
    assert abs(whole.mean()) < 1e-5 and abs(whole.var() - 1) < 1e-4
    np.testing.assert_array_equal(audio, whole[: 20 * 640])

    wav = layout.file("val", "audio", rel)
    short = layout.audio[rel][: len(layout.audio[rel]) - 1000]  # 1000 / 1764 of a frame missing
    write_wav(wav, short, 44100)
    padded = REACTClips(layout.root, "val", clip_length=20, random_crop=False, load_video=False, cache_dir=tmp_path / "c")[0]["speaker_audio"].numpy()
    real = len(resample_poly(short, 160, 441))
    assert padded.shape == (20 * 640,) and real < 20 * 640
    assert not padded[real:].any() and padded[:real].std() > 0.5

    write_wav(wav, layout.audio[rel][: 44100 * 18 // 25], 44100)  # 18 of 20 frames
    with pytest.raises(ValueError, match=re.escape(str(wav))):
        REACTClips(layout.root, "val", clip_length=20, random_crop=False, load_video=False, cache_dir=tmp_path / "c")[0]

    other = REACTClips(layout.root, "test", clip_length=20, random_crop=False, load_video=False, audio_sample_rate=22050, cache_dir=tmp_path / "c")
    assert other[0]["speaker_audio"].shape == (20 * 882,)


def test_face_std_over_training_split_with_exact_zeros_for_still_channels(tmp_path):
    layout = small_layout(tmp_path)
    clips = list(dict.fromkeys(p for row in layout.pairs["train"] for p in row))
    for rel in clips:  # channel 6 never moves in training (as unused rig channels of the embedded world)
        path = layout.file("train", "tdmm", rel)
        rows = np.load(path).reshape(-1, 58)
        rows[:, 6] = 0.1
        np.save(path, rows)
        layout.tdmm[rel] = rows
    dm = make_dm(layout.root, tmp_path, load_video=False)
    frames = np.concatenate([layout.tdmm[c] for c in clips]).astype(np.float64)
    np.testing.assert_allclose(dm.face_std, frames.std(axis=0), rtol=1e-5, atol=1e-7)
    assert dm.face_std[6] == 0.0 and (np.delete(dm.face_std, 6) > 0).all()
    np.testing.assert_allclose(dm.face_mean, frames.mean(axis=0), rtol=1e-6, atol=1e-6)
    assert dm.face_std.dtype == np.float32 and dm.face_std.shape == (58,)


def test_mean_face_from_file_or_training_split(layout, tmp_path):
    dm = make_dm(layout.root, tmp_path, load_video=False)
    np.testing.assert_allclose(dm.face_mean, train_mean(layout), rtol=1e-6, atol=1e-6)
    assert len(list((tmp_path / "cache" / "face_moments").glob("*.npy"))) == 1
    again = make_dm(layout.root, tmp_path, load_video=False)
    np.testing.assert_array_equal(again.face_mean, dm.face_mean)

    mean = np.linspace(-1, 1, 58).astype(np.float32)
    np.save(tmp_path / "mean_face.npy", mean[None])  # FaceVerse stores (1, 58)
    dm = make_dm(layout.root, tmp_path, load_video=False, mean_face=str(tmp_path / "mean_face.npy"))
    dm.setup("validate")
    item = dm.datasets["val"][0]
    spk = layout.mirrored("val")[0][0]
    np.testing.assert_allclose(item["speaker_3dmm"].numpy(), layout.tdmm[spk] - mean, atol=1e-6)
    np.testing.assert_array_equal(dm.face_mean, mean)

    np.save(tmp_path / "bad_mean.npy", np.zeros(52))
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "bad_mean.npy"))):
        _ = make_dm(layout.root, tmp_path, mean_face=str(tmp_path / "bad_mean.npy")).face_mean
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        _ = make_dm(layout.root, tmp_path, mean_face=str(tmp_path / "missing.npy")).face_mean


def test_evaluation_clips_are_the_first_frames(layout, tmp_path):
    dm = make_dm(layout.root, tmp_path, eval_clip_length=30, eval_batch_size=3, load_video=False)
    dm.setup("test")
    batches = list(dm.test_dataloader())
    assert [len(b["index"]) for b in batches] == [3, 1]
    speakers, _ = layout.mirrored("test")
    for batch in batches + list(dm.predict_dataloader()):
        assert (batch["start"] == 0).all() and batch["speaker_3dmm"].shape[1] == 30
        for b, k in enumerate(batch["index"].tolist()):
            np.testing.assert_allclose(batch["speaker_3dmm"][b].numpy() + dm.face_mean, layout.tdmm[speakers[k]][:30], atol=1e-5)
    with pytest.raises(ValueError, match=r"3D_FV_files.*shorter than the evaluation length 41"):
        make_dm(layout.root, tmp_path, eval_clip_length=41).setup("test")
    with pytest.raises(ValueError, match=r"shorter than the training crop length 41"):
        make_dm(layout.root, tmp_path, clip_length=41).setup("fit")


def test_decoded_frames_are_cached_on_disk(tmp_path, monkeypatch):
    layout = small_layout(tmp_path, video_format="mp4")
    decoded = []
    original = react.decode_video
    monkeypatch.setattr(react, "decode_video", lambda path, size: decoded.append(path) or original(path, size))
    dm = make_dm(layout.root, tmp_path, load_listener_video=True, eval_clip_length=20)
    dm.setup("fit")
    first = [b["speaker_video"] for b in dm.train_dataloader()]
    assert len(decoded) == 4 and len(set(decoded)) == 4  # 2 pairs, each person decoded once
    assert len(list((tmp_path / "cache" / f"video-{S}").glob("*.npy"))) == 4
    for path in set(decoded):
        path.unlink()  # the same module keeps reading from the cache without its sources
    second = [b["speaker_video"] for b in dm.train_dataloader()]
    assert len(decoded) == 4 and len(second) == len(first)

    layout = small_layout(tmp_path / "again", video_format="png")
    decoded.clear()
    list(make_dm(layout.root, tmp_path, eval_clip_length=20).train_dataloader())
    assert len(decoded) == 4  # mirrored: every person is a speaker once
    list(make_dm(layout.root, tmp_path, eval_clip_length=20).train_dataloader())  # a fresh module finds the entries
    assert len(decoded) == 4
    rel = layout.pairs["train"][0][0]
    frames = layout.frames[rel].copy()
    frames[:, :, :] = 200
    write_video(layout.file("train", "video", rel), frames)  # rewritten source -> new entry
    dataset = make_dm(layout.root, tmp_path, load_audio=False).make_dataset("train")
    item = dataset[0]
    assert len(decoded) == 5
    assert torch.allclose(item["speaker_video"], torch.full_like(item["speaker_video"], 200 / 127.5 - 1))


def test_dataloader_with_two_workers(layout, tmp_path):
    dm = make_dm(layout.root, tmp_path, num_workers=2, batch_size=2, num_neighbours=3)
    dm.setup("fit")
    seen = []
    for batch in dm.train_dataloader():
        assert batch["speaker_video"].shape[1:] == (CLIP, 3, S, S) and batch["neighbour_mask"].shape[1] == 3
        seen += batch["index"].tolist()
    assert sorted(seen) == list(range(2 * len(layout.pairs["train"])))


def test_lightning_trainer_reads_the_datamodule(layout, tmp_path):
    import lightning as L

    class Echo(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(58, 58)

        def training_step(self, batch, batch_idx):
            assert batch["speaker_3dmm"].shape[1] == CLIP
            return torch.nn.functional.mse_loss(self.net(batch["speaker_3dmm"]), batch["listener_3dmm"])

        def test_step(self, batch, batch_idx):
            assert batch["speaker_3dmm"].shape[1] == FRAMES
            assert self.trainer.datamodule.face_mean.shape == (58,)

        def predict_step(self, batch, batch_idx):
            return self.net(batch["speaker_3dmm"])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    dm = make_dm(layout.root, tmp_path, load_video=False)
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(Echo(), datamodule=dm)
    trainer.test(Echo(), datamodule=dm, verbose=False)
    predictions = trainer.predict(Echo(), datamodule=dm)
    assert sum(p.shape[0] for p in predictions) == 2 * len(layout.pairs["test"])
    summary = repr(dm)
    assert "train=6" in summary and "test=4" in summary and str(dm) == summary


def test_default_data_is_the_cached_embedded_world(tmp_path, monkeypatch):
    calls = []

    def cached_react_dataset(**kwargs):
        calls.append(kwargs)
        root = tmp_path / "world"
        if not root.exists():
            small_layout(tmp_path / "w", pairs={"train": 1, "val": 1, "test": 1}).root.rename(root)
        return root

    module = types.ModuleType("datamodules.synthetic.react_world")
    module.cached_react_dataset = cached_react_dataset
    monkeypatch.setitem(sys.modules, "datamodules.synthetic.react_world", module)
    dm = REACTDataModule(world={"sessions": 2, "seed": 5}, clip_length=8, eval_clip_length=20, image_size=S, cache_dir=str(tmp_path / "cache"))
    dm.prepare_data()
    dm.setup("fit")
    assert calls == [{"sessions": 2, "seed": 5}] and dm.data_root == tmp_path / "world"
    assert next(iter(dm.train_dataloader()))["speaker_3dmm"].shape == (2, 8, 58)


# -- bad input ----------------------------------------------------------------------------------------


def _setup(layout: REACTLayout, tmp_path: Path, stage: str = "validate", **kwargs) -> REACTDataModule:
    dm = make_dm(layout.root, tmp_path, **{"eval_clip_length": 20, "clip_length": 8, **kwargs})
    dm.setup(stage)
    return dm


def _read_all(dm: REACTDataModule, split: str = "val") -> None:
    dataset = dm.datasets[split]
    for k in range(len(dataset)):
        dataset[k]


@pytest.mark.parametrize("modality, error", [("video", FileNotFoundError), ("audio", FileNotFoundError), ("emotion", FileNotFoundError), ("tdmm", FileNotFoundError)])
def test_missing_files_are_named_at_setup(tmp_path, modality, error):
    layout = small_layout(tmp_path, variant="rf", video_format="mp4")
    path = layout.file("val", modality, layout.pairs["val"][0][1])
    path.unlink()
    with pytest.raises(error, match=re.escape(str(path))):
        _setup(layout, tmp_path)


def test_missing_png_folder_and_missing_layout(tmp_path):
    layout = small_layout(tmp_path, video_format="png")
    folder = layout.file("val", "video", layout.pairs["val"][0][0])
    for frame in folder.iterdir():
        frame.unlink()
    folder.rmdir()
    with pytest.raises(FileNotFoundError, match=re.escape(str(folder))):
        _setup(layout, tmp_path)
    with pytest.raises(FileNotFoundError, match="not a directory"):
        _setup(REACTLayout(tmp_path / "nowhere", "b23", "png", 25, 44100), tmp_path)
    empty = tmp_path / "empty"
    (empty).mkdir()
    (empty / "val.csv").write_text(",speaker_path,listener_path\n0,a/1,b/1\n")
    with pytest.raises(FileNotFoundError, match="3D_FV_files"):
        REACTClips(empty, "val", clip_length=4)


def test_bad_split_csvs(tmp_path):
    layout = small_layout(tmp_path)
    csv_path = layout.root / "val.csv"
    csv_path.write_text(",speaker,listener\n0,a/1,b/1\n")
    with pytest.raises(ValueError, match=re.escape(str(csv_path)) + ".*speaker_path"):
        _setup(layout, tmp_path)
    csv_path.write_text(",speaker_path,listener_path\n0,a/1\n")
    with pytest.raises(ValueError, match=re.escape(str(csv_path)) + ".*row 2"):
        _setup(layout, tmp_path)
    csv_path.unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(str(csv_path))):
        _setup(layout, tmp_path)


@pytest.mark.parametrize("shape", [(20, 57), (20, 2, 58), (20, 1, 57)])
def test_3dmm_of_the_wrong_shape(tmp_path, shape):
    layout = small_layout(tmp_path)
    path = layout.file("val", "tdmm", layout.pairs["val"][0][0])
    np.save(path, np.zeros(shape, dtype=np.float32))
    with pytest.raises(ValueError, match=re.escape(str(path)) + r".*\(T, 58\)"):
        _setup(layout, tmp_path)


def test_truncated_files(tmp_path):
    layout = small_layout(tmp_path, video_format="mp4")
    tdmm = layout.file("val", "tdmm", layout.pairs["val"][0][0])
    tdmm.write_bytes(tdmm.read_bytes()[:1000])
    with pytest.raises(ValueError, match=re.escape(str(tdmm)) + ".*truncated"):
        _setup(layout, tmp_path)

    layout = small_layout(tmp_path / "b", video_format="mp4")
    video = layout.file("val", "video", layout.pairs["val"][0][0])
    video.write_bytes(video.read_bytes()[: video.stat().st_size // 3])
    dm = _setup(layout, tmp_path / "b")
    with pytest.raises(ValueError, match=re.escape(str(video))):
        _read_all(dm)

    layout = small_layout(tmp_path / "c", video_format="png")
    folder = layout.file("val", "video", layout.pairs["val"][0][0])
    for i in (20, 19, 18):  # three frames lost
        (folder / f"{i}.png").unlink()
    dm = _setup(layout, tmp_path / "c", eval_clip_length=16)
    with pytest.raises(ValueError, match=re.escape(str(folder)) + " has 17 frames"):
        _read_all(dm)


@pytest.mark.parametrize(
    "content, message",
    [
        ("columns", r"row 2 has 24 columns; expected 25"),
        ("nan", r"row 4, column 3 is nan; expected finite"),
        ("text", r"row 3, column 5 is 'high'; expected a number"),
        ("no_header", r"first row is numeric; expected a header row"),
    ],
)
def test_bad_emotion_csv(tmp_path, content, message):
    layout = small_layout(tmp_path)
    rel = layout.pairs["val"][0][1]
    path = layout.file("val", "emotion", rel)
    emotion = layout.emotion[rel].astype(np.float64)
    if content == "columns":
        write_emotion_csv(path, emotion[:, :24])
    elif content == "nan":
        emotion[2, 2] = np.nan
        write_emotion_csv(path, emotion)
    elif content == "no_header":
        write_emotion_csv(path, emotion, header=False)
    else:
        lines = path.read_text().splitlines()
        cells = lines[2].split(",")
        cells[4] = "high"
        lines[2] = ",".join(cells)
        path.write_text("\n".join(lines))
    dm = _setup(layout, tmp_path)
    with pytest.raises(ValueError, match=re.escape(str(path)) + ": " + message):
        _read_all(dm)


def test_modalities_may_differ_by_one_frame_but_not_more(tmp_path):
    layout = small_layout(tmp_path)
    rel = layout.pairs["val"][0][1]
    path = layout.file("val", "emotion", rel)
    write_emotion_csv(path, layout.emotion[rel][:19])  # 19 rows vs 20 frames: real data's 750/751
    dm = _setup(layout, tmp_path, eval_clip_length=19)
    item = dm.datasets["val"][0]
    assert item["listener_emotion"].shape == (19, 25) and dm.datasets["val"].usable_length(0) == 19
    write_emotion_csv(path, layout.emotion[rel][:15])
    dm = _setup(layout, tmp_path, eval_clip_length=15)
    with pytest.raises(ValueError, match=re.escape(str(path)) + " has 15 frames but .* has 20"):
        _read_all(dm)

    tdmm = layout.file("val", "tdmm", layout.pairs["val"][0][0])
    np.save(tdmm, layout.tdmm[layout.pairs["val"][0][0]][:12])
    with pytest.raises(ValueError, match=re.escape(str(tdmm)) + " has 12 frames but its partner"):
        _setup(layout, tmp_path, eval_clip_length=10)


def test_bad_neighbour_matrices(tmp_path):
    layout = small_layout(tmp_path, neighbour_dtype="int8")
    matrix = layout.root / "neighbour_emotion_val.npy"
    dm = _setup(layout, tmp_path, num_neighbours=2)
    np.testing.assert_array_equal(dm.neighbour_matrix("val"), layout.neighbours["val"])
    np.save(matrix, np.ones((3, 3)))
    with pytest.raises(ValueError, match=re.escape(str(matrix)) + r".*3x3 but val.csv gives 2"):
        _setup(layout, tmp_path, num_neighbours=2)
    np.save(matrix, np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match=re.escape(str(matrix)) + ".*0/1"):
        make_dm(layout.root, tmp_path).neighbour_matrix("val")
    matrix.unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(str(matrix)) + ".*matrix_split.py"):
        _setup(layout, tmp_path, num_neighbours=2)
    _setup(layout, tmp_path, num_neighbours=0)  # not needed without neighbours


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(batch_size=0), "batch_size"),
        (dict(audio_sample_rate=16001), "multiple of fps"),
        (dict(num_neighbours=-1), "num_neighbours"),
        (dict(clip_length=2.5), "clip_length"),
        (dict(world=[1]), "world"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        REACTDataModule(root=str(tmp_path), **kwargs)


def test_bad_stage_and_split(layout, tmp_path):
    with pytest.raises(ValueError, match="stage"):
        make_dm(layout.root, tmp_path).setup("train")
    with pytest.raises(ValueError, match="split"):
        REACTClips(layout.root, "dev")


def test_cache_directory_defaults_to_facezoo_home(monkeypatch, tmp_path):
    monkeypatch.setenv("FACEZOO_HOME", str(tmp_path / "home"))
    assert REACTDataModule(root=str(tmp_path)).cache_dir == tmp_path / "home" / "cache" / "react"
    monkeypatch.delenv("FACEZOO_HOME")
    assert react.default_cache_dir() == Path(os.path.expanduser("~/.cache/facezoo/cache/react"))
