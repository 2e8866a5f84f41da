"""nn building blocks shared by the zoo's methods (plain ``nn.Module``s, no Lightning).

ReactFace's speaker side lives here so Trans-AE and ReactFace share it: positional encodings
(``positional``), Eq. 11 alignment-bias masks (``alignment_bias``), the 3D-conv video encoder
(``video_encoder``), the wav2vec 2.0 speech encoder (``audio_encoder``) and the speaker
encoder with its reconstruction head (``speaker_encoder``).
"""

from zoo.common.alignment_bias import (
    alibi_slopes,
    alignment_bias,
    alignment_mask,
    biased_causal_mask,
    windowed_alignment_bias,
)
from zoo.common.audio_encoder import Wav2Vec2Encoder
from zoo.common.positional import PeriodicPositionalEncoding, SinusoidalPositionalEncoding
from zoo.common.speaker_encoder import SpeakerEncoder, SpeakerEncoding, SpeakerReconstructionHead
from zoo.common.video_encoder import VideoEncoder

__all__ = [
    "alibi_slopes",
    "alignment_bias",
    "alignment_mask",
    "biased_causal_mask",
    "windowed_alignment_bias",
    "Wav2Vec2Encoder",
    "PeriodicPositionalEncoding",
    "SinusoidalPositionalEncoding",
    "SpeakerEncoder",
    "SpeakerEncoding",
    "SpeakerReconstructionHead",
    "VideoEncoder",
]
