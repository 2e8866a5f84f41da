"""facezoo's metrics: torchmetrics ``Metric`` classes with functional twins.

REACT appropriateness / diversity / synchrony (``react``, ``react_torchmetrics``) and the DTW they
use (``dtw``) are below; realism, smile and dyadic metrics are added by their own modules.
"""

from zoo.metrics.dtw import available_backends, block_dtw, dtw, min_block_dtw
from zoo.metrics.react import (
    DEFAULT_METRICS,
    METRIC_NAMES,
    PROTOCOLS,
    ReactProtocol,
    div_c,
    div_f,
    feature_blocks,
    fr_dvs,
    fr_var,
    frc,
    frd,
    s_mse,
    score,
    tlcc,
)
from zoo.metrics.react_torchmetrics import (
    FRCMetric,
    FRDMetric,
    FRDvsMetric,
    FRVarMetric,
    REACTMetrics,
    SMSEMetric,
    TLCCMetric,
)

# Realism / smile / dyadic metrics: imports of their modules go here.

__all__ = [
    "DEFAULT_METRICS",
    "FRCMetric",
    "FRDMetric",
    "FRDvsMetric",
    "FRVarMetric",
    "METRIC_NAMES",
    "PROTOCOLS",
    "REACTMetrics",
    "ReactProtocol",
    "SMSEMetric",
    "TLCCMetric",
    "available_backends",
    "block_dtw",
    "div_c",
    "div_f",
    "dtw",
    "feature_blocks",
    "fr_dvs",
    "fr_var",
    "frc",
    "frd",
    "min_block_dtw",
    "s_mse",
    "score",
    "tlcc",
]

# Realism (FID/FVD/IS/Delta-IS/SSIM), CMM-Net AU curves, DyadGAN sequence metrics.
from datamodules.features.au_rules import au_from_blendshapes, au_from_landmarks  # noqa: E402
from zoo.metrics.dyadic import (  # noqa: E402
    SampleDiversity,
    SequenceJerk,
    SequenceMSE,
    best_of_k_mse,
    mean_jerk,
    sample_diversity,
    sequence_mse,
)
from zoo.metrics.feature_nets import FEATURE_NET_WEIGHTS, build_feature_net, resolve_weights  # noqa: E402
from zoo.metrics.realism import (  # noqa: E402
    DeltaInceptionScore,
    FrechetInceptionDistance,
    FrechetVideoDistance,
    InceptionScore,
    StructuralSimilarity,
    delta_inception_score,
    frechet_distance,
    frechet_inception_distance,
    frechet_video_distance,
    inception_score,
    structural_similarity,
)
from zoo.metrics.smile import AUCurveDistance, au_curve_distance  # noqa: E402

__all__ += [
    "AUCurveDistance",
    "DeltaInceptionScore",
    "FEATURE_NET_WEIGHTS",
    "FrechetInceptionDistance",
    "FrechetVideoDistance",
    "InceptionScore",
    "SampleDiversity",
    "SequenceJerk",
    "SequenceMSE",
    "StructuralSimilarity",
    "au_curve_distance",
    "au_from_blendshapes",
    "au_from_landmarks",
    "best_of_k_mse",
    "build_feature_net",
    "delta_inception_score",
    "frechet_distance",
    "frechet_inception_distance",
    "frechet_video_distance",
    "inception_score",
    "mean_jerk",
    "resolve_weights",
    "sample_diversity",
    "sequence_mse",
    "structural_similarity",
]
