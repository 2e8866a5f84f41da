"""What a person of the embedded world looks like: face shape, colouring, hair and accessories.

An :class:`Identity` holds the rig's identity coefficients (``FaceRig.identity_modes``, in
standard deviations) and the appearance the procedural renderer needs. It is plain data and
round-trips through a JSON-able dict, because the world writes each person next to their videos.
:func:`sample_identity` draws diverse, plausible people: skin tones span light to very dark,
and hair, iris and lip colours are drawn with probabilities that depend on skin tone the way
they co-occur in people (dark irises and hair are more common with darker skin).
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields

import numpy as np

from datamodules.features.rig import IDENTITY_MODES, NUM_IDENTITY_MODES

RGB = tuple[int, int, int]

HAIR_STYLES: tuple[str, ...] = ("short", "long", "bun", "curly", "buzz", "bald")
BEARD_STYLES: tuple[str, ...] = ("none", "stubble", "moustache", "full")

# Skin tone anchors from very light to very dark (sRGB), interpolated when sampling.
_SKIN_ANCHORS = np.array([
    (255, 224, 205), (241, 194, 167), (224, 172, 135), (198, 142, 104),
    (160, 106, 72), (120, 76, 50), (84, 52, 36),
], dtype=np.float64)
_HAIR_COLOURS: dict[str, RGB] = {
    "black": (28, 24, 24), "dark_brown": (58, 40, 30), "brown": (96, 64, 42), "auburn": (130, 62, 36),
    "blonde": (196, 160, 104), "grey": (150, 148, 146), "red": (168, 72, 40),
}
_IRIS_COLOURS: dict[str, RGB] = {
    "dark_brown": (62, 38, 24), "brown": (104, 64, 36), "hazel": (122, 100, 56), "green": (86, 120, 78),
    "blue": (78, 118, 168), "grey": (116, 128, 138),
}
# muted room walls and studio backdrops
_BACKGROUNDS = np.array([
    (206, 210, 214), (180, 190, 200), (222, 214, 196), (150, 160, 150), (120, 130, 150),
    (200, 186, 170), (96, 104, 112), (170, 178, 160), (230, 228, 222), (140, 120, 110),
], dtype=np.float64)


@dataclass(frozen=True)
class Identity:
    """One person's face. Colours are sRGB ``(r, g, b)`` ints in 0..255."""

    shape: tuple[float, ...]
    skin: RGB
    hair_style: str
    hair_colour: RGB
    eyebrow_colour: RGB
    eyebrow_thickness: float  # face widths at the thickest (inner) end
    iris_colour: RGB
    lip_colour: RGB
    background_colour: RGB
    shirt_colour: RGB
    glasses: bool = False
    beard: str = "none"

    def __post_init__(self) -> None:
        shape = tuple(float(v) for v in self.shape)
        if len(shape) != NUM_IDENTITY_MODES or not all(np.isfinite(shape)):
            raise ValueError(f"Identity.shape: expected {NUM_IDENTITY_MODES} finite coefficients {IDENTITY_MODES}, got {self.shape!r}")
        object.__setattr__(self, "shape", shape)
        for name in ("skin", "hair_colour", "eyebrow_colour", "iris_colour", "lip_colour",
                     "background_colour", "shirt_colour"):
            object.__setattr__(self, name, _rgb(getattr(self, name), f"Identity.{name}"))
        if self.hair_style not in HAIR_STYLES:
            raise ValueError(f"Identity.hair_style: expected one of {HAIR_STYLES}, got {self.hair_style!r}")
        if self.beard not in BEARD_STYLES:
            raise ValueError(f"Identity.beard: expected one of {BEARD_STYLES}, got {self.beard!r}")
        if not 0.0 < float(self.eyebrow_thickness) < 0.1:
            raise ValueError(f"Identity.eyebrow_thickness: expected face widths in (0, 0.1), got {self.eyebrow_thickness!r}")
        object.__setattr__(self, "eyebrow_thickness", float(self.eyebrow_thickness))
        object.__setattr__(self, "glasses", bool(self.glasses))

    @property
    def shape_coefficients(self) -> np.ndarray:
        """The rig identity coefficients as a float32 (n_id,) array."""
        return np.asarray(self.shape, dtype=np.float32)

    def to_dict(self) -> dict:
        """JSON-able dict (lists for tuples)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Identity:
        """Inverse of :meth:`to_dict`; rejects missing or unknown keys by name."""
        if not isinstance(data, dict):
            raise ValueError(f"Identity.from_dict: expected a dict, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        unknown, missing = set(data) - names, required - set(data)
        if unknown or missing:
            raise ValueError(f"Identity.from_dict: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
        values = dict(data)
        for key in ("shape", "skin", "hair_colour", "eyebrow_colour", "iris_colour", "lip_colour",
                    "background_colour", "shirt_colour"):
            if not isinstance(values[key], (list, tuple)):
                raise ValueError(f"Identity.from_dict: {key} must be a list, got {values[key]!r}")
            values[key] = tuple(values[key])
        return cls(**values)


def _rgb(value, name: str) -> RGB:
    try:
        rgb = tuple(int(v) for v in value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: expected an (r, g, b) triple of ints in 0..255, got {value!r}") from err
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise ValueError(f"{name}: expected an (r, g, b) triple of ints in 0..255, got {value!r}")
    return rgb  # type: ignore[return-value]


def default_identity() -> Identity:
    """A fixed, average-shaped person: used where no identity is given (e.g. rendering model output)."""
    return Identity(
        shape=(0.0,) * NUM_IDENTITY_MODES,
        skin=(214, 164, 128),
        hair_style="short",
        hair_colour=_HAIR_COLOURS["dark_brown"],
        eyebrow_colour=(54, 38, 30),
        eyebrow_thickness=0.032,
        iris_colour=_IRIS_COLOURS["brown"],
        lip_colour=(178, 100, 92),
        background_colour=(196, 202, 208),
        shirt_colour=(70, 90, 120),
    )


def _choice(rng: np.random.Generator, options: dict[str, float]) -> str:
    keys = list(options)
    p = np.array([options[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _mix(a, b, t: float) -> np.ndarray:
    return (1.0 - t) * np.asarray(a, dtype=np.float64) + t * np.asarray(b, dtype=np.float64)


def _as_rgb(colour: np.ndarray) -> RGB:
    return tuple(int(v) for v in np.clip(np.round(colour), 0, 255))  # type: ignore[return-value]


def sample_identity(rng: np.random.Generator) -> Identity:
    """A random plausible person; deterministic given the generator state."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    shape = tuple(float(v) for v in np.clip(rng.standard_normal(NUM_IDENTITY_MODES), -2.5, 2.5))

    darkness = float(rng.uniform(0.0, 1.0))  # 0 very light .. 1 very dark
    position = darkness * (len(_SKIN_ANCHORS) - 1)
    lo = int(np.floor(position))
    hi = min(lo + 1, len(_SKIN_ANCHORS) - 1)
    skin = _mix(_SKIN_ANCHORS[lo], _SKIN_ANCHORS[hi], position - lo)
    skin = skin * rng.uniform(0.95, 1.04) + rng.normal(0.0, 4.0, 3)  # undertone jitter

    old = rng.random() < 0.15
    light = 1.0 - darkness
    hair_name = "grey" if old else _choice(rng, {
        "black": 1.0 + 3.0 * darkness, "dark_brown": 2.0, "brown": 1.5 * light + 0.3,
        "auburn": 0.4 * light, "blonde": 1.2 * light ** 2, "red": 0.25 * light ** 2,
    })
    hair = np.asarray(_HAIR_COLOURS[hair_name], dtype=np.float64) * rng.uniform(0.85, 1.15)
    male = rng.random() < 0.5
    hair_style = _choice(rng, {"short": 4.0, "buzz": 1.5, "bald": 0.8 if old else 0.4, "curly": 1.0,
                               "long": 0.8, "bun": 0.3} if male else
                         {"short": 2.0, "long": 3.0, "bun": 1.5, "curly": 1.2, "buzz": 0.2, "bald": 0.05})
    beard = _choice(rng, {"none": 5.0, "stubble": 1.5, "moustache": 0.6, "full": 1.2}) if male else "none"
    eyebrow = _mix(hair, (40, 32, 28), 0.5 if hair_name in ("blonde", "grey") else 0.2)

    iris_name = _choice(rng, {
        "dark_brown": 1.0 + 4.0 * darkness, "brown": 2.0, "hazel": 0.8 * light + 0.1,
        "green": 0.5 * light ** 2, "blue": 1.5 * light ** 2, "grey": 0.4 * light ** 2,
    })
    lip = _mix(skin, (170, 70, 80), 0.35) * rng.uniform(0.85, 1.0)
    background = _BACKGROUNDS[rng.integers(len(_BACKGROUNDS))] + rng.normal(0.0, 8.0, 3)
    shirt = rng.uniform(25, 230, 3)
    return Identity(
        shape=shape,
        skin=_as_rgb(skin),
        hair_style=hair_style,
        hair_colour=_as_rgb(hair),
        eyebrow_colour=_as_rgb(eyebrow),
        eyebrow_thickness=float(rng.uniform(0.022, 0.034) if not male else rng.uniform(0.028, 0.042)),
        iris_colour=_as_rgb(np.asarray(_IRIS_COLOURS[iris_name]) * rng.uniform(0.85, 1.15)),
        lip_colour=_as_rgb(lip),
        background_colour=_as_rgb(background),
        shirt_colour=_as_rgb(shirt),
        glasses=bool(rng.random() < 0.2),
        beard=beard,
    )
