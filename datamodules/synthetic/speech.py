"""Speech of the embedded world: a voice whose loudness follows the speaker's jaw opening.

Additive source-filter synthesis: a glottal source with personal pitch and intonation, its
harmonics weighted by three formant resonances whose frequencies follow the mouth (F1 rises
with jaw opening, F2 falls for rounded vowels), plus noise bursts at syllable onsets for
consonants. The amplitude is the syllable envelope that also drives ``jawOpen``, so audio and
mouth motion are synchronous, as wav2vec2-based speaker encoders expect of real speech.
"""

from __future__ import annotations

import numpy as np

FPS = 25


def _upsample(track: np.ndarray, samples: int) -> np.ndarray:
    """Frame-rate track -> audio rate by linear interpolation at frame centres."""
    frame_times = (np.arange(len(track)) + 0.5) / len(track)
    sample_times = (np.arange(samples) + 0.5) / samples
    return np.interp(sample_times, frame_times, track).astype(np.float32)


def _resonance(freq: np.ndarray, centre: np.ndarray, bandwidth: float) -> np.ndarray:
    """Magnitude of a second-order resonance (formant) at ``freq``."""
    return 1.0 / np.sqrt((1 - (freq / centre) ** 2) ** 2 + (freq * bandwidth / centre**2) ** 2)


def synthesize_voice(
    rng: np.random.Generator,
    envelope: np.ndarray,
    vowel: np.ndarray,
    pitch_hz: float,
    sample_rate: int = 44100,
    harmonics: int = 24,
    valence: np.ndarray | None = None,
    arousal: np.ndarray | None = None,
) -> np.ndarray:
    """Mono voice for a clip: ``envelope`` and ``vowel`` are per-frame (25 fps) tracks in [0, 1];
    ``valence`` and ``arousal`` (per frame, [-1, 1]) colour the prosody as emotional speech does
    (Scherer 2003; Juslin & Laukka 2003): arousal raises pitch, pitch range and loudness,
    positive valence ("smiled speech") raises the formants."""
    frames = len(envelope)
    samples = int(round(frames * sample_rate / FPS))
    valence = np.zeros(frames, np.float32) if valence is None else np.asarray(valence, np.float32)
    arousal = np.zeros(frames, np.float32) if arousal is None else np.asarray(arousal, np.float32)
    loudness = np.clip(1.0 + 0.35 * arousal, 0.5, 1.5)
    amp = _upsample(envelope * loudness, samples)
    backness = _upsample(vowel, samples)
    arousal_s, valence_s = _upsample(arousal, samples), _upsample(valence, samples)
    # Intonation: slow pitch movement (+-8%, wider when aroused) and declination inside each second.
    seconds = np.arange(samples) / sample_rate
    swing = 0.08 * (1 + 0.5 * np.clip(arousal_s, 0, 1))
    f0 = pitch_hz * (1 + 0.15 * arousal_s + 0.04 * valence_s)
    f0 *= 1 + swing * np.sin(2 * np.pi * rng.uniform(0.2, 0.5) * seconds + rng.uniform(0, 6.28))
    f0 *= 1 - 0.05 * (seconds % 1.0)
    # Wrapped phase keeps h * phase small, so float32 sines stay accurate over a long clip.
    phase = np.mod(2 * np.pi * np.cumsum(f0) / sample_rate, 2 * np.pi).astype(np.float32)
    # Formant weights of each harmonic change slowly: compute them at a 100 Hz control rate.
    hop = sample_rate // 100
    control = slice(hop // 2, samples, hop)
    f0_c, amp_c, back_c = f0[control], np.clip(amp[control], 0, 1), backness[control]
    smile = 1 + 0.1 * np.clip(valence_s[control], 0, 1)  # lip spreading shortens the vocal tract
    h = np.arange(1, harmonics + 1, dtype=np.float32)[:, None]
    freq = h * f0_c[None]
    f1, f2 = (300 + 550 * amp_c) * smile, (2300 - 1400 * back_c) * smile
    gain = (_resonance(freq, f1[None], 80) + 0.7 * _resonance(freq, f2[None], 120)
            + 0.4 * _resonance(freq, np.float32(2900.0), 200)) / h  # -6 dB/octave glottal tilt
    gain[freq > sample_rate / 2 - 500] = 0.0
    gain = np.repeat(gain.astype(np.float32), hop, axis=1)[:, :samples]
    if gain.shape[1] < samples:
        gain = np.pad(gain, ((0, 0), (0, samples - gain.shape[1])), mode="edge")
    # sin(h*phase) by the Chebyshev recurrence sin((h+1)x) = 2cos(x)sin(hx) - sin((h-1)x):
    # one sin and one cos per sample instead of one sin per harmonic and sample.
    two_cos, previous, current = 2 * np.cos(phase), np.zeros_like(phase), np.sin(phase)
    voice = np.zeros(samples, dtype=np.float32)
    for k in range(harmonics):
        voice += gain[k] * current
        previous, current = current, two_cos * current - previous
    voice /= np.abs(voice).max() + 1e-6
    # Consonants: high-passed noise bursts where the envelope rises (syllable onsets).
    onset = np.clip(np.diff(envelope, prepend=0.0), 0, None)
    noise = np.diff(rng.normal(0, 1, samples + 1)).astype(np.float32)
    consonant = 0.25 * noise * _upsample(onset / (onset.max() + 1e-6), samples)
    return (np.power(np.clip(amp, 0, 1), 0.7) * voice + consonant).astype(np.float32)


def room_mix(own: np.ndarray, partner: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What one person's microphone records: own voice, partner crosstalk (-24 dB), room noise."""
    noise = np.cumsum(rng.normal(0, 1, len(own))).astype(np.float32)
    noise -= np.convolve(noise, np.ones(64) / 64, mode="same")  # brownish noise, DC removed
    noise *= 0.003 / (noise.std() + 1e-9)
    mix = own + 0.063 * partner + noise
    return (0.5 * mix / (np.abs(mix).max() + 1e-6)).astype(np.float32)
