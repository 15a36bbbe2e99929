"""Settings of the hybrid loop: prices, routing thresholds, redundancy, selection weights.

One :class:`LoopConfig` drives a round. It is read from TOML or YAML (``geolabel round PROJECT
--config loop.toml``); every key is optional and falls back to the defaults below, unknown keys
and out-of-range values are refused with the key's name. A file looks like::

    batch_size = 60            # items selected per round
    seed = 0
    min_distance_m = 25.0      # no two items of a batch closer than this, where possible
    cluster_batch = true       # ... and at most one per cluster of look-alike parcels
    cold_start_per_class = 4.0 # fewer labeled items per class than this: density alone

    [prices]                   # in your currency, per unit of work
    verify = 0.04              # one person checks a shown pre-label
    crowd_vote = 0.06          # one crowd vote (gold questions cost the same)
    expert = 0.90              # one expert decision
    audit = 0.60               # one audited item

    [routing]
    easy_confidence = 0.90     # calibrated pre-label confidence at or above: verify only
    hard_confidence = 0.45     # below: an expert
    hard_novelty = 0.95        # novelty percentile above: an expert
    impact_to_medium = true    # high-impact items are never verified only

    [redundancy]
    initial_votes = 3          # crowd votes asked at once for a medium item
    max_votes = 7              # dynamic overlap stops here
    target_posterior = 0.95    # ... or once the posterior of the top class reaches this
    gold_rate = 0.1            # share of gold questions mixed into crowd batches

    [selection]                # weights of the active-learning scorers (see loop.select)
    entropy = 1.0
    novelty = 0.5              # routing reads novelty and impact whatever their weights
    impact = 0.25
    density = 0.0              # typical parcels, one per look-alike cluster (cluster_batch)
    random = 0.0

Defaults: prices follow a common ratio of crowd platforms to in-house experts (an expert
decision costs about 15 crowd votes; a verification is a faster vote); thresholds are in
calibrated probability, so they mean the same thing for every model.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import yaml

from geolabel.errors import ConfigError

__all__ = [
    "COLD_START_SELECTION",
    "LoopConfig",
    "Prices",
    "Redundancy",
    "Routing",
    "load_config",
]


@dataclass(frozen=True)
class Prices:
    """Price of each unit of work.

    Attributes:
        verify: One person checks a shown pre-label (accepts or corrects it).
        crowd_vote: One crowd vote; gold questions are votes too and cost the same.
        expert: One expert decision.
        audit: One audited item (an expert re-checks a sampled label).
    """

    verify: float = 0.04
    crowd_vote: float = 0.06
    expert: float = 0.90
    audit: float = 0.60


@dataclass(frozen=True)
class Routing:
    """Thresholds that put an item in a tier (see :mod:`geolabel.loop.route`).

    Attributes:
        easy_confidence: Calibrated pre-label confidence at or above which an item is only
            verified (when nothing else makes it harder).
        hard_confidence: Confidence below which an item goes to an expert.
        hard_novelty: Novelty (percentile among the candidates, 0–1) above which an item goes
            to an expert: nothing like it has been labeled.
        impact_to_medium: High-impact items (named in notices, large) are never verified only.
        impact_quantile: Impact percentile at or above which an item counts as high impact.
    """

    easy_confidence: float = 0.90
    hard_confidence: float = 0.45
    hard_novelty: float = 0.95
    impact_to_medium: bool = True
    impact_quantile: float = 0.9


@dataclass(frozen=True)
class Redundancy:
    """Crowd votes for medium items (dynamic overlap) and gold questions.

    Attributes:
        initial_votes: Votes asked at once for a medium item.
        max_votes: Most crowd votes an item gets; then it goes to an expert if still unsure
            and ``escalate`` is set.
        target_posterior: More votes are asked while the top class's posterior is below this.
        gold_rate: Share of gold questions mixed into every crowd batch.
        escalate: Items still below the target after ``max_votes`` go to an expert.
    """

    initial_votes: int = 3
    max_votes: int = 7
    target_posterior: float = 0.95
    gold_rate: float = 0.1
    escalate: bool = True


COLD_START_SELECTION: Final[Mapping[str, float]] = MappingProxyType({"density": 1.0})
"""Scorer weights while the cold start lasts (see ``LoopConfig.cold_start_per_class``)."""


@dataclass(frozen=True)
class LoopConfig:
    """Everything one round needs to know.

    Attributes:
        batch_size: Items selected per round.
        seed: Seed of every random draw of the round (selection ties, gold positions, the
            simulated crowd).
        prices: See :class:`Prices`.
        routing: See :class:`Routing`.
        redundancy: See :class:`Redundancy`.
        selection: Weight per active-learning scorer (names in
            :data:`geolabel.loop.select.SCORERS`), once the cold start is over (see
            ``cold_start_per_class``). Routing computes novelty and impact itself, whatever
            these weights. ``{"density": 1.0}`` in every round taught the model faster on
            the sample's loop benchmark in session 6 (labels to target over random's 0.88
            against the default's 0.93, one run each), but its batches hold few ambiguous
            parcels: in one of two demo runs with it the crowd met too few of the planted
            mixed-use parcels for a taxonomy change to be proposed. The default keeps the
            uncertain and the novel in every batch after the cold start.
        min_distance_m: Smallest distance between two items of one batch (spatial diversity);
            relaxed when the batch cannot be filled.
        cluster_batch: Also take at most one item per cluster of the parcels' embeddings
            (k-means into as many clusters as the batch has items; see
            :func:`geolabel.loop.select.embedding_clusters`), so a batch spreads over what
            parcels look like as well as over where they are. Needs the embeddings that
            pre-labeling writes; without them only the distance applies.
        cold_start_per_class: While fewer parcels than this per class of the taxonomy are
            labeled (starter set and consensus), and parcels have embeddings, selection
            scores by ``density`` alone (:data:`COLD_START_SELECTION`): the most typical
            parcel of each look-alike cluster, TypiClust's rule for small budgets. The
            benchmark's models trained on 12 parcels missed 28-47% of the test parcels, so
            their uncertainty says little about which labels would teach most. 0 turns the
            cold start off. On the sample's loop benchmark (seed sets of 12 parcels, 8
            classes, so the first batch of 24 only), AL's labels to target went from 81.9,
            83.2 and 68.0 to 57.4, 78.1 and 55.6 on seeds 0-2 (random: 74.0, 150.9, 114.0),
            AL over random from 0.75 to 0.59.
        aggregation: Aggregation method (``ds``, ``mv``, ``wmv``, ``glad``, ``onecoin``).
        retrain: Retrain the model at the start of every round after the first.
        epochs: Epochs of a retraining run (None: the trainer's default).
    """

    batch_size: int = 60
    seed: int = 0
    prices: Prices = field(default_factory=Prices)
    routing: Routing = field(default_factory=Routing)
    redundancy: Redundancy = field(default_factory=Redundancy)
    selection: Mapping[str, float] = field(
        default_factory=lambda: {"entropy": 1.0, "novelty": 0.5, "impact": 0.25}
    )
    min_distance_m: float = 25.0
    cluster_batch: bool = True
    cold_start_per_class: float = 4.0
    aggregation: str = "ds"
    retrain: bool = True
    epochs: int | None = None

    def __post_init__(self) -> None:
        _check(self)

    def selection_for(
        self, n_labeled: int, n_classes: int, *, embeddings: bool = True
    ) -> Mapping[str, float]:
        """The scorer weights of a round that starts with ``n_labeled`` labeled items.

        :data:`COLD_START_SELECTION` while the cold start lasts (fewer than
        ``cold_start_per_class × n_classes`` labeled items, and ``embeddings`` to score
        density on); :attr:`selection` after.
        """
        if embeddings and n_labeled < self.cold_start_per_class * n_classes:
            return COLD_START_SELECTION
        return self.selection

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able settings (stored with every round)."""
        data = asdict(self)
        data["selection"] = dict(self.selection)
        return data

    def with_updates(self, **changes: Any) -> LoopConfig:
        """A copy with top-level fields or ``prices``/``routing``/``redundancy`` dicts changed."""
        nested = {"prices": Prices, "routing": Routing, "redundancy": Redundancy}
        for key, value in list(changes.items()):
            if key in nested and isinstance(value, Mapping):
                changes[key] = replace(getattr(self, key), **dict(value))
        return replace(self, **changes)


def _check(cfg: LoopConfig) -> None:
    """Refuse values that make no sense, naming the key."""
    from geolabel.crowd.consensus import METHODS

    problems: list[str] = []
    if cfg.batch_size < 1:
        problems.append(f"batch_size must be at least 1 (got {cfg.batch_size})")
    if cfg.seed < 0:
        problems.append(f"seed must be non-negative (got {cfg.seed})")
    for name, value in asdict(cfg.prices).items():
        if not value >= 0:
            problems.append(f"prices.{name} must be a non-negative number (got {value})")
    r = cfg.routing
    for name in ("easy_confidence", "hard_confidence", "hard_novelty", "impact_quantile"):
        value = getattr(r, name)
        if not 0.0 <= value <= 1.0:
            problems.append(f"routing.{name} must be in [0, 1] (got {value})")
    if r.hard_confidence > r.easy_confidence:
        problems.append(
            f"routing.hard_confidence ({r.hard_confidence}) must not exceed"
            f" routing.easy_confidence ({r.easy_confidence})"
        )
    d = cfg.redundancy
    if d.initial_votes < 1:
        problems.append(f"redundancy.initial_votes must be at least 1 (got {d.initial_votes})")
    if d.max_votes < d.initial_votes:
        problems.append(
            f"redundancy.max_votes ({d.max_votes}) must be at least redundancy.initial_votes"
            f" ({d.initial_votes})"
        )
    if not 0.0 < d.target_posterior <= 1.0:
        problems.append(f"redundancy.target_posterior must be in (0, 1] (got {d.target_posterior})")
    if not 0.0 <= d.gold_rate < 1.0:
        problems.append(f"redundancy.gold_rate must be in [0, 1) (got {d.gold_rate})")
    from geolabel.loop.select import SCORERS

    for name, weight in cfg.selection.items():
        if name not in SCORERS:
            problems.append(f"selection.{name} is not a scorer; use {', '.join(sorted(SCORERS))}")
        elif not weight >= 0:
            problems.append(f"selection.{name} must be a non-negative weight (got {weight})")
    if cfg.selection and not any(w > 0 for w in cfg.selection.values()):
        problems.append("selection needs at least one positive weight")
    if not cfg.cold_start_per_class >= 0:
        problems.append(
            f"cold_start_per_class must be non-negative (0: off; got {cfg.cold_start_per_class})"
        )
    if cfg.min_distance_m < 0:
        problems.append(f"min_distance_m must be non-negative (got {cfg.min_distance_m})")
    if cfg.aggregation not in METHODS:
        problems.append(
            f"aggregation must be one of {', '.join(METHODS)} (got {cfg.aggregation!r})"
        )
    if cfg.epochs is not None and cfg.epochs < 1:
        problems.append(f"epochs must be at least 1 (got {cfg.epochs})")
    if problems:
        raise ConfigError("Bad loop settings: " + "; ".join(problems) + ".")


def _section(data: Mapping[str, Any], key: str, cls: type, where: str) -> Any:
    raw = data.get(key, {})
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: [{key}] must be a table of settings, not {raw!r}.")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) in [{key}]: {', '.join(unknown)};"
            f" known: {', '.join(sorted(known))}."
        )
    _check_types(raw, cls(), f"{key}.", where)
    return cls(**dict(raw))


def _check_types(raw: Mapping[str, Any], defaults: Any, prefix: str, where: str) -> None:
    """Refuse values whose type differs from the default's (a number given as text...)."""
    for name, value in raw.items():
        default = getattr(defaults, name, None)
        if (
            default is None
            or isinstance(default, Mapping)
            or hasattr(default, "__dataclass_fields__")
        ):
            continue
        if isinstance(default, bool):
            ok = isinstance(value, bool)
            kind = "true or false"
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
            kind = "a whole number"
        elif isinstance(default, float):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            kind = "a number"
        else:
            ok, kind = isinstance(value, type(default)), type(default).__name__
        if not ok:
            raise ConfigError(f"{where}: {prefix}{name} must be {kind}, not {value!r}.")


def config_from_dict(data: Mapping[str, Any], where: str = "loop settings") -> LoopConfig:
    """Build a :class:`LoopConfig` from a plain dict (as read from TOML/YAML).

    Raises:
        ConfigError: Unknown keys, wrong types or out-of-range values.
    """
    known = {f.name for f in fields(LoopConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}."
        )
    try:
        top = {
            k: v
            for k, v in data.items()
            if k not in ("prices", "routing", "redundancy", "selection")
        }
        _check_types(top, LoopConfig(), "", where)
        selection = data.get("selection", LoopConfig().selection)
        if not isinstance(selection, Mapping):
            raise ConfigError(f"{where}: [selection] must map scorer names to weights.")
        return LoopConfig(
            **top,
            prices=_section(data, "prices", Prices, where),
            routing=_section(data, "routing", Routing, where),
            redundancy=_section(data, "redundancy", Redundancy, where),
            selection={str(k): float(v) for k, v in selection.items()},
        )
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: a value has the wrong type: {exc}.") from exc


def load_config(path: str | os.PathLike[str] | None) -> LoopConfig:
    """Read loop settings from a ``.toml``, ``.yaml`` or ``.yml`` file (None: the defaults).

    Raises:
        ConfigError: Missing or unparsable file, unknown keys, bad values.
    """
    if path is None:
        return LoopConfig()
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"Loop settings file {p} does not exist; pass a .toml or .yaml file.")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix.lower() == ".toml":
            data: Any = tomllib.loads(text)
        elif p.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            raise ConfigError(f"{p}: loop settings must be a .toml or .yaml file.")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{p} is not valid {p.suffix.lstrip('.').upper()}: {exc}") from exc
    if not isinstance(data, Mapping):
        raise ConfigError(f"{p}: the settings must be a table of keys, not {type(data).__name__}.")
    return config_from_dict(data, where=str(p))
