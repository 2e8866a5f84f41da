"""Behaviour of the embedded dyadic world: who talks when, what each person feels, and how a
listener reacts to the speaker, as per-frame face states.

A clip is simulated for a dyad at 25 fps:

* **Turns.** The two people alternate talking turns of a few seconds with short pauses.
* **Affect.** Each clip follows a *conversation mood* (one of :data:`MOODS`): a script of affect
  episodes (category, intensity, length). The talker displays the current episode; moods recur
  across sessions, so different speakers behave alike and their listeners' reactions are
  appropriate for each other, which the neighbour matrix marks.
* **Reactions.** The listener reacts to what it *saw and heard* some ``delay`` frames earlier
  (a few hundred ms, personal): it mirrors the speaker's expression with a personal gain,
  smiles back at positive affect, nods at the ends of the speaker's phrases and shakes its head
  at negative affect, each with personal propensities (:class:`ListenerStyle`). So one speaker
  behaviour has several appropriate reactions, one per listener style.
* **Idle motion.** Blinks, slow head sway, and beat gestures while talking.

Expressions are written in the 52 MediaPipe blendshape channels (``face_state.BLENDSHAPE_NAMES``)
plus head rotation (pitch, yaw, roll in radians) and translation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from datamodules.features.face_state import (
    BLENDSHAPE_INDEX,
    EMOTION_DIM,
    EXPRESSION_CLASSES,
    FACE_STATE_DIM,
    ROTATION,
    TRANSLATION,
)

FPS = 25
NUM_AFFECTS = len(EXPRESSION_CLASSES)  # REACT order: Neutral, Happy, Sad, Surprise, Fear, Disgust, Anger, Contempt
AFFECT_INDEX = {name: i for i, name in enumerate(EXPRESSION_CLASSES)}


def _template(**weights: float) -> np.ndarray:
    out = np.zeros(52, dtype=np.float32)
    for name, value in weights.items():
        out[BLENDSHAPE_INDEX[name]] = value
    return out


# Prototypical facial displays of each category (EMFACS-style AU combinations written in
# blendshapes: happy = AU6+12, sad = AU1+4+15, surprise = AU1+2+5+26, fear = AU1+2+4+5+20,
# disgust = AU9+10, anger = AU4+5+7+23, contempt = unilateral AU12+14).
AFFECT_TEMPLATES = np.stack([
    _template(),
    _template(mouthSmileLeft=0.85, mouthSmileRight=0.85, cheekSquintLeft=0.55, cheekSquintRight=0.55,
              eyeSquintLeft=0.25, eyeSquintRight=0.25, mouthDimpleLeft=0.2, mouthDimpleRight=0.2),
    _template(browInnerUp=0.7, browDownLeft=0.25, browDownRight=0.25, mouthFrownLeft=0.7,
              mouthFrownRight=0.7, mouthShrugLower=0.35, eyeSquintLeft=0.1, eyeSquintRight=0.1),
    _template(browInnerUp=0.75, browOuterUpLeft=0.8, browOuterUpRight=0.8, eyeWideLeft=0.7,
              eyeWideRight=0.7, jawOpen=0.35, mouthFunnel=0.15),
    _template(browInnerUp=0.8, browOuterUpLeft=0.4, browOuterUpRight=0.4, browDownLeft=0.2,
              browDownRight=0.2, eyeWideLeft=0.65, eyeWideRight=0.65, mouthStretchLeft=0.55,
              mouthStretchRight=0.55, jawOpen=0.12),
    _template(noseSneerLeft=0.7, noseSneerRight=0.7, mouthUpperUpLeft=0.55, mouthUpperUpRight=0.55,
              browDownLeft=0.35, browDownRight=0.35, eyeSquintLeft=0.3, eyeSquintRight=0.3),
    _template(browDownLeft=0.85, browDownRight=0.85, eyeSquintLeft=0.4, eyeSquintRight=0.4,
              eyeWideLeft=0.2, eyeWideRight=0.2, mouthPressLeft=0.6, mouthPressRight=0.6,
              mouthRollLower=0.2),
    _template(mouthSmileLeft=0.5, mouthDimpleLeft=0.45, mouthPressRight=0.15, eyeSquintLeft=0.1),
])

# Russell circumplex positions (valence, arousal) of each category, for the emotion csv.
AFFECT_VALENCE_AROUSAL = np.array([
    [0.0, 0.0], [0.8, 0.45], [-0.7, -0.35], [0.25, 0.8],
    [-0.65, 0.7], [-0.6, 0.35], [-0.7, 0.75], [-0.4, 0.2],
], dtype=np.float32)

# Conversation moods: (category, weight) pairs episodes are drawn from. They differ in their
# mean valence/arousal, so speakers of the same mood are emotionally similar.
MOODS: dict[str, tuple[tuple[str, float], ...]] = {
    "cheerful": (("Happy", 0.6), ("Neutral", 0.25), ("Surprise", 0.15)),
    "tense": (("Anger", 0.45), ("Disgust", 0.25), ("Neutral", 0.3)),
    "sombre": (("Sad", 0.6), ("Neutral", 0.3), ("Fear", 0.1)),
    "storytelling": (("Surprise", 0.45), ("Happy", 0.2), ("Neutral", 0.35)),
    "matter_of_fact": (("Neutral", 0.8), ("Contempt", 0.1), ("Happy", 0.1)),
    "anxious": (("Fear", 0.5), ("Sad", 0.2), ("Neutral", 0.3)),
}


@dataclass(frozen=True)
class ListenerStyle:
    """How a person behaves as a listener (and a little of how it talks)."""

    name: str
    delay: int  # frames between seeing/hearing the speaker and reacting (8-15 = 320-600 ms)
    mimicry: float  # gain on the speaker's displayed expression
    smile_back: float  # extra smile per unit of speaker valence
    nod: float  # propensity to nod at the end of the speaker's phrases
    shake: float  # propensity to shake the head at negative speaker affect
    stillness: float  # damping of own idle motion, 0 = lively, 1 = frozen
    expressivity: float  # gain on own displayed affect when talking

    def to_dict(self) -> dict:
        return asdict(self)


LISTENER_ARCHETYPES = {
    "mimic": dict(mimicry=0.85, smile_back=0.2, nod=0.3, shake=0.2, stillness=0.2),
    "nodder": dict(mimicry=0.25, smile_back=0.25, nod=1.0, shake=0.5, stillness=0.3),
    "smiler": dict(mimicry=0.35, smile_back=0.9, nod=0.4, shake=0.1, stillness=0.3),
    "still": dict(mimicry=0.12, smile_back=0.1, nod=0.1, shake=0.05, stillness=0.8),
}


def sample_style(rng: np.random.Generator) -> ListenerStyle:
    name = str(rng.choice(list(LISTENER_ARCHETYPES)))
    base = LISTENER_ARCHETYPES[name]
    jitter = {k: float(np.clip(v * rng.uniform(0.8, 1.2), 0.0, 1.0)) for k, v in base.items()}
    return ListenerStyle(name=name, delay=int(rng.integers(8, 16)), expressivity=float(rng.uniform(0.7, 1.1)), **jitter)


@dataclass
class PersonTrack:
    """Everything the world knows about one person over one clip."""

    face_state: np.ndarray  # (T, 58)
    affect: np.ndarray  # (T, 8) displayed affect mixture (rows sum to <= 1 beyond Neutral)
    talking: np.ndarray  # (T,) bool
    mouth_envelope: np.ndarray  # (T,) 0..1 syllable envelope, > 0 only while talking
    vowel: np.ndarray  # (T,) 0..1 vowel backness (0 = /i/-like spread, 1 = /u/-like rounded)


# ---------------------------------------------------------------------------------------------
# building blocks


def smooth_steps(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-smoothed piecewise-constant trajectory (along axis 0)."""
    return gaussian_filter1d(values.astype(np.float32), sigma=sigma, axis=0, mode="nearest")


def turn_schedule(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Who talks at each frame: 0 (person A), 1 (person B) or -1 (pause)."""
    owner = np.full(frames, -1, dtype=np.int8)
    t, who = 0, int(rng.integers(0, 2))
    while t < frames:
        turn = int(rng.uniform(2.5, 8.0) * FPS)
        owner[t:t + turn] = who
        t += turn + int(rng.uniform(0.2, 0.8) * FPS)
        who = 1 - who if rng.random() < 0.85 else who
    return owner


def affect_script(rng: np.random.Generator, mood: str, frames: int) -> np.ndarray:
    """A smooth (T, 8) affect mixture made of episodes drawn from ``mood``."""
    names, weights = zip(*MOODS[mood])
    probs = np.array(weights) / np.sum(weights)
    raw = np.zeros((frames, NUM_AFFECTS), dtype=np.float32)
    t = 0
    while t < frames:
        length = int(rng.uniform(3.0, 8.0) * FPS)
        category = AFFECT_INDEX[names[rng.choice(len(names), p=probs)]]
        intensity = rng.uniform(0.55, 1.0) if category != AFFECT_INDEX["Neutral"] else 1.0
        raw[t:t + length, category] = intensity
        raw[t:t + length, AFFECT_INDEX["Neutral"]] += 1.0 - intensity
        t += length
    return smooth_steps(raw, sigma=0.6 * FPS)


def syllables(rng: np.random.Generator, talking: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Syllable envelope (jaw opening), vowel backness and phrase-end markers for talking frames.

    Syllables at 3.5-5.5 Hz (conversational speech rate), grouped into phrases of 1-3 s
    separated by short breath pauses; the envelope is 0 outside talking turns.
    """
    frames = len(talking)
    envelope = np.zeros(frames, dtype=np.float32)
    vowel = np.full(frames, 0.5, dtype=np.float32)
    phrase_end = np.zeros(frames, dtype=bool)
    t = 0
    while t < frames:
        if not talking[t]:
            t += 1
            continue
        phrase_stop = t + int(rng.uniform(1.0, 3.0) * FPS)
        while t < min(phrase_stop, frames) and talking[t]:
            length = max(3, int(FPS / rng.uniform(3.5, 5.5)))
            span = np.arange(min(length, frames - t))
            envelope[t + span] = rng.uniform(0.35, 1.0) * np.sin(np.pi * (span + 0.5) / length) ** 2
            vowel[t + span] = rng.uniform(0.0, 1.0)
            t += length
        if t < frames:
            phrase_end[min(t, frames - 1)] = True
        t += int(rng.uniform(0.15, 0.4) * FPS)
    return envelope * talking, vowel, phrase_end


def blink_track(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Eye closure 0..1: blinks as a Poisson process (~17/min), each 160-280 ms."""
    closure = np.zeros(frames, dtype=np.float32)
    t = int(rng.exponential(FPS * 60 / 17))
    while t < frames:
        length = int(rng.integers(4, 8))
        span = np.arange(min(length, frames - t))
        closure[t + span] = np.sin(np.pi * (span + 0.5) / length)
        t += length + int(rng.exponential(FPS * 60 / 17)) + 2
    return closure


def oscillation_events(starts: np.ndarray, frames: int, hz: float, cycles: float, amplitude: np.ndarray) -> np.ndarray:
    """Damped sinusoidal bursts (nods/shakes) starting at ``starts`` with per-event amplitudes."""
    out = np.zeros(frames, dtype=np.float32)
    length = int(cycles * FPS / hz)
    span = np.arange(length)
    burst = np.sin(2 * np.pi * hz * span / FPS) * np.hanning(length)
    for start, amp in zip(starts, amplitude):
        end = min(frames, start + length)
        if start < frames:
            out[start:end] += amp * burst[: end - start]
    return out


def delayed(x: np.ndarray, delay: int) -> np.ndarray:
    """``x`` shifted ``delay`` frames later (the first frames repeat the initial value)."""
    if delay <= 0:
        return x.copy()
    delay = min(delay, len(x))
    return np.concatenate([np.repeat(x[:1], delay, axis=0), x[:-delay]], axis=0)


# ---------------------------------------------------------------------------------------------
# one clip of one dyad


def simulate_dyad_clip(
    rng: np.random.Generator,
    mood: str,
    styles: tuple[ListenerStyle, ListenerStyle],
    frames: int,
) -> tuple[PersonTrack, PersonTrack]:
    """Simulate a clip of ``frames`` frames for a dyad; returns the two people's tracks."""
    owner = turn_schedule(rng, frames)
    script = affect_script(rng, mood, frames)
    tracks = []
    talking = [owner == 0, owner == 1]
    speech = [syllables(rng, talking[p]) for p in range(2)]
    own_affect = []
    for p in range(2):
        # What a person displays while talking: the mood script, with a personal gain.
        personal = script * styles[p].expressivity
        personal[:, AFFECT_INDEX["Neutral"]] = 1.0 - personal[:, 1:].sum(axis=1)
        own_affect.append(personal)

    # The displayed affect of each person, built in two passes: first the talking parts, then
    # the listening parts react to the partner's (delayed) display.
    display = [np.zeros((frames, NUM_AFFECTS), np.float32) for _ in range(2)]
    for p in range(2):
        display[p][:, AFFECT_INDEX["Neutral"]] = 1.0
        display[p][talking[p]] = own_affect[p][talking[p]]
    for p in range(2):
        q, style = 1 - p, styles[p]
        seen = delayed(display[q], style.delay)
        reaction = seen * style.mimicry
        valence = seen @ AFFECT_VALENCE_AROUSAL[:, 0]
        reaction[:, AFFECT_INDEX["Happy"]] += style.smile_back * np.clip(valence, 0, None)
        reaction[:, 1:] = np.clip(reaction[:, 1:], 0, 1)
        reaction[:, AFFECT_INDEX["Neutral"]] = np.clip(1.0 - reaction[:, 1:].sum(axis=1), 0, 1)
        listening = ~talking[p]
        display[p][listening] = smooth_steps(reaction, sigma=3)[listening]
    display = [smooth_steps(d, sigma=2) for d in display]

    for p in range(2):
        q, style = 1 - p, styles[p]
        envelope, vowel, _ = speech[p]
        face = np.zeros((frames, FACE_STATE_DIM), dtype=np.float32)
        expr = face[:, :52]
        expr += display[p] @ AFFECT_TEMPLATES
        # Speech articulation: the jaw follows the syllable envelope, rounded vowels pucker.
        expr[:, BLENDSHAPE_INDEX["jawOpen"]] += 0.55 * envelope
        expr[:, BLENDSHAPE_INDEX["mouthLowerDownLeft"]] += 0.3 * envelope
        expr[:, BLENDSHAPE_INDEX["mouthLowerDownRight"]] += 0.3 * envelope
        expr[:, BLENDSHAPE_INDEX["mouthFunnel"]] += 0.45 * envelope * vowel
        expr[:, BLENDSHAPE_INDEX["mouthPucker"]] += 0.35 * envelope * vowel ** 2
        expr[:, BLENDSHAPE_INDEX["mouthStretchLeft"]] += 0.25 * envelope * (1 - vowel)
        expr[:, BLENDSHAPE_INDEX["mouthStretchRight"]] += 0.25 * envelope * (1 - vowel)
        blink = blink_track(rng, frames)
        expr[:, BLENDSHAPE_INDEX["eyeBlinkLeft"]] += blink
        expr[:, BLENDSHAPE_INDEX["eyeBlinkRight"]] += blink
        np.clip(expr, 0.0, 1.0, out=expr)
        expr[:, BLENDSHAPE_INDEX["_neutral"]] = np.clip(1.0 - expr[:, 1:].max(axis=1), 0, 1)

        # Head: slow personal sway, beats while talking, nods/shakes while listening.
        liveliness = 1.0 - 0.8 * style.stillness
        sway = smooth_steps(rng.normal(0, 1, (frames, 3)), sigma=1.2 * FPS)
        sway = sway / (sway.std(axis=0, keepdims=True) + 1e-6)
        rot = sway * np.array([0.04, 0.06, 0.025], np.float32) * liveliness
        rot[:, 0] += 0.05 * smooth_steps(envelope, sigma=2) * talking[p]  # beat gestures on stressed syllables
        _, _, partner_phrase_end = speech[q]
        listening = ~talking[p]
        ends = np.flatnonzero(partner_phrase_end & listening)
        ends = ends[rng.random(len(ends)) < style.nod] + style.delay
        rot[:, 0] += oscillation_events(ends, frames, hz=2.2, cycles=2.0, amplitude=rng.uniform(0.08, 0.16, len(ends)))
        seen = delayed(display[q], style.delay)
        negative = seen[:, [AFFECT_INDEX["Anger"], AFFECT_INDEX["Disgust"], AFFECT_INDEX["Contempt"]]].sum(axis=1)
        candidates = np.flatnonzero((negative > 0.45) & listening)[::FPS]
        candidates = candidates[rng.random(len(candidates)) < style.shake]
        rot[:, 1] += oscillation_events(candidates, frames, hz=2.0, cycles=2.0, amplitude=rng.uniform(0.1, 0.18, len(candidates)))
        surprise = seen[:, AFFECT_INDEX["Surprise"]] * listening
        rot[:, 2] += 0.08 * smooth_steps(surprise, sigma=FPS / 2) * (1 - style.stillness)
        face[:, ROTATION] = rot
        drift = smooth_steps(rng.normal(0, 1, (frames, 3)), sigma=2 * FPS)
        face[:, TRANSLATION] = drift / (drift.std(axis=0, keepdims=True) + 1e-6) * np.array([0.02, 0.015, 0.02]) * liveliness
        tracks.append(PersonTrack(face_state=face, affect=display[p], talking=talking[p], mouth_envelope=envelope, vowel=vowel))
    return tracks[0], tracks[1]


# ---------------------------------------------------------------------------------------------
# the REACT emotion vector of a track

# AU occurrence rules over blendshapes (threshold 0.25 on the named channels): the world's
# ground truth for the 15 REACT AUs, playing the role GraphAU plays for the real data.
AU_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("AU1", ("browInnerUp",)),
    ("AU2", ("browOuterUpLeft", "browOuterUpRight")),
    ("AU4", ("browDownLeft", "browDownRight")),
    ("AU6", ("cheekSquintLeft", "cheekSquintRight")),
    ("AU7", ("eyeSquintLeft", "eyeSquintRight")),
    ("AU9", ("noseSneerLeft", "noseSneerRight")),
    ("AU10", ("mouthUpperUpLeft", "mouthUpperUpRight")),
    ("AU12", ("mouthSmileLeft", "mouthSmileRight")),
    ("AU14", ("mouthDimpleLeft", "mouthDimpleRight")),
    ("AU15", ("mouthFrownLeft", "mouthFrownRight")),
    ("AU17", ("mouthShrugLower",)),
    ("AU23", ("mouthPressLeft", "mouthPressRight")),
    ("AU24", ("mouthRollLower", "mouthRollUpper")),
    ("AU25", ("mouthLowerDownLeft", "mouthLowerDownRight")),
    ("AU26", ("jawOpen",)),
)
AU_THRESHOLD = 0.25


def emotion_vector(rng: np.random.Generator, track: PersonTrack) -> np.ndarray:
    """The 25-d REACT emotion per frame: AU occurrences, valence/arousal, expression probabilities."""
    frames = len(track.face_state)
    out = np.zeros((frames, EMOTION_DIM), dtype=np.float32)
    expr = track.face_state[:, :52]
    for i, (_, channels) in enumerate(AU_RULES):
        level = expr[:, [BLENDSHAPE_INDEX[c] for c in channels]].max(axis=1)
        out[:, i] = (level > AU_THRESHOLD).astype(np.float32)
    va = track.affect @ AFFECT_VALENCE_AROUSAL
    va[:, 1] += 0.2 * smooth_steps(track.talking.astype(np.float32), sigma=FPS / 2)  # talking is arousing
    va += smooth_steps(rng.normal(0, 0.05, (frames, 2)), sigma=3)  # estimator noise, like EmoNet's
    out[:, 15:17] = np.clip(va, -1, 1)
    logits = 4.0 * track.affect + smooth_steps(rng.normal(0, 0.3, (frames, NUM_AFFECTS)), sigma=3)
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    out[:, 17:25] = probs / probs.sum(axis=1, keepdims=True)
    return out
