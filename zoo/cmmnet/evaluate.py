"""CMM-Net's evaluation (paper Sec. 4.3, Tables 1 and 3) plus the issue's diversity and
class-consistency figures, per class (posed / spontaneous), on one DataModule split.

Every test sequence's neutral frame (and, for CMM-Net, its landmark image) is turned into K
videos of the sequence's own class; those are compared with the original sequence.

AU intensities are always read relative to the *same video's* first frame: real sequences
against their neutral frame 0, generated videos (and landmark sequences) against their own first
frame, the model's rendering of that neutral face. OpenFace, the paper's estimator, likewise
calibrates each video to the person's own neutral (Baltrusaitis et al., FG 2015); reading a
generated video against the *real* neutral would add the renderer's constant offset to every
frame (measured: the VAE's reconstructions of real test smiles read AU12 2.1 at frame 0 against
the real neutral, 0.6 against their own first frame; real 0.66; docs/cmmnet.md).

* ``ssim``: SSIM of every generated frame against the original frame at the same time, mean
  over frames, modes and sequences (Table 1);
* ``ssim_neutral_copy``: the same SSIM for the neutral frame held still for all T frames, the
  do-nothing baseline: a smile changes only the mouth and eyes, so it scores high (0.92 on the
  embedded world's test sets of 40 and 200 people, above every trained CMM-Net; docs/cmmnet.md)
  and SSIM alone cannot tell a generator that smiles from one that does not;
* ``is``, ``is_real``, ``delta_is``: Inception Score of the generated and original frames and
  their difference (Table 1), only when the Inception weights are on disk
  (:mod:`zoo.metrics.feature_nets`); otherwise the keys are absent and ``notes`` says why;
  one split (the test set is small);
* ``au6_curve_distance``, ``au12_curve_distance``: Table 3: the estimated intensity over the
  generated videos (all K modes) and over the original videos, each smoothed over 5 frames and
  averaged over the test set, summed absolute difference over frames
  (:func:`zoo.metrics.smile.au_curve_distance`). The estimator (:mod:`zoo.cmmnet.au_estimator`)
  is fitted on the training split and run identically on both sides; ``au_estimator_mae_real``
  is its error on real test frames (against ``batch["au"]``), the floor of these distances;
* ``diversity_au``: mean pairwise L1 between the K modes' estimated AU curves (per frame and AU)
  and ``diversity_au_real`` the same between *different* real test sequences of the class: a
  scale for it; ``diversity_video``: mean pairwise absolute pixel difference between modes
  (pixels in [0, 1]); ``diversity_landmarks_px`` (CMM-Net only): mean symmetric Chamfer distance,
  in pixels, between the modes' landmark images (pixels with probability > 0.5), frame by frame,
  and ``diversity_landmarks_px_real`` the same between different real test sequences of the class
  (their eye-aligned landmark images; people differ too, so it is an upper scale);
* ``diversity_landmarks_px_same_person``, ``diversity_au_same_person``,
  ``diversity_video_same_person``: the same three figures between distinct smiles *of one person
  and one class* (:mod:`zoo.cmmnet.same_person`), the scale the K modes should be judged on:
  on the embedded NEMO world, each test smile re-simulated in the world's four variants (open /
  closed mouth x eyes open / closing; same person, timing and seed), mean over test sequences;
  on real data, the test sequences sharing subject and class (absent, with a note, if none do);
  ``same_person_source`` (class-free) is 1 for the world's variants, 0 for same-subject videos;
* the translator alone (CMM-Net only), fed the *real* test landmark images with the neutral
  face: ``ssim_translated_real``, ``au6_curve_distance_translated_real``,
  ``au12_curve_distance_translated_real`` and ``classifier_accuracy_translated_real``, the
  upper bound of the generated videos' figures (what is lost in drawing faces from landmarks);
  a translator that reads the class (``translator_label``) is also given the *other* class with
  the same landmark images: ``classifier_accuracy_translated_real_label_swapped`` (still against
  the true class) says how much of the faces' class comes from the landmarks rather than the label;
* the *landmark path* (CMM-Net only), the same checks without the translator, so that they say
  what the conditional LSTM and the modes do rather than how well faces are drawn: a second AU
  estimator, fitted on the training split's landmark images (:func:`landmark_input`), reads the
  modes' landmark images (pixels with probability > 0.5) and a second classifier on its curves
  gives ``class_consistency_landmarks`` (``classifier_accuracy_real_landmarks`` on the real
  test landmark images; ``classifier_accuracy_reconstructed_landmarks`` on the landmark VAE's
  reconstructions of them, the ceiling of the generated figure: session 7 measured 0.24 / 0.86
  there against 0.84 / 0.93 on the real images, the decoder drawing posed smiles too weak, which
  this classifier reads as spontaneous; docs/cmmnet.md); ``diversity_au_landmarks`` is the modes' AU diversity read this way and
  ``diversity_au_landmarks_same_person`` the same-person reference's;
* ``modes_matched_variants`` (embedded world, CMM-Net): each mode is assigned the world variant
  of its test smile closest to it (landmark Chamfer over the second half of the sequence); the
  number of distinct variants the K modes turn into, mean over test smiles: 1 = every mode is
  the same smile, K = every mode a different variant (K of V variants drawn independently and
  uniformly would give V (1 - (1 - 1/V)^K), 2.31 for K = 3, V = 4). Unlike the pairwise figures,
  modes that differ only in speckle do not score. ``modes_matched_mouth_styles`` and
  ``modes_matched_eye_styles`` count the distinct mouth (closed / open) and eye (open / closing)
  styles among those variants, 1 .. 2 each (1.75 for K = 3 random ones): the two differ a lot in
  how visible they are in 64 px landmark images (the apex frames of two variants differing only
  in the mouth are 0.49 px apart, only in the eyes 0.07 px; docs/cmmnet.md, session 13);
* ``last_frame_px_neutral``, ``last_frame_px_conditional``, ``last_frame_px_best_mode``
  (class-free; CMM-Net only): does the generator beat doing nothing *on people it has not seen*?
  Mean Chamfer distance (px) between the real sequence's last frame and, in turn, its own neutral
  frame (the copy-the-neutral baseline), the conditional LSTM's last landmark image and the
  closest of the K modes' (probabilities > 0.5); the same three with ``_train`` on as many
  training sequences (the first ones), so the gap between the two says how much the recurrent
  part memorised its training people (session 6: 0.20 px on training people against 0.53 on
  held-out ones, above their neutral baseline 0.51; docs/cmmnet.md);
* ``class_consistency``: the fraction of generated videos classified as the requested class by
  :class:`~zoo.cmmnet.smile_classifier.SmileClassifier` fitted on the training split's real
  sequences (estimated AU curves); every test neutral face is generated with *both* labels;
  ``classifier_accuracy_real``: its accuracy on the real test sequences of the class (and
  overall), without which consistency means little;
* ``class_auc`` (class-free): the ROC AUC of that classifier's "spontaneous" logit over all
  generated videos against the label requested (0.5 = the label changes nothing the classifier
  reads, 1 = every spontaneous request ranks above every posed one), next to
  ``classifier_auc_real`` on the real test sequences; ``class_auc_landmarks`` /
  ``classifier_auc_real_landmarks`` the same on the landmark path. Consistency needs the
  generated curves on the right side of a threshold fitted to real smiles; the AUC asks only
  whether the requested class can still be read from the output's ranking, so a generator whose
  smiles are all too weak (every logit shifted towards "spontaneous") but still keeps the
  classes apart scores high here and low in consistency (docs/cmmnet.md, session 8).

Keys are ``"<class>/<figure>"`` plus class-free ones; the result is a ``dict[str, float]`` with a
``notes`` attribute (list of str) for what was left out and why.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

import cv2
import numpy as np
import torch
from einops import rearrange, repeat
from torch import Tensor
from torchmetrics.functional.image import structural_similarity_index_measure

from datamodules.smile import SMILE_CLASSES
from zoo.cmmnet.au_estimator import fit_au_estimator
from zoo.cmmnet.same_person import same_subject_groups, variant_styles, world_variant_sequences
from zoo.cmmnet.smile_classifier import SmileClassifier, roc_auc
from zoo.common.eval_mode import evaluation_mode
from zoo.metrics.realism import SSIM_KERNEL_SIZE, SSIM_SIGMA, delta_inception_score
from zoo.metrics.smile import au_curve_distance

__all__ = ["EvaluationResult", "evaluate_cmmnet", "chamfer_px", "pairwise_mean", "landmark_input"]


class EvaluationResult(dict):
    """``{name: float}`` with ``notes``: figures left out and why."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notes: list[str] = []


def _to_uint8(x: Tensor) -> Tensor:
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def _ssim(fake: Tensor, real: Tensor) -> Tensor:
    """Mean SSIM of uint8 frames (N, 3, H, W): :func:`zoo.metrics.realism.structural_similarity`'s
    window, sigma and constants, in float32 (16x faster than its float64 on a CPU, |diff| < 1e-6)."""
    return structural_similarity_index_measure(fake.float(), real.float(), gaussian_kernel=True, sigma=SSIM_SIGMA,
                                               kernel_size=SSIM_KERNEL_SIZE, data_range=255.0, reduction="none").mean()


def pairwise_mean(x: Tensor) -> Tensor:
    """Mean absolute difference over every unordered pair along dim 1 of (B, K, ...) -> (B,)."""
    if x.ndim < 2 or x.shape[1] < 2:
        raise ValueError(f"x: expected (B, K >= 2, ...), got {tuple(x.shape)}")
    pairs = [(x[:, i] - x[:, j]).abs().flatten(1).mean(dim=1) for i, j in itertools.combinations(range(x.shape[1]), 2)]
    return torch.stack(pairs, dim=1).mean(dim=1)


def landmark_input(marks: Tensor) -> Tensor:
    """Landmark images (..., 1, S, S) in {0, 1} (or probabilities) -> the AU estimator's input
    (..., 3, S, S) in [-1, 1], so one estimator architecture reads faces and landmark images."""
    if marks.ndim < 3 or marks.shape[-3] != 1:
        raise ValueError(f"marks: expected landmark images (..., 1, S, S), got {tuple(marks.shape)}")
    return (marks.float() * 2 - 1).expand(*marks.shape[:-3], 3, *marks.shape[-2:])


def _distance_to(lit: np.ndarray) -> np.ndarray:
    """Euclidean distance of every pixel to the nearest lit pixel (exact, OpenCV)."""
    return cv2.distanceTransform(np.where(lit, 0, 255).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def chamfer_px(a: Tensor, b: Tensor, threshold: float = 0.5) -> Tensor:
    """Symmetric Chamfer distance in pixels between the lit pixels (> threshold) of two landmark
    images (H, W): the mean of (mean distance from a's pixels to b's, and back); NaN when either
    is empty. Distance transforms make it O(H W), whatever the number of lit pixels."""
    la, lb = (x.detach().cpu().numpy() > threshold for x in (a, b))
    if not la.any() or not lb.any():
        return torch.tensor(float("nan"))
    return torch.tensor((_distance_to(lb)[la].mean() + _distance_to(la)[lb].mean()) / 2, dtype=torch.float64)


def _mode_chamfer(modes: Tensor) -> Tensor:
    """Mean pairwise Chamfer distance between K landmark-image sequences (K, T, 1, H, W)."""
    values = [chamfer_px(modes[i, t, 0], modes[j, t, 0]) for i, j in itertools.combinations(range(len(modes)), 2)
              for t in range(modes.shape[1])]
    return torch.stack(values).nanmean()


def _gather(dataset, batch_size: int,
            keys: tuple[str, ...] = ("video", "neutral", "landmark_images", "au", "label")) -> dict[str, Tensor]:
    """The whole split as tensors (``keys``, plus ``subject`` when the batches have it)."""
    from torch.utils.data import DataLoader

    parts: dict[str, list[Tensor]] = defaultdict(list)
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        for key in keys:
            if key not in batch:
                raise ValueError(f"datamodule batches have no '{key}' (keys: {sorted(batch)}); expected a smile DataModule")
            parts[key].append(batch[key])
        if "subject" in batch:  # optional: only the same-subject reference needs it
            parts["subject"].append(batch["subject"])
    return {k: torch.cat(v) for k, v in parts.items()}


def _dataset(datamodule, split: str):
    if hasattr(datamodule, "dataset"):
        return datamodule.dataset(split)
    datamodule.setup("fit" if split == "train" else "test")
    if split not in datamodule.datasets:
        raise ValueError(f"datamodule: no '{split}' dataset after setup")
    return datamodule.datasets[split]


@torch.no_grad()
def _translate(model, marks: Tensor, neutral: Tensor, labels: Tensor, batch_size: int) -> Tensor:
    """The translator on landmark images (B, T, 1, S, S) with neutral faces (B, 3, S, S) and labels
    (B,) (read with ``translator_label``) -> (B, T, 3, S, S)."""
    out = []
    with evaluation_mode(model):
        for i in range(0, len(marks), batch_size):
            m, z = marks[i:i + batch_size].to(model.device), neutral[i:i + batch_size].to(model.device)
            out.append(model.translate_sequences(m, z, m[:, 0], labels[i:i + batch_size].to(model.device)).cpu())
    return torch.cat(out)


@torch.no_grad()
def _reconstruct(model, marks: Tensor, batch_size: int) -> Tensor:
    """The landmark VAE's reconstructions (encoder mean, decoded, probability > 0.5) of landmark-image
    sequences (B, T, 1, S, S): what the decoder can draw of a real smile, the landmark path's ceiling."""
    out = []
    with evaluation_mode(model):
        for i in range(0, len(marks), batch_size):
            part = marks[i:i + batch_size].to(model.device)
            mu = model.encoder(rearrange(part.float(), "b t c h w -> (b t) c h w"))[0]
            logits = model.decode(rearrange(mu, "(b t) d -> b t d", b=len(part)), part[:, 0].float())
            out.append((torch.sigmoid(logits) > 0.5).float().cpu())
    return torch.cat(out)


def _same_person_reference(datamodule, dataset, test: dict[str, Tensor], estimator, landmark_estimator,
                           result: EvaluationResult) -> tuple[dict[tuple[int, str], list[Tensor]], Tensor | None]:
    """Per (class, figure): the diversity of distinct smiles of one person and class (module doc);
    and the world variants' landmark images (N, V, T, 1, S, S), or None without world metadata."""
    stats: dict[tuple[int, str], list[Tensor]] = defaultdict(list)
    labels = test["label"]
    root = getattr(datamodule, "data_root", None)
    items, files = getattr(dataset, "items", None), getattr(dataset, "files", None)
    variants = None
    if root is not None and items is not None and files is not None and len(items) == len(labels):
        segments = []
        for path in files:
            with np.load(path) as data:
                segments.append(data["indices"] if "indices" in data else None)
        if all(s is not None for s in segments):
            variants = world_variant_sequences(root, [i.stem for i in items], segments, test["video"].shape[-1])
    if variants is not None:
        result["same_person_source"] = 1.0
        for i, c in enumerate(labels.tolist()):
            video = variants["video"][i]  # (V, T, ...): each variant against its own first frame, as real data
            _group_figures(stats, c, video, video[:, 0], variants["landmark_images"][i], estimator, landmark_estimator)
        return stats, variants["landmark_images"]
    groups = same_subject_groups(test["subject"], labels) if "subject" in test else []
    if not groups:
        result.notes.append("same-person diversity omitted: no embedded-world metadata and no subject with several "
                            "test sequences of one class")
        return stats, None
    result["same_person_source"] = 0.0
    for group in groups:
        c = int(labels[group[0]])
        _group_figures(stats, c, test["video"][group], test["neutral"][group], test["landmark_images"][group],
                       estimator, landmark_estimator)
    return stats, None


def _closest_variants(modes: Tensor, variants: Tensor, stride: int = 2) -> Tensor:
    """The world variant (index into ``variants`` (V, T, 1, S, S)) closest to each of the K modes
    (K, T, 1, S, S) of one test smile: mean Chamfer px over the second half of the sequence, where
    the smile is formed, every ``stride`` frames; (K,) long."""
    steps = modes.shape[1]
    frames = range(steps // 2, steps, stride)
    distance = torch.tensor([[float(np.nanmean([chamfer_px(modes[k, t, 0], variants[v, t, 0]) for t in frames]))
                              for v in range(len(variants))] for k in range(len(modes))])
    return distance.nan_to_num(float("inf")).argmin(dim=1)


def _matched_styles(closest: Tensor) -> dict[str, Tensor]:
    """How many of the world's variants the K modes of one test smile turn into, from their closest
    variants (K,) (:func:`_closest_variants`, indices in the order of
    :func:`~zoo.cmmnet.same_person.variant_styles`): the distinct variants, 1 (all modes are one
    smile) .. min(K, V), and the distinct mouth and eye styles among them, 1 .. 2 each."""
    order = variant_styles()
    styles = [order[i] for i in closest.tolist()]
    return {"modes_matched_variants": torch.tensor(float(len(set(styles)))),
            "modes_matched_mouth_styles": torch.tensor(float(len({mouth for mouth, _ in styles}))),
            "modes_matched_eye_styles": torch.tensor(float(len({eyes for _, eyes in styles})))}


@torch.no_grad()
def _last_frame_figures(model, marks: Tensor, labels: Tensor, batch_size: int) -> dict[str, float]:
    """Mean Chamfer px between each real sequence's last landmark image (``marks`` (N, T, 1, S, S))
    and its neutral frame, the conditional LSTM's last frame and the closest mode's last frame."""
    neutral, conditional, best = [], [], []
    steps = marks.shape[1]
    for start in range(0, len(marks), batch_size):
        part = marks[start:start + batch_size]
        cond, modes = model.generate_landmarks(part[:, 0].to(model.device), labels[start:start + batch_size].to(model.device),
                                               steps)
        cond, modes = cond.cpu(), modes.cpu()
        for i, real in enumerate(part[:, -1, 0]):
            neutral.append(chamfer_px(part[i, 0, 0], real))
            conditional.append(chamfer_px(cond[i, -1, 0], real))
            best.append(torch.stack([chamfer_px(m, real) for m in modes[i, :, -1, 0]]).nan_to_num(float("inf")).min())
    def mean(values: list[Tensor]) -> float:  # over the images with lit pixels (an empty image gives NaN / inf)
        values = torch.stack(values).float()
        return float(values.masked_fill(values.isinf(), float("nan")).nanmean())

    return {"neutral": mean(neutral), "conditional": mean(conditional), "best_mode": mean(best)}


def _group_figures(stats, c: int, video: Tensor, neutral: Tensor, marks: Tensor, estimator,
                   landmark_estimator) -> None:
    """The same-person figures of one group of sequences of class c: AU diversity of the faces ``video``
    (V, T, 3, S, S) read against ``neutral`` (V, 3, S, S), pixel diversity, and (when there is a landmark
    path) Chamfer and landmark-path AU diversity of their landmark images ``marks`` (V, T, 1, S, S)."""
    au = estimator.sequences(neutral, video)
    stats[(c, "diversity_au_same_person")].append(pairwise_mean(au[None])[0])
    stats[(c, "diversity_video_same_person")].append(pairwise_mean((video[None] + 1) / 2)[0])
    if landmark_estimator is None:
        return
    stats[(c, "diversity_landmarks_px_same_person")].append(_mode_chamfer(marks))
    au = landmark_estimator.sequences(landmark_input(marks[:, 0]), landmark_input(marks))
    stats[(c, "diversity_au_landmarks_same_person")].append(pairwise_mean(au[None])[0])


@torch.no_grad()
def evaluate_cmmnet(model, datamodule, *, k: int = 3, seed: int = 0, split: str = "test") -> EvaluationResult:
    """Per-class SSIM, IS / Delta-IS, AU-curve distances, mode diversity and class consistency of
    a CMM-Net (or CRA-Net) ``model`` on ``datamodule``'s ``split`` (module docstring)."""
    if split not in ("val", "test"):
        raise ValueError(f"split: expected 'val' or 'test', got {split!r}")
    if k < 1:
        raise ValueError(f"k: expected >= 1, got {k}")
    result = EvaluationResult()
    cranet = model.hparams.variant == "cranet"
    if not cranet and k > model.hparams.num_modes:
        result.notes.append(f"k={k} > the model's num_modes={model.hparams.num_modes}: using {model.hparams.num_modes}")
        k = model.hparams.num_modes
    if cranet:
        result.notes.append("CRA-Net is deterministic: its K videos are copies (diversity 0 by construction)")
    device = model.device
    torch.manual_seed(seed)
    batch_size = getattr(datamodule, "eval_batch_size", 8)
    train = _gather(_dataset(datamodule, "train"), batch_size)
    test_dataset = _dataset(datamodule, split)
    test = _gather(test_dataset, batch_size)
    steps = test["video"].shape[1]

    # the same estimator and classifier for real and generated sequences, fitted on the training split
    estimator = fit_au_estimator(train["neutral"], train["video"], train["au"].clamp(0, 5), seed=seed)
    classifier = SmileClassifier(num_frames=steps, num_aus=train["au"].shape[-1])
    classifier.fit(estimator.sequences(train["neutral"], train["video"]), train["label"])
    real_au = estimator.sequences(test["neutral"], test["video"])
    result["au_estimator_mae_real"] = float((real_au - test["au"].clamp(0, 5)).abs().mean())
    result["classifier_accuracy_real"] = classifier.accuracy(real_au, test["label"])
    result["num_test_sequences"] = float(len(test["label"]))
    result["k"] = float(k)
    landmark_estimator = landmark_classifier = real_au_landmarks = None
    if not cranet:  # the landmark path: the same estimator and classifier, on landmark images
        first, marks = landmark_input(train["landmark_images"][:, 0]), landmark_input(train["landmark_images"])
        landmark_estimator = fit_au_estimator(first, marks, train["au"].clamp(0, 5), seed=seed)
        landmark_classifier = SmileClassifier(num_frames=steps, num_aus=train["au"].shape[-1])
        landmark_classifier.fit(landmark_estimator.sequences(first, marks), train["label"])
        real_au_landmarks = landmark_estimator.sequences(landmark_input(test["landmark_images"][:, 0]),
                                                         landmark_input(test["landmark_images"]))
        result["classifier_accuracy_real_landmarks"] = landmark_classifier.accuracy(real_au_landmarks, test["label"])
        reconstructed = landmark_input(_reconstruct(model, test["landmark_images"], batch_size))
        reconstructed_classes = landmark_classifier.predict(
            landmark_estimator.sequences(reconstructed[:, 0], reconstructed))  # against its own first frame
    if not cranet:  # held-out people against training people (module doc)
        n = len(test["label"])
        for suffix, data in (("", test), ("_train", {k: v[:n] for k, v in train.items()})):
            for name, value in _last_frame_figures(model, data["landmark_images"], data["label"], batch_size).items():
                result[f"last_frame_px_{name}{suffix}"] = value
    same_person, world_variants = _same_person_reference(datamodule, test_dataset, test, estimator,
                                                         landmark_estimator, result)
    translated_au = None
    if not cranet:  # the translator alone on the real landmark images: the upper bound of the face figures
        translated = _translate(model, test["landmark_images"], test["neutral"], test["label"], batch_size)
        translated_au = estimator.sequences(translated[:, 0], translated)  # against its own first frame
        translated_ssim = torch.stack([_ssim(_to_uint8(translated[i]), _to_uint8(test["video"][i]))
                                       for i in range(len(translated))])
        if model.hparams.get("translator_label"):
            swapped = _translate(model, test["landmark_images"], test["neutral"], 1 - test["label"], batch_size)
            swapped_au = estimator.sequences(swapped[:, 0], swapped)

    try:
        from zoo.metrics.feature_nets import build_feature_net

        inception = build_feature_net("is").to(device)
    except (FileNotFoundError, ValueError) as err:
        inception = None
        result.notes.append(f"IS / Delta-IS omitted: {err}")

    model.eval()
    generated_au: dict[int, list[Tensor]] = defaultdict(list)
    consistency: dict[int, list[Tensor]] = defaultdict(list)
    consistency_landmarks: dict[int, list[Tensor]] = defaultdict(list)
    # (the classifier's "spontaneous" logits, requested labels) of every generated sequence, for the AUCs
    ranked: dict[str, list[tuple[Tensor, Tensor]]] = defaultdict(list)
    stats: dict[tuple[int, str], list[Tensor]] = defaultdict(list)
    frames_fake: dict[int, list[Tensor]] = defaultdict(list)
    for start in range(0, len(test["label"]), batch_size):
        part = {key: value[start:start + batch_size].to(device) for key, value in test.items()}
        neutral, label, video = part["neutral"], part["label"], part["video"]
        marks = None if cranet else part["landmark_images"][:, 0]
        for own, requested in ((True, label), (False, 1 - label)):
            fake = model.generate(neutral, requested, k, marks, steps).float().cpu()  # (B, K, T, 3, S, S)
            fake_flat = rearrange(fake, "b k t c h w -> (b k) t c h w")
            fake_au = estimator.sequences(fake_flat[:, 0], fake_flat)  # each video against its own first frame
            predicted = rearrange(classifier.predict(fake_au), "(b k) -> b k", k=k)
            ranked["faces"].append((classifier(fake_au).detach(), repeat(requested.cpu(), "b -> (b k)", k=k)))
            for i, c in enumerate(requested.cpu().tolist()):
                consistency[c].append((predicted[i] == c).float())
            if not cranet:
                _, modes = model.generate_landmarks(marks, requested, steps)
                modes = (modes[:, :k].cpu() > 0.5).float()  # as the Chamfer figure: the drawn lines
                modes_flat = landmark_input(rearrange(modes, "b k t c h w -> (b k) t c h w"))
                modes_au = landmark_estimator.sequences(modes_flat[:, 0], modes_flat)  # against its own first frame
                predicted = rearrange(landmark_classifier.predict(modes_au), "(b k) -> b k", k=k)
                ranked["landmarks"].append((landmark_classifier(modes_au).detach(), repeat(requested.cpu(), "b -> (b k)", k=k)))
                modes_au = rearrange(modes_au, "(b k) t a -> b k t a", k=k)
                for i, c in enumerate(requested.cpu().tolist()):
                    consistency_landmarks[c].append((predicted[i] == c).float())
                    if own and k > 1:
                        stats[(c, "diversity_au_landmarks")].append(pairwise_mean(modes_au[i][None])[0])
                        stats[(c, "diversity_landmarks_px")].append(_mode_chamfer(modes[i]))
                        if world_variants is not None:
                            closest = _closest_variants(modes[i], world_variants[start + i])
                            for figure, value in _matched_styles(closest).items():
                                stats[(c, figure)].append(value)
            if not own:
                continue
            fake_au = rearrange(fake_au, "(b k) t a -> b k t a", k=k)
            real = video.cpu()
            for i, c in enumerate(label.cpu().tolist()):
                generated_au[c].append(fake_au[i])
                ssim = _ssim(rearrange(_to_uint8(fake[i]), "k t c h w -> (k t) c h w"),
                             _to_uint8(real[i]).repeat(k, 1, 1, 1))
                stats[(c, "ssim")].append(ssim)
                if k > 1:
                    stats[(c, "diversity_au")].append(pairwise_mean(fake_au[i][None])[0])
                    stats[(c, "diversity_video")].append(pairwise_mean((fake[i][None] + 1) / 2)[0])
                if inception is not None:
                    frames_fake[c].append(_to_uint8(rearrange(fake[i], "k t c h w -> (k t) c h w")))

    labels = test["label"]
    result["class_auc"] = roc_auc(*map(torch.cat, zip(*ranked["faces"])))
    result["classifier_auc_real"] = classifier.auc(real_au, labels)
    if not cranet:
        result["class_auc_landmarks"] = roc_auc(*map(torch.cat, zip(*ranked["landmarks"])))
        result["classifier_auc_real_landmarks"] = landmark_classifier.auc(real_au_landmarks, labels)
    for c, name in enumerate(SMILE_CLASSES):
        mine = labels == c
        if not mine.any():
            result.notes.append(f"the {split} split has no {name} sequences")
            continue
        real_c = real_au[mine]
        fake_c = torch.cat(generated_au[c])
        distances = au_curve_distance(fake_c, real_c)
        result[f"{name}/au6_curve_distance"] = float(distances[0])
        if distances.numel() > 1:
            result[f"{name}/au12_curve_distance"] = float(distances[1])
        result[f"{name}/classifier_accuracy_real"] = classifier.accuracy(real_c, labels[mine])
        # the copy-the-neutral baseline of Table 1's SSIM: the neutral frame shown for all T frames
        still = [_ssim(_to_uint8(test["neutral"][i]).expand(steps, -1, -1, -1), _to_uint8(test["video"][i]))
                 for i in mine.nonzero().flatten().tolist()]
        result[f"{name}/ssim_neutral_copy"] = float(torch.stack(still).mean())
        result[f"{name}/class_consistency"] = float(torch.cat(consistency[c]).mean())
        if not cranet:
            result[f"{name}/class_consistency_landmarks"] = float(torch.cat(consistency_landmarks[c]).mean())
            result[f"{name}/classifier_accuracy_real_landmarks"] = landmark_classifier.accuracy(real_au_landmarks[mine],
                                                                                                labels[mine])
            result[f"{name}/classifier_accuracy_reconstructed_landmarks"] = float(
                (reconstructed_classes[mine] == c).float().mean())
        if translated_au is not None:
            result[f"{name}/ssim_translated_real"] = float(translated_ssim[mine].float().mean())
            upper = au_curve_distance(translated_au[mine], real_c)
            result[f"{name}/au6_curve_distance_translated_real"] = float(upper[0])
            if upper.numel() > 1:
                result[f"{name}/au12_curve_distance_translated_real"] = float(upper[1])
            result[f"{name}/classifier_accuracy_translated_real"] = classifier.accuracy(translated_au[mine], labels[mine])
            if model.hparams.get("translator_label"):
                result[f"{name}/classifier_accuracy_translated_real_label_swapped"] = classifier.accuracy(
                    swapped_au[mine], labels[mine])
        for figure in ("ssim", "diversity_au", "diversity_video", "diversity_landmarks_px", "diversity_au_landmarks",
                       "modes_matched_variants", "modes_matched_mouth_styles", "modes_matched_eye_styles",
                       "diversity_au_same_person", "diversity_video_same_person", "diversity_landmarks_px_same_person",
                       "diversity_au_landmarks_same_person"):
            values = stats[(c, figure)] or same_person[(c, figure)]
            if values:
                value = float(torch.stack(values).float().nanmean())
                if np.isnan(value):  # no landmark pixel above 0.5 in any mode: nothing to measure
                    result.notes.append(f"{name}/{figure} omitted: the generated landmark images are empty")
                    continue
                result[f"{name}/{figure}"] = value
        if len(real_c) > 1:
            result[f"{name}/diversity_au_real"] = float(pairwise_mean(real_c[None])[0])
            if not cranet:
                result[f"{name}/diversity_landmarks_px_real"] = float(_mode_chamfer(test["landmark_images"][mine]))
        if inception is not None:
            real_frames = _to_uint8(rearrange(test["video"][mine], "n t c h w -> (n t) c h w"))
            scores = delta_inception_score(torch.cat(frames_fake[c]).to(device), real_frames.to(device), splits=1,
                                           feature_extractor=inception)
            result[f"{name}/is"], result[f"{name}/is_real"] = scores["IS"], scores["IS_real"]
            result[f"{name}/delta_is"] = scores["delta_IS"]
    return result
