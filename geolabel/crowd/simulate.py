r"""A simulated crowd of land-use annotators, used until real annotations are imported.

The simulator is the "world": it reads the true label of every item and answers tasks the way a
crowd of people of uneven skill would. It serves the demo, the tests and the benchmarks, and
:func:`profiles_to_json` stores every annotator's true parameters so that annotator-quality
estimates can later be scored against them.

Generative model
    Annotator :math:`a` has a confusion matrix :math:`M_a` over the answerable ``classes`` (rows
    true, columns answered), fatigue :math:`f_a`, fatigue floor :math:`\varphi_a`, session length
    :math:`L_a`, difficulty sensitivity :math:`\sigma_a`, borderline rate :math:`\beta_a` and
    median time :math:`\mu_a` (see :class:`AnnotatorProfile`). Item :math:`i` has a true label
    :math:`y_i`, an alternative :math:`y'_i`, an ambiguity and a difficulty :math:`d_i \in [0, 1]`.
    For the :math:`q`-th task annotator :math:`a` does (0-based, in the row order of ``tasks``),
    :math:`t = q \bmod L_a` tasks are already done in the current session
    :math:`s = \lfloor q / L_a \rfloor`. Each vote is then drawn as follows.

    1. Intended label. :math:`\ell = y'_i` with probability :math:`\beta_a` when the item is
       ``"borderline"``, else :math:`\ell = y_i`.
    2. Answerable class. :math:`c = \ell` if :math:`\ell` is in ``classes``; otherwise
       :math:`c \sim F[\ell]`, the ``fallback`` distribution, drawn afresh for every vote. So a
       ``mixed_use`` parcel under a taxonomy without ``mixed_use`` splits between residential and
       commercial even among experts.
    3. Effective skill. :math:`g = \max(\varphi_a, (1 - f_a)^t)\,(1 - \sigma_a d_i)` and
       :math:`p = g\,M_a[c, c]`.
    4. Answer. With :math:`E_a[c, k] = M_a[c, k] / (1 - M_a[c, c])` for :math:`k \ne c` (the
       annotator's own confusion pattern; uniform over the other classes when
       :math:`M_a[c, c] = 1`),

       .. math:: P(\text{answer} = k) = p\,[k = c] + (1 - p)\,E_a[c, k].

       On an easy item (:math:`d_i = 0`) at the start of a session (:math:`t = 0`) this is row
       :math:`c` of :math:`M_a`; fatigue and difficulty move mass from the diagonal to the classes
       this annotator confuses :math:`c` with. :func:`make_crowd` gives spammers
       :math:`f_a = \sigma_a = \beta_a = 0` and rows that ignore :math:`c` (uniform, or one-hot
       on a fixed class), so they answer from :math:`M_a` whatever the item.
    5. Time. ``seconds`` :math:`= \max(1, \mu_a h_i e^{0.35 z})`, :math:`z \sim N(0, 1)`,
       rounded to 0.1 s, with :math:`h_i = (1 + 1.5 d_i)` times 1.3 for ambiguous items, and
       :math:`h_i = 1` for spammers (they do not look).
    6. Timestamp. Session :math:`s` of annotator :math:`a` starts at ``start`` + :math:`s` days +
       :math:`o_a`, a stable per-annotator offset in :math:`[0, 3\,h)`; ``created_at`` is the
       session start plus the seconds of the session's tasks so far, this one included (whole
       seconds, UTC, ISO-8601 with a ``Z``).

Randomness
    The draws of one vote come from a BLAKE2b digest of ``(seed, item, annotator)``: a
    counter-based stream, so a vote depends only on the seed, its item and annotator, and its
    position ``q`` in that annotator's queue. Adding tasks after existing ones, or tasks for other
    annotators, never changes earlier votes; moving a task within an annotator's queue changes
    only its fatigue and timestamps. :func:`make_crowd` and the assignment in
    :meth:`CrowdSimulator.assign_and_label` use ``np.random.default_rng`` seeded from ``seed``.
    No global random state is read or written.

Example:
    >>> import pandas as pd
    >>> classes = ["residential", "commercial", "park"]
    >>> truth = pd.DataFrame({
    ...     "item": ["p1", "p2", "p3"],
    ...     "label": ["residential", "mixed_use", "park"],
    ...     "alt_label": [None, None, "residential"],
    ...     "ambiguity": ["none", "mixed_use", "borderline"],
    ...     "difficulty": [0.1, 0.3, 0.5],
    ... })
    >>> crowd = make_crowd(classes, n_annotators=5, n_experts=1, seed=0)
    >>> sim = CrowdSimulator(truth, crowd, classes, seed=0)
    >>> votes = sim.assign_and_label(truth["item"], k=3)
    >>> list(votes.columns)
    ['item', 'annotator', 'label', 'created_at', 'seconds']
    >>> len(votes)
    9
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any, Final, Literal, get_args

import numpy as np
import pandas as pd

from geolabel.errors import ColumnError, GeolabelError, LabelError

__all__ = [
    "CONFUSION_PAIRS",
    "DEFAULT_FALLBACK",
    "PROFILES_FORMAT",
    "TRUTH_COLUMNS",
    "AnnotatorKind",
    "AnnotatorProfile",
    "CrowdSimulator",
    "make_crowd",
    "profiles_from_json",
    "profiles_to_json",
]

AnnotatorKind = Literal["crowd", "spammer", "expert"]
_KINDS: Final[tuple[str, ...]] = get_args(AnnotatorKind)
_AMBIGUITIES: Final[tuple[str, ...]] = ("none", "mixed_use", "borderline")

TRUTH_COLUMNS: Final[tuple[str, ...]] = ("item", "label", "alt_label", "ambiguity", "difficulty")
"""Columns the ``truth`` frame must have (``district`` and others are allowed and ignored)."""

PROFILES_FORMAT: Final = "geolabel.crowd_profiles.v1"
"""The ``format`` tag written by :func:`profiles_to_json` and required by the reader."""

DEFAULT_FALLBACK: Final[Mapping[str, Mapping[str, float]]] = MappingProxyType(
    {"mixed_use": MappingProxyType({"residential": 0.5, "commercial": 0.5})}
)
"""How a true label absent from the taxonomy is answered, when all its targets are classes."""

CONFUSION_PAIRS: Final[tuple[tuple[str, str, float], ...]] = (
    ("residential", "commercial", 12.0),
    ("vacant", "construction", 5.0),
    ("park", "vacant", 3.0),
    ("industrial", "commercial", 3.0),
)
"""Symmetric weights of the class pairs people confuse most; every other pair weighs 0.25."""

_BASE_CONFUSION: Final = 0.25
_PATTERN_CONCENTRATION: Final = 30.0  # Dirichlet concentration of one annotator's error pattern
_SECONDS_SIGMA: Final = 0.35
_SECONDS_PER_DIFFICULTY: Final = 1.5
_SECONDS_AMBIGUOUS: Final = 1.3
_SESSION_OFFSET_S: Final = 3 * 3600
_DAY_S: Final = 86_400
_ROW_TOL: Final = 1e-6
# Words of a vote's digest: borderline choice, fallback draw, answer, two for Box-Muller.
_U_ALT, _U_FALLBACK, _U_ANSWER, _U_Z1, _U_Z2 = range(5)
_N_DRAWS: Final = 5
# Tags that keep the default_rng streams of make_crowd and assignment apart.
_TAG_SPAMMERS, _TAG_CROWD, _TAG_EXPERT, _TAG_ASSIGN = 1, 2, 3, 4


@dataclass(frozen=True, slots=True)
class AnnotatorProfile:
    r"""The true parameters of one simulated annotator (see the module docstring for the model).

    Sequences given for ``classes`` and ``confusion`` (lists, numpy arrays) are stored as tuples.

    Attributes:
        annotator_id: Stable id; never reveals the kind for crowd workers.
        kind: ``"crowd"``, ``"spammer"`` or ``"expert"``.
        classes: Class ids, in the order of the rows and columns of ``confusion``.
        confusion: Row-stochastic matrix; ``confusion[j][k]`` is the probability of answering
            ``classes[k]`` for an item truly ``classes[j]``, when easy and fresh.
        fatigue: :math:`f`, the factor ``1 - fatigue`` multiplies the skill once per task done
            in the current session.
        fatigue_floor: :math:`\varphi`, the lowest value the fatigue multiplier reaches.
        session_length: Tasks per session; a new session starts rested (next day).
        difficulty_sensitivity: :math:`\sigma`, the share of skill lost on an item of
            difficulty 1.
        alt_rate: :math:`\beta`, the probability of meaning ``alt_label`` on a borderline item.
        median_seconds: :math:`\mu`, the median time spent on an easy item.

    Raises:
        GeolabelError: If a parameter is out of range or the matrix is not row-stochastic.
    """

    annotator_id: str
    kind: AnnotatorKind
    classes: tuple[str, ...]
    confusion: tuple[tuple[float, ...], ...]
    fatigue: float = 0.0
    fatigue_floor: float = 0.6
    session_length: int = 40
    difficulty_sensitivity: float = 0.5
    alt_rate: float = 0.4
    median_seconds: float = 20.0

    def __post_init__(self) -> None:
        who = f"annotator {self.annotator_id!r}"
        if not isinstance(self.annotator_id, str) or not self.annotator_id:
            raise GeolabelError(
                f"annotator_id must be a non-empty string, got {self.annotator_id!r}"
            )
        if self.kind not in _KINDS:
            raise GeolabelError(f"{who}: kind must be one of {list(_KINDS)}, got {self.kind!r}")
        classes = _check_classes(self.classes)
        matrix = np.asarray(self.confusion, dtype=np.float64)
        k = len(classes)
        if matrix.shape != (k, k):
            raise GeolabelError(
                f"{who}: confusion must be {k}x{k} (one row and column per class), "
                f"got shape {matrix.shape}"
            )
        if not np.isfinite(matrix).all() or (matrix < 0).any():
            raise GeolabelError(f"{who}: confusion must hold finite, non-negative probabilities")
        sums = matrix.sum(axis=1)
        bad = [c for c, s in zip(classes, sums, strict=True) if abs(s - 1.0) > _ROW_TOL]
        if bad:
            raise GeolabelError(f"{who}: confusion rows must sum to 1; rows {bad} do not")
        for name, lo, hi in (
            ("fatigue", 0.0, 1.0),
            ("fatigue_floor", 0.0, 1.0),
            ("difficulty_sensitivity", 0.0, 1.0),
            ("alt_rate", 0.0, 1.0),
        ):
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise GeolabelError(f"{who}: {name} must be in [{lo}, {hi}], got {value!r}")
        if isinstance(self.session_length, bool) or int(self.session_length) != self.session_length:
            raise GeolabelError(f"{who}: session_length must be an integer")
        if self.session_length < 1:
            raise GeolabelError(f"{who}: session_length must be >= 1, got {self.session_length}")
        if not self.median_seconds > 0:
            raise GeolabelError(f"{who}: median_seconds must be > 0, got {self.median_seconds!r}")
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "confusion", tuple(tuple(map(float, row)) for row in matrix))
        object.__setattr__(self, "session_length", int(self.session_length))

    @property
    def matrix(self) -> np.ndarray:
        """The confusion matrix as a new ``(K, K)`` float array."""
        return np.array(self.confusion, dtype=np.float64)

    @property
    def accuracy(self) -> dict[str, float]:
        """Per-class accuracy (the diagonal of ``confusion``) on easy items, fresh."""
        return {c: self.confusion[j][j] for j, c in enumerate(self.classes)}

    def to_dict(self) -> dict[str, Any]:
        """Return the profile as a JSON-able dict (lists instead of tuples)."""
        out = asdict(self)
        out["classes"] = list(self.classes)
        out["confusion"] = [list(row) for row in self.confusion]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AnnotatorProfile:
        """Build a profile from :meth:`to_dict` output.

        Args:
            data: A mapping with the dataclass fields as keys.

        Returns:
            The validated profile.

        Raises:
            GeolabelError: If a field is missing, unknown or invalid.
        """
        fields = set(cls.__dataclass_fields__)
        required = {"annotator_id", "kind", "classes", "confusion"}
        missing = sorted(required - set(data))
        unknown = sorted(set(data) - fields)
        if missing or unknown:
            raise GeolabelError(
                f"annotator profile {data.get('annotator_id', '?')!r}: missing keys {missing}, "
                f"unknown keys {unknown}; expected keys are {sorted(fields)}"
            )
        return cls(**dict(data))


def profiles_to_json(profiles: Iterable[AnnotatorProfile]) -> dict[str, Any]:
    """Return the annotators' true parameters as a JSON-able dict.

    Args:
        profiles: The profiles, e.g. from :func:`make_crowd`.

    Returns:
        ``{"format": PROFILES_FORMAT, "annotators": [profile.to_dict(), ...]}``; pass it to
        ``json.dump``. Floats are kept at full precision, so the round trip is exact.
    """
    return {"format": PROFILES_FORMAT, "annotators": [p.to_dict() for p in profiles]}


def profiles_from_json(data: Mapping[str, Any]) -> list[AnnotatorProfile]:
    """Read profiles written by :func:`profiles_to_json` (after ``json.load``).

    Args:
        data: The dict with ``format`` and ``annotators`` keys.

    Returns:
        The profiles, in stored order.

    Raises:
        GeolabelError: If the format tag is wrong, or a profile is missing keys or invalid.
    """
    if not isinstance(data, Mapping) or data.get("format") != PROFILES_FORMAT:
        found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
        raise GeolabelError(
            f"not a geolabel annotator-profile file: expected format {PROFILES_FORMAT!r}, "
            f"found {found!r}; write it with profiles_to_json"
        )
    annotators = data.get("annotators")
    if not isinstance(annotators, list):
        raise GeolabelError("annotator-profile file has no 'annotators' list")
    return [AnnotatorProfile.from_dict(item) for item in annotators]


@dataclass(frozen=True, slots=True)
class _WorkerRanges:
    """Ranges the parameters of a non-spammer kind are drawn from in :func:`make_crowd`."""

    accuracy: tuple[float, float]
    class_sd: float
    clip: tuple[float, float]
    fatigue: tuple[float, float]
    fatigue_floor: float
    session_length: tuple[int, int]
    difficulty_sensitivity: tuple[float, float]
    alt_rate: tuple[float, float]
    median_seconds: tuple[float, float]


_CROWD: Final = _WorkerRanges(
    accuracy=(0.72, 0.97),
    class_sd=0.05,
    clip=(0.45, 0.99),
    fatigue=(0.0005, 0.003),
    fatigue_floor=0.75,
    session_length=(20, 60),
    difficulty_sensitivity=(0.2, 0.45),
    alt_rate=(0.35, 0.45),
    median_seconds=(12.0, 30.0),
)
_EXPERT: Final = _WorkerRanges(
    accuracy=(0.97, 0.995),
    class_sd=0.01,
    clip=(0.94, 0.999),
    fatigue=(0.0, 0.002),
    fatigue_floor=0.85,
    session_length=(40, 80),
    difficulty_sensitivity=(0.1, 0.2),
    alt_rate=(0.1, 0.2),
    median_seconds=(35.0, 60.0),
)


def make_crowd(
    classes: Sequence[str],
    n_annotators: int = 30,
    *,
    spammer_rate: float = 0.1,
    n_experts: int = 3,
    seed: int = 0,
) -> list[AnnotatorProfile]:
    r"""Draw a crowd of annotators with realistic, uneven skill.

    Crowd workers get a base accuracy :math:`\sim U(0.6, 0.95)`, varied per class by
    :math:`N(0, 0.05)` and clipped to [0.35, 0.99]. Their errors on class :math:`c` follow a
    Dirichlet draw (concentration 30) around the population pattern :data:`CONFUSION_PAIRS`:
    residential↔commercial most often, then vacant↔construction, then park↔vacant and
    industrial↔commercial, any other pair rarely. ``round(spammer_rate * n_annotators)`` of the
    crowd workers are spammers instead: half answer uniformly at random, half always answer one
    class. Fatigue takes 0.1–0.4 % of skill per task in a session, floored at 70 %. Experts
    get accuracy :math:`\sim U(0.97, 0.995)`, little fatigue, low difficulty sensitivity and a
    lower borderline rate.

    Each annotator's parameters come from ``default_rng([seed, kind, index])``, so ``expert-01``
    is the same whatever ``n_annotators`` is.

    Args:
        classes: The class ids annotators choose from (at least two, unique).
        n_annotators: Crowd-platform workers, ids ``crowd-001``... (spammers included; their
            ids do not reveal them).
        spammer_rate: Share of the crowd workers who are spammers, in [0, 1].
        n_experts: Experts added after the crowd, ids ``expert-01``...
        seed: Non-negative seed.

    Returns:
        ``n_annotators`` crowd profiles followed by ``n_experts`` expert profiles.

    Raises:
        GeolabelError: If a count, rate or seed is out of range, or ``classes`` is invalid.
    """
    cls = _check_classes(classes)
    seed = _check_seed(seed)
    for name, value in (("n_annotators", n_annotators), ("n_experts", n_experts)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise GeolabelError(f"{name} must be a non-negative integer, got {value!r}")
    if n_annotators + n_experts == 0:
        raise GeolabelError("make_crowd needs at least one annotator or expert")
    if not 0.0 <= spammer_rate <= 1.0:
        raise GeolabelError(f"spammer_rate must be in [0, 1], got {spammer_rate!r}")
    weights = _pair_weights(cls)
    n_spam = round(spammer_rate * n_annotators)
    spam_rng = np.random.default_rng([seed, _TAG_SPAMMERS])
    spammers = set(spam_rng.choice(n_annotators, size=n_spam, replace=False).tolist())
    profiles: list[AnnotatorProfile] = []
    for idx in range(n_annotators):
        rng = np.random.default_rng([seed, _TAG_CROWD, idx])
        aid = f"crowd-{idx + 1:03d}"
        if idx in spammers:
            profiles.append(_make_spammer(aid, cls, rng))
        else:
            profiles.append(_make_worker(aid, "crowd", cls, weights, _CROWD, rng))
    for idx in range(n_experts):
        rng = np.random.default_rng([seed, _TAG_EXPERT, idx])
        profiles.append(_make_worker(f"expert-{idx + 1:02d}", "expert", cls, weights, _EXPERT, rng))
    return profiles


def _pair_weights(classes: tuple[str, ...]) -> np.ndarray:
    """Return the symmetric ``(K, K)`` confusion-pair weights, zero on the diagonal."""
    k = len(classes)
    weights = np.full((k, k), _BASE_CONFUSION)
    position = {c: j for j, c in enumerate(classes)}
    for a, b, w in CONFUSION_PAIRS:
        if a in position and b in position:
            weights[position[a], position[b]] = weights[position[b], position[a]] = w
    np.fill_diagonal(weights, 0.0)
    return weights


def _make_worker(
    annotator_id: str,
    kind: AnnotatorKind,
    classes: tuple[str, ...],
    weights: np.ndarray,
    ranges: _WorkerRanges,
    rng: np.random.Generator,
) -> AnnotatorProfile:
    """Draw one crowd worker or expert: per-class accuracy and a personal error pattern."""
    k = len(classes)
    base = rng.uniform(*ranges.accuracy)
    accuracy = np.clip(base + rng.normal(0.0, ranges.class_sd, size=k), *ranges.clip)
    confusion = np.zeros((k, k))
    for j in range(k):
        others = np.arange(k) != j
        alpha = _PATTERN_CONCENTRATION * weights[j, others] / weights[j, others].sum()
        confusion[j, others] = (1.0 - accuracy[j]) * rng.dirichlet(alpha)
        confusion[j, j] = accuracy[j]
    return AnnotatorProfile(
        annotator_id=annotator_id,
        kind=kind,
        classes=classes,
        confusion=tuple(map(tuple, confusion)),
        fatigue=float(rng.uniform(*ranges.fatigue)),
        fatigue_floor=ranges.fatigue_floor,
        session_length=int(rng.integers(*ranges.session_length, endpoint=True)),
        difficulty_sensitivity=float(rng.uniform(*ranges.difficulty_sensitivity)),
        alt_rate=float(rng.uniform(*ranges.alt_rate)),
        median_seconds=float(rng.uniform(*ranges.median_seconds)),
    )


def _make_spammer(
    annotator_id: str, classes: tuple[str, ...], rng: np.random.Generator
) -> AnnotatorProfile:
    """Draw one spammer: uniform answers, or always the same class."""
    k = len(classes)
    if rng.random() < 0.5:
        confusion = np.full((k, k), 1.0 / k)
    else:
        confusion = np.zeros((k, k))
        confusion[:, rng.integers(k)] = 1.0
    return AnnotatorProfile(
        annotator_id=annotator_id,
        kind="spammer",
        classes=classes,
        confusion=tuple(map(tuple, confusion)),
        fatigue=0.0,
        fatigue_floor=1.0,
        session_length=int(rng.integers(40, 120, endpoint=True)),
        difficulty_sensitivity=0.0,
        alt_rate=0.0,
        median_seconds=float(rng.uniform(2.5, 5.0)),
    )


class CrowdSimulator:
    """Answer labeling tasks as the simulated crowd would (model in the module docstring).

    Args:
        truth: One row per item with the columns in :data:`TRUTH_COLUMNS`: ``item`` (unique
            id), ``label`` (the true class, possibly one the taxonomy lacks), ``alt_label`` (the
            plausible second class of ``"borderline"`` items, else None/NaN), ``ambiguity``
            (``"none"``, ``"mixed_use"`` or ``"borderline"``) and ``difficulty`` in [0, 1].
            Other columns (``district``...) are ignored.
        profiles: The annotators, e.g. from :func:`make_crowd`; their ``classes`` must be the
            same set as ``classes`` (any order).
        classes: The class ids annotators can answer (the current taxonomy's classes).
        fallback: For true labels not in ``classes``, the distribution of the class answered
            instead, e.g. ``{"mixed_use": {"residential": 0.5, "commercial": 0.5}}``. Weights are
            normalised. Merged over :data:`DEFAULT_FALLBACK`, whose entries apply only when
            their target classes exist. Entries for labels in ``classes`` are not used.
        seed: Non-negative seed of every vote's draws.
        start: Start of the first session, an ISO-8601 time (naive means UTC).

    Raises:
        ColumnError: If ``truth`` lacks a column, repeats an item, has an unknown ambiguity, a
            difficulty outside [0, 1], or a borderline item without ``alt_label``.
        LabelError: If a true or alternative label is neither a class nor covered by the
            fallback, a fallback targets an unknown class, or profiles use other classes.
        GeolabelError: If profiles repeat an id, or the seed or start is invalid.
    """

    def __init__(
        self,
        truth: pd.DataFrame,
        profiles: Sequence[AnnotatorProfile],
        classes: Sequence[str],
        *,
        fallback: Mapping[str, Mapping[str, float]] | None = None,
        seed: int = 0,
        start: str | pd.Timestamp = "2026-01-05T09:00:00Z",
    ) -> None:
        self.classes = _check_classes(classes)
        self.seed = _check_seed(seed)
        self.start = _parse_start(start)
        self.profiles = tuple(profiles)
        self.fallback = _resolve_fallback(self.classes, fallback)
        self._init_profiles()
        self._init_truth(truth)

    def _init_profiles(self) -> None:
        """Stack the profiles' parameters into arrays indexed like ``self.profiles``."""
        if not self.profiles:
            raise GeolabelError("CrowdSimulator needs at least one annotator profile")
        ids = [p.annotator_id for p in self.profiles]
        repeated = sorted({a for a in ids if ids.count(a) > 1})
        if repeated:
            raise GeolabelError(f"annotator ids must be unique; repeated: {repeated[:5]}")
        k = len(self.classes)
        matrices = np.empty((len(ids), k, k))
        for n, profile in enumerate(self.profiles):
            if set(profile.classes) != set(self.classes):
                raise LabelError(
                    f"annotator {profile.annotator_id!r} was made for classes "
                    f"{list(profile.classes)}, but the simulator answers {list(self.classes)}; "
                    "make the crowd with the same classes"
                )
            order = [profile.classes.index(c) for c in self.classes]
            matrices[n] = profile.matrix[np.ix_(order, order)]
        diag = np.diagonal(matrices, axis1=1, axis2=2)
        off = matrices * (1.0 - np.eye(k))
        room = (1.0 - diag)[:, :, None]
        uniform = (1.0 - np.eye(k)) / max(k - 1, 1)
        self._matrix = matrices
        self._pattern = np.where(room > 1e-12, off / np.maximum(room, 1e-12), uniform)
        self._annotator_index = pd.Index(ids)
        self._spammer = np.array([p.kind == "spammer" for p in self.profiles])
        self._fatigue = np.array([p.fatigue for p in self.profiles])
        self._floor = np.array([p.fatigue_floor for p in self.profiles])
        self._session = np.array([p.session_length for p in self.profiles], dtype=np.int64)
        self._sensitivity = np.array([p.difficulty_sensitivity for p in self.profiles])
        self._alt_rate = np.array([p.alt_rate for p in self.profiles])
        self._median = np.array([p.median_seconds for p in self.profiles])
        offsets = _digest_uniforms(self.seed, b"geolabel.session", [("", a) for a in ids], 1)
        self._offset_s = np.floor(offsets[:, 0] * _SESSION_OFFSET_S).astype(np.int64)

    def _init_truth(self, truth: pd.DataFrame) -> None:
        """Validate ``truth`` and encode it as arrays indexed like ``self._item_index``."""
        _require_columns(truth, TRUTH_COLUMNS, "truth")
        items = truth["item"]
        if items.isna().any():
            raise ColumnError("truth column 'item' has missing ids; give every item an id")
        repeated = items[items.duplicated()].unique().tolist()
        if repeated:
            raise ColumnError(f"truth column 'item' repeats items: {repeated[:5]}; one row each")
        no_label = truth["label"].isna().to_numpy()
        if no_label.any():
            raise ColumnError(
                f"truth column 'label' is missing for items {items[no_label].tolist()[:5]}; "
                "the simulator needs every item's true label"
            )
        ambiguity = truth["ambiguity"].fillna("none").astype(str)
        bad_amb = sorted(set(ambiguity) - set(_AMBIGUITIES))
        if bad_amb:
            raise ColumnError(
                f"truth column 'ambiguity' has unknown values {bad_amb[:5]}; "
                f"use one of {list(_AMBIGUITIES)}"
            )
        difficulty = pd.to_numeric(truth["difficulty"], errors="coerce").to_numpy(np.float64)
        bad_diff = ~((difficulty >= 0.0) & (difficulty <= 1.0))
        if bad_diff.any():
            raise ColumnError(
                "truth column 'difficulty' must be a number in [0, 1]; items "
                f"{items[bad_diff].tolist()[:5]} are not"
            )
        border = (ambiguity == "borderline").to_numpy()
        no_alt = border & truth["alt_label"].isna().to_numpy()
        if no_alt.any():
            raise ColumnError(
                "truth rows with ambiguity 'borderline' need an 'alt_label'; items "
                f"{items[no_alt].tolist()[:5]} have none"
            )
        # Row r of _targets: the distribution of the answerable class a label resolves to.
        names = list(self.classes) + sorted(self.fallback)
        self._targets = np.vstack(
            [np.eye(len(self.classes)), *(self.fallback[n] for n in sorted(self.fallback))]
        )
        code_of = {name: r for r, name in enumerate(names)}
        labels = truth["label"].astype(object).to_numpy()
        alts = truth["alt_label"].astype(object).to_numpy()
        needed = set(labels.tolist()) | set(alts[border].tolist())
        unresolved = sorted(str(x) for x in needed if x not in code_of)
        if unresolved:
            raise LabelError(
                f"truth labels {unresolved} are not in classes {list(self.classes)} and have no "
                f"fallback (fallback covers {sorted(self.fallback)}); add them to classes or "
                f"pass fallback={{{unresolved[0]!r}: {{<class>: <weight>, ...}}}}"
            )
        self._item_index = pd.Index(items)
        self._label_code = np.array([code_of[x] for x in labels], dtype=np.int64)
        self._alt_code = np.array(
            [code_of[a] if b else -1 for a, b in zip(alts, border, strict=True)], dtype=np.int64
        )
        self._border = border
        self._ambiguous = (ambiguity != "none").to_numpy()
        self._difficulty = difficulty

    def label(
        self, tasks: pd.DataFrame, *, start: str | pd.Timestamp | None = None
    ) -> pd.DataFrame:
        """Answer each task: one vote per ``(item, annotator)`` row.

        Each annotator works through their rows in the order given, in sessions of
        ``session_length`` tasks (one session a day), which sets fatigue and timestamps. The call
        keeps no state: calling twice with the same frame returns the same votes.

        Args:
            tasks: Columns ``item`` and ``annotator``; other columns are ignored.
            start: Start of the first session for this batch; defaults to the simulator's.

        Returns:
            A frame with columns ``item``, ``annotator``, ``label`` (the answered class),
            ``created_at`` (ISO-8601 UTC string) and ``seconds`` (float, time spent), one row per
            task in the order of ``tasks``, with a fresh ``RangeIndex``.

        Raises:
            ColumnError: If a column is missing, a task names an unknown item or annotator, or
                an ``(item, annotator)`` pair repeats.
            GeolabelError: If ``start`` is not a valid time.
        """
        start_s = self.start if start is None else _parse_start(start)
        _require_columns(tasks, ("item", "annotator"), "tasks")
        item_idx = self._lookup(tasks["item"], self._item_index, "items", "truth")
        ann_idx = self._lookup(tasks["annotator"], self._annotator_index, "annotators", "profiles")
        repeated = tasks.duplicated(["item", "annotator"], keep="first").to_numpy()
        if repeated.any():
            pairs = list(zip(tasks["item"][repeated], tasks["annotator"][repeated], strict=True))
            raise ColumnError(
                f"tasks repeat {int(repeated.sum())} (item, annotator) pairs, e.g. {pairs[:3]}; "
                "an annotator labels an item once"
            )
        u = _digest_uniforms(
            self.seed,
            b"geolabel.vote",
            zip(tasks["item"].tolist(), tasks["annotator"].tolist(), strict=True),
            _N_DRAWS,
        )
        q = tasks.groupby(ann_idx, sort=False).cumcount().to_numpy(np.int64)
        session, done = np.divmod(q, self._session[ann_idx])
        difficulty = self._difficulty[item_idx]
        # 1-2. Intended label, then the answerable class it resolves to.
        use_alt = self._border[item_idx] & (u[:, _U_ALT] < self._alt_rate[ann_idx])
        code = np.where(use_alt, self._alt_code[item_idx], self._label_code[item_idx])
        target = _inverse_cdf(self._targets[code], u[:, _U_FALLBACK])
        # 3-4. Effective skill, then the answer.
        fatigue = np.maximum(self._floor[ann_idx], (1.0 - self._fatigue[ann_idx]) ** done)
        skill = fatigue * (1.0 - self._sensitivity[ann_idx] * difficulty)
        p = skill * self._matrix[ann_idx, target, target]
        probs = (1.0 - p)[:, None] * self._pattern[ann_idx, target]
        probs[np.arange(len(p)), target] += p
        answer = _inverse_cdf(probs, u[:, _U_ANSWER])
        # 5. Time spent.
        z = np.sqrt(-2.0 * np.log1p(-u[:, _U_Z1])) * np.cos(2.0 * np.pi * u[:, _U_Z2])
        hardness = (1.0 + _SECONDS_PER_DIFFICULTY * difficulty) * np.where(
            self._ambiguous[item_idx], _SECONDS_AMBIGUOUS, 1.0
        )
        hardness = np.where(self._spammer[ann_idx], 1.0, hardness)
        seconds = self._median[ann_idx] * hardness * np.exp(_SECONDS_SIGMA * z)
        seconds = np.round(np.maximum(seconds, 1.0), 1)
        # 6. Timestamps: session start plus the seconds spent so far in the session.
        elapsed = pd.Series(seconds).groupby([ann_idx, session], sort=False).cumsum()
        epoch = (
            start_s
            + session * _DAY_S
            + self._offset_s[ann_idx]
            + np.floor(elapsed.to_numpy(np.float64)).astype(np.int64)
        )
        created_at = pd.to_datetime(epoch, unit="s", utc=True).strftime("%Y-%m-%dT%H:%M:%SZ")
        return pd.DataFrame(
            {
                "item": tasks["item"].to_numpy(),
                "annotator": tasks["annotator"].to_numpy(),
                "label": np.asarray(self.classes, dtype=object)[answer],
                "created_at": np.asarray(created_at, dtype=object),
                "seconds": seconds,
            }
        )

    def assign_and_label(
        self,
        items: Iterable[Any],
        k: int,
        annotator_pool: Sequence[str] | None = None,
        *,
        start: str | pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        """Give every item to ``k`` distinct annotators with balanced load, then label.

        Items are handled in order; each goes to the ``k`` least-loaded annotators of the pool,
        ties broken at random (``default_rng([seed, 4])``), so loads never differ by more than
        one and groups of co-annotators mix. No gold, no routing: see ``geolabel.crowd`` task
        assignment for that.

        Args:
            items: Item ids from ``truth``, each once.
            k: Votes per item, 1 <= k <= pool size.
            annotator_pool: Annotator ids to draw from; defaults to every non-expert (the crowd
                platform, spammers included). Pass the expert ids for an expert tier.
            start: Start of the first session for this batch; defaults to the simulator's.

        Returns:
            The votes, as :meth:`label` returns them, item by item.

        Raises:
            GeolabelError: If ``k`` is out of range, or items or the pool repeat or are unknown.
        """
        item_list = list(items)
        if annotator_pool is None:
            pool = [p.annotator_id for p in self.profiles if p.kind != "expert"]
            pool = pool or list(self._annotator_index)
        else:
            pool = list(annotator_pool)
        for what, values, index in (
            ("items", item_list, self._item_index),
            ("annotator_pool", pool, self._annotator_index),
        ):
            seen = pd.Index(values)
            if seen.has_duplicates:
                dupes = seen[seen.duplicated()].unique().tolist()
                raise GeolabelError(f"{what} repeats {dupes[:5]}; give each once")
            unknown = seen[index.get_indexer(seen) < 0].tolist()
            if unknown:
                raise GeolabelError(
                    f"{what} has {len(unknown)} unknown ids, e.g. {unknown[:5]}; "
                    f"known: {index[:5].tolist()}{'...' if len(index) > 5 else ''}"
                )
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= len(pool):
            raise GeolabelError(
                f"k must be an integer from 1 to the pool size ({len(pool)}), got {k!r}: "
                "an item cannot get the same annotator twice"
            )
        rng = np.random.default_rng([self.seed, _TAG_ASSIGN])
        load = np.zeros(len(pool), dtype=np.int64)
        chosen = np.empty((len(item_list), int(k)), dtype=np.int64)
        for row, ties in enumerate(rng.random((len(item_list), len(pool)))):
            pick = np.lexsort((ties, load))[:k]
            load[pick] += 1
            chosen[row] = pick
        tasks = pd.DataFrame(
            {
                "item": np.repeat(np.asarray(item_list, dtype=object), k),
                "annotator": np.asarray(pool, dtype=object)[chosen.ravel()],
            }
        )
        return self.label(tasks, start=start)

    @staticmethod
    def _lookup(values: pd.Series, index: pd.Index, what: str, source: str) -> np.ndarray:
        """Return the positions of ``values`` in ``index``; raise naming a few unknown ones."""
        positions = index.get_indexer(pd.Index(values))
        missing = positions < 0
        if missing.any():
            unknown = pd.unique(values[missing]).tolist()
            raise ColumnError(
                f"tasks reference {len(unknown)} {what} not in {source}, e.g. {unknown[:5]}; "
                f"{source} has {len(index)} {what}, e.g. {index[:5].tolist()}"
            )
        return np.asarray(positions, dtype=np.int64)


def _check_classes(classes: Iterable[str]) -> tuple[str, ...]:
    """Return ``classes`` as a tuple of at least two unique, non-empty strings."""
    if isinstance(classes, str):
        raise LabelError(f"classes must be a list of class ids, not the string {classes!r}")
    out = tuple(classes)
    if len(out) < 2 or not all(isinstance(c, str) and c for c in out):
        raise LabelError(f"classes must be at least two non-empty strings, got {list(out)}")
    repeated = sorted({c for c in out if out.count(c) > 1})
    if repeated:
        raise LabelError(f"classes repeat {repeated}; list each class once")
    return out


def _check_seed(seed: int) -> int:
    """Return ``seed`` if it is an integer in [0, 2**64)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**64:
        raise GeolabelError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    return int(seed)


def _parse_start(start: str | pd.Timestamp) -> int:
    """Return ``start`` as whole seconds since the Unix epoch (naive times are UTC)."""
    try:
        stamp = pd.Timestamp(start)
    except (TypeError, ValueError) as exc:
        raise GeolabelError(
            f"start must be an ISO-8601 time such as '2026-01-05T09:00:00Z', got {start!r}"
        ) from exc
    if pd.isna(stamp):
        raise GeolabelError(f"start must be a time, got {start!r}")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.value // 1_000_000_000)


def _resolve_fallback(
    classes: tuple[str, ...], fallback: Mapping[str, Mapping[str, float]] | None
) -> dict[str, np.ndarray]:
    """Merge ``fallback`` over the defaults; return label -> distribution over ``classes``."""
    known = set(classes)
    merged: dict[str, Mapping[str, float]] = {
        label: dist for label, dist in DEFAULT_FALLBACK.items() if set(dist) <= known
    }
    merged.update(fallback or {})
    out: dict[str, np.ndarray] = {}
    for label, dist in merged.items():
        if label in known:
            continue
        unknown = sorted(set(dist) - known)
        if unknown:
            raise LabelError(
                f"fallback for {label!r} targets {unknown}, which are not in classes "
                f"{list(classes)}"
            )
        weights = np.array([float(dist.get(c, 0.0)) for c in classes])
        if not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
            raise LabelError(
                f"fallback for {label!r} needs non-negative weights with a positive sum, "
                f"got {dict(dist)}"
            )
        out[label] = weights / weights.sum()
    return out


def _require_columns(frame: pd.DataFrame, required: Iterable[str], name: str) -> None:
    """Raise :class:`ColumnError` naming the missing columns and listing the available ones."""
    if not isinstance(frame, pd.DataFrame):
        raise ColumnError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ColumnError(
            f"{name} is missing column(s) {missing}; available: {list(map(str, frame.columns))}"
        )


def _digest_uniforms(
    seed: int, person: bytes, pairs: Iterable[tuple[Any, Any]], n_draws: int
) -> np.ndarray:
    """Return ``n_draws`` uniforms in [0, 1) per ``(item, annotator)`` pair, from BLAKE2b.

    Each pair's draws depend only on ``seed``, ``person`` (a domain tag) and the pair, which
    makes them a counter-based random stream: order- and batch-independent.
    """
    key = seed.to_bytes(8, "little")
    buffer = b"".join(
        hashlib.blake2b(
            f"{item}\x1f{annotator}".encode(), digest_size=8 * n_draws, key=key, person=person
        ).digest()
        for item, annotator in pairs
    )
    words = np.frombuffer(buffer, dtype="<u8").reshape(-1, n_draws)
    return (words >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _inverse_cdf(probs: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Draw one column per row of ``probs`` (rows need not be normalised) with uniforms ``u``.

    The CDF is divided by its last value, so ``u < 1`` never selects past the last class with
    positive probability, and classes of probability zero are never selected.
    """
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    return (u[:, None] >= cdf).sum(axis=1)
