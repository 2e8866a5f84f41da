"""The smile and interview suites: the per-method evaluation functions, and the references their
figures already contain.

* smile: ``zoo.cmmnet.evaluate.evaluate_cmmnet(model, datamodule, *, k, seed, split)``;
* interview: ``zoo.dyadgan.evaluate.evaluate_dyadgan(model, datamodule, *, num_samples, seed, split)``.

Both evaluations also measure the real data on its own (figures that do not depend on the model):
the real sequences' jerk, FID_world between two real sets, the error of repeating the last real
frame or of the mean shape, the classifier's accuracy and the IS of real smiles. Those become
reference rows of the leaderboard, each figure put in the column of the model figure it is the
floor or ceiling of (:data:`REFERENCE_COLUMNS`), so a reader sees e.g. the C-LSTM's MSE next to
the mean face's.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "EVALUATORS",
    "REFERENCE_COLUMNS",
    "evaluator",
    "reference_metrics",
    "split_evaluation",
]

# suite -> (module, function, keyword for the number of samples, its default)
EVALUATORS: dict[str, tuple[str, str, str, int]] = {
    "smile": ("zoo.cmmnet.evaluate", "evaluate_cmmnet", "k", 3),
    "interview": ("zoo.dyadgan.evaluate", "evaluate_dyadgan", "num_samples", 3),
}
_CLASSES = ("posed", "spontaneous")  # datamodules.smile.SMILE_CLASSES

# suite -> reference -> {leaderboard column: the evaluation's model-independent figure}
REFERENCE_COLUMNS: dict[str, dict[str, dict[str, str]]] = {
    "smile": {
        # real test smiles: the classifier's accuracy on them is what "class consistency" of a
        # perfect generator would be; their IS and their spread across sequences (diversity_au)
        "ground_truth": {
            **{f"{c}/class_consistency": f"{c}/classifier_accuracy_real" for c in _CLASSES},
            "class_auc": "classifier_auc_real",
            **{f"{c}/is": f"{c}/is_real" for c in _CLASSES},
            **{f"{c}/diversity_au": f"{c}/diversity_au_real" for c in _CLASSES},
        },
        # distinct smiles of one person and class (the embedded world's variants, or one subject's
        # several test smiles): what K distinct modes should reach (zoo.cmmnet.same_person)
        "same_person": {
            **{f"{c}/diversity_au": f"{c}/diversity_au_same_person" for c in _CLASSES},
            **{f"{c}/diversity_landmarks_px": f"{c}/diversity_landmarks_px_same_person" for c in _CLASSES},
        },
    },
    "interview": {
        # the real interviewer: its own jerk; FID_world of real training faces against real test faces
        "ground_truth": {"dictionary_jerk": "jerk_real", "lstm_jerk": "jerk_real",
                         "lstm_nonoverlap_jerk": "jerk_real", "fid_world": "fid_world_real_reference",
                         "fid_world_dictionary": "fid_world_real_reference"},
        # the training mean shape (zeros in standardised parameters) for the next `horizon` frames
        "mean_face": {"lstm_nonoverlap_mse": "mean_shape_mse", "lstm_overlap_rollout_mse": "mean_shape_mse"},
        # the last real frame repeated: 1 frame ahead (the overlapping C-LSTM's task), `horizon` ahead
        "hold_last": {"lstm_overlap_mse": "hold_last_next_mse", "lstm_nonoverlap_mse": "hold_last_mse",
                      "lstm_overlap_rollout_mse": "hold_last_mse"},
    },
}


def evaluator(suite: str) -> Callable[..., Mapping[str, Any]]:
    """The evaluation function of ``suite``; a ValueError naming it when this checkout lacks it."""
    if suite not in EVALUATORS:
        raise ValueError(f"suite {suite!r} has no evaluation function (suites: {sorted(EVALUATORS)})")
    module_name, function, _, _ = EVALUATORS[suite]
    try:
        return getattr(importlib.import_module(module_name), function)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"suite {suite!r} needs {module_name}.{function}(model, datamodule, ...), which this "
                         f"checkout does not provide ({err})") from err


def split_evaluation(values: Mapping[str, Any]) -> tuple[dict[str, float | None], list[str]]:
    """An evaluation's result -> (numeric figures, notes). Numbers (and None) are figures; strings,
    lists of strings and a ``notes`` attribute (``zoo.cmmnet.evaluate.EvaluationResult``) are notes."""
    if not isinstance(values, Mapping):
        raise ValueError(f"the evaluation returned {type(values).__name__}; expected a dict of figures")
    metrics: dict[str, float | None] = {}
    notes: list[str] = [str(n) for n in getattr(values, "notes", None) or []]
    for key, value in values.items():
        if isinstance(value, bool):
            metrics[key] = float(value)
        elif isinstance(value, (int, float)) or value is None:
            metrics[key] = value
        elif hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            metrics[key] = float(value.item())
        elif isinstance(value, str):
            notes.append(f"{key}: {value}")
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            notes.extend(f"{key}: {v}" for v in value)
        else:
            raise ValueError(f"the evaluation returned {key}={type(value).__name__}; expected numbers or notes (str)")
    return metrics, notes


def reference_metrics(suite: str, figures: Mapping[str, float | None]) -> dict[str, dict[str, float]]:
    """``{reference: {column: value}}`` from one evaluation's model-independent figures; a
    reference none of whose figures is present is left out."""
    out = {}
    for name, columns in REFERENCE_COLUMNS.get(suite, {}).items():
        values = {column: figures[key] for column, key in columns.items() if figures.get(key) is not None}
        if values:
            out[name] = values
    return out
