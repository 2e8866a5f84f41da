"""Audio features aligned with the video frames: 16 kHz waveform, wav2vec2 input, log-mel, MFCC.

* **wav2vec2 input**: mono 16 kHz, zero mean and unit variance over the utterance
  (``(x - mean) / sqrt(var + 1e-7)``, the normalisation of HF ``Wav2Vec2FeatureExtractor`` with
  ``do_normalize=True`` and of ``REACTDataModule``'s windows).
* **log-mel**: power spectrum of Hann-windowed frames (25 ms, ``n_fft`` 400 at 16 kHz), HTK mel
  filterbank (triangles, unnormalised; torchaudio's ``MelSpectrogram`` default), natural log of
  ``energy + 1e-6``. Frame ``k`` is centred *exactly* at ``k / (fps * mels_per_frame)`` seconds
  (zero padding at the ends), so 4 mel frames per video frame at any frame rate (Learning2Listen
  uses 4x the video rate; at 25 fps this is the usual 10 ms hop).
* **MFCC**: orthonormal DCT-II of the log-mel frames, first ``n_mfcc`` coefficients (c0 kept).
"""

from __future__ import annotations

import numpy as np
from scipy.fft import dct

from datamodules.features.io import resample

SAMPLE_RATE = 16_000
NORM_EPS = 1e-7
LOG_EPS = 1e-6


def wav2vec2_input(audio: np.ndarray) -> np.ndarray:
    """Zero-mean, unit-variance float32 copy of a 16 kHz mono waveform (S,)."""
    audio = _mono(audio)
    return ((audio - audio.mean()) / np.sqrt(audio.var() + NORM_EPS)).astype(np.float32)


def to_16k(audio: np.ndarray, rate: int) -> np.ndarray:
    """Mono float32 at 16 kHz (polyphase resampling)."""
    if not rate > 0:
        raise ValueError(f"rate: expected a positive sample rate, got {rate!r}")
    return resample(_mono(audio), int(rate), SAMPLE_RATE)


def _mono(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"audio: expected mono samples (S,), got shape {audio.shape}")
    if not np.isfinite(audio).all():
        raise ValueError("audio: contains NaN or inf")
    return audio


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_fft: int, n_mels: int, sample_rate: int = SAMPLE_RATE, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """HTK triangular mel filters (n_fft // 2 + 1, n_mels), peak 1, no area normalisation."""
    fmax = sample_rate / 2 if fmax is None else fmax
    if not 0 <= fmin < fmax <= sample_rate / 2 or n_mels < 1 or n_fft < 2:
        raise ValueError(f"mel_filterbank: expected 0 <= fmin < fmax <= sr/2, n_mels >= 1, n_fft >= 2; "
                         f"got fmin={fmin}, fmax={fmax}, sr={sample_rate}, n_mels={n_mels}, n_fft={n_fft}")
    bins = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins[:, None] - lower) / (centre - lower)
    falling = (upper - bins[:, None]) / (upper - centre)
    return np.clip(np.minimum(rising, falling), 0.0, None)


def log_mel_spectrogram(
    audio: np.ndarray,
    num_frames: int,
    fps: float,
    mels_per_frame: int = 4,
    n_mels: int = 80,
    n_fft: int = 400,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """(num_frames * mels_per_frame, n_mels) float32 log-mel energies of mono ``audio`` at
    ``sample_rate``, frame ``k`` centred at ``k / (fps * mels_per_frame)`` s."""
    audio = _mono(audio).astype(np.float64)
    if num_frames < 0 or not fps > 0 or mels_per_frame < 1:
        raise ValueError(f"expected num_frames >= 0, fps > 0, mels_per_frame >= 1; got {num_frames}, {fps}, {mels_per_frame}")
    count = num_frames * mels_per_frame
    centres = np.round(np.arange(count) * sample_rate / (fps * mels_per_frame)).astype(np.int64)
    half = n_fft // 2
    padded = np.concatenate([np.zeros(half), audio, np.zeros(n_fft + max(0, int(centres.max(initial=0)) - len(audio)))])
    frames = padded[centres[:, None] + np.arange(n_fft)[None, :]]  # frame starts at centre - half, shifted by the pad
    window = np.hanning(n_fft + 1)[:-1]  # periodic Hann, as torch.hann_window
    power = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2
    mel = power @ mel_filterbank(n_fft, n_mels, sample_rate)
    return np.log(mel + LOG_EPS).astype(np.float32)


def mfcc(log_mel: np.ndarray, n_mfcc: int = 13) -> np.ndarray:
    """(frames, n_mfcc) float32 MFCCs: orthonormal DCT-II over the mel axis of ``log_mel``."""
    log_mel = np.asarray(log_mel, dtype=np.float64)
    if log_mel.ndim != 2 or not 1 <= n_mfcc <= log_mel.shape[1]:
        raise ValueError(f"mfcc: expected log_mel (frames, n_mels) and 1 <= n_mfcc <= n_mels, got {log_mel.shape}, {n_mfcc}")
    return dct(log_mel, type=2, norm="ortho", axis=1)[:, :n_mfcc].astype(np.float32)
