r"""POIs as items: category pre-labels from names and nearby land use, truth and crowd for them.

A point of interest gets one class of the POI taxonomy (``data/sample/taxonomies/poi.yaml``:
school, hospital, transit, shop, restaurant, place_of_worship, park_facility, public_service).
:func:`poi_prelabels` scores every class with three independent pieces of evidence and
multiplies them (a product of experts, added in log space):

.. math::

    z_c = \log \pi(c \mid u) + \beta\, E_c(\text{name}) + \gamma\, S_c(\text{name}),
    \qquad p_c = (1 - \varepsilon)\, \operatorname{softmax}(z)_c + \varepsilon / K.

1. **Land-use context** :math:`\pi(c \mid u)`. :math:`u` is the land-use label of the parcel the
   POI lies in (``street`` when it lies in no parcel, ``unknown`` when the parcel has no label).
   :data:`CONTEXT_PRIOR` holds a hand-written compatibility table (a POI on an institutional
   parcel leans school/hospital/public_service, on a park parcel park_facility, a point on the
   street is most likely a transit stop). Labeled POIs update it as a Dirichlet posterior:
   :math:`\pi(c \mid u) \propto s\,\pi_0(c \mid u) + n_{u,c}` with :math:`s` =
   ``context_strength``.
2. **Keyword rules** :math:`E_c`. :func:`poi_keywords` builds per-class keyword weights from the
   taxonomy text (class id, name, definition, examples, edge rules, and the "X is *class*"
   clauses of every counterexample and edge rule, which it routes to the class they name) plus
   :data:`GENERIC_KEYWORDS`, a generic POI vocabulary (OSM-style shop/amenity words, not the
   sample's names). A word's weight for class :math:`c` is its share of mentions:
   :math:`w_c(t) = \min(1, M(t)/2)\, m_c(t) / M(t)` with :math:`M(t) = \sum_{c'} m_{c'}(t)`,
   so a word used by several classes counts for each only in part, and a word mentioned once
   counts half. Two-word phrases ("fire station", "post office") are matched first
   and consume their words. A name shaped like a street intersection ("4th Ave & Elm St") is
   evidence for transit (stops are named after their corner). :math:`E_c = \sum_t w_c(t)`.
3. **Text model** :math:`S_c`, only when some POIs are labeled: a multinomial naive Bayes on
   word and character 3-5-gram features of the names, written as a likelihood ratio against the
   pooled background so a class with no labeled POI gets 0 instead of a penalty:
   :math:`\theta_{cf} = (n_{cf} + \alpha b_f) / (N_c + \alpha)`, :math:`b_f` the pooled feature
   frequency, :math:`S_c = \kappa \cdot \operatorname{mean}_f \log(\theta_{cf} / b_f)` over all
   the name's features (a feature never seen in training has ratio 1). The mean (times
   :math:`\kappa`, the "number of independent features" a name is worth) keeps the strongly
   correlated n-grams from making it overconfident.

Calibration: :math:`\beta`, :math:`\gamma`, :math:`\kappa` are fixed, documented constants (no
per-sample fitting); the :math:`\varepsilon` floor keeps every probability strictly inside
(0, 1) (``p_c ≥ ε/K``, ``p_c ≤ 1 − ε + ε/K``). On the sample (44 POIs) the mean confidence
is close to the accuracy (see the tests and the report of issue 6).

:func:`poi_truth` turns ``truth/pois.csv`` into the simulator's truth frame
(:data:`geolabel.crowd.simulate.TRUTH_COLUMNS`); a POI's difficulty grows as its name says less
about its true class. :func:`poi_crowd` gives the simulated crowd for POI classes, and
:func:`store_poi_prelabels` stores pre-labels in a project's ``predictions`` table.

Example:
    >>> from geolabel.taxonomy import load_taxonomy  # doctest: +SKIP
    >>> tax = load_taxonomy("data/sample/taxonomies/poi.yaml")  # doctest: +SKIP
    >>> frame = poi_prelabels(pois, tax, parcel_labels=consensus)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

import geopandas as gpd
import numpy as np
import pandas as pd

from geolabel.crowd.simulate import TRUTH_COLUMNS, AnnotatorProfile, make_crowd
from geolabel.errors import ColumnError, CRSMismatchError, InputFileError, LabelError
from geolabel.prelabel.metrics import uncertainty
from geolabel.taxonomy import Taxonomy

if TYPE_CHECKING:
    from geolabel.store import Project

__all__ = [
    "CONTEXT_PRIOR",
    "GENERIC_KEYWORDS",
    "POI_TAXONOMY_NAME",
    "poi_crowd",
    "poi_keywords",
    "poi_prelabels",
    "poi_truth",
    "store_poi_prelabels",
]

POI_TAXONOMY_NAME: Final = "poi"
"""Name of the POI taxonomy (``name:`` in ``taxonomies/poi.yaml``)."""

RULE_WEIGHT: Final = 3.0
r""":math:`\beta`: logit bonus per unit of keyword evidence (one unambiguous keyword ≈ ×20)."""
TEXT_WEIGHT: Final = 1.0
r""":math:`\gamma`: weight of the naive-Bayes score."""
TEXT_FEATURES: Final = 3.0
r""":math:`\kappa`: how many independent features one name's mean log-ratio stands for."""
TEXT_ALPHA: Final = 10.0
r""":math:`\alpha`: Dirichlet strength (in feature counts) pulling a class towards the pool."""
CONTEXT_STRENGTH: Final = 5.0
r""":math:`s`: pseudo-count weight of the hand-written land-use prior against labeled POIs."""
FLOOR: Final = 0.02
r""":math:`\varepsilon`: probability mass spread uniformly so no class is ever 0 or 1."""
INTERSECTION_WEIGHT: Final = 2.0
"""Keyword evidence for transit of a name shaped like a street intersection."""
GENERIC_WEIGHT: Final = 2
"""Mentions one generic keyword counts for, against one mention in the taxonomy text."""

_STREET = "street"
_UNKNOWN = "unknown"


def _freeze(table: Mapping[str, Mapping[str, float]]) -> Mapping[str, Mapping[str, float]]:
    return MappingProxyType({k: MappingProxyType(dict(v)) for k, v in table.items()})


CONTEXT_PRIOR: Final[Mapping[str, Mapping[str, float]]] = _freeze(
    {
        "residential": {
            "school": 1.0, "hospital": 0.5, "transit": 0.5, "shop": 1.5, "restaurant": 1.0,
            "place_of_worship": 1.5, "park_facility": 0.5, "public_service": 0.5,
        },
        "commercial": {
            "school": 0.3, "hospital": 0.5, "transit": 0.3, "shop": 4.0, "restaurant": 3.0,
            "place_of_worship": 0.3, "park_facility": 0.1, "public_service": 0.8,
        },
        "mixed_use": {
            "school": 0.5, "hospital": 0.5, "transit": 0.3, "shop": 3.0, "restaurant": 2.5,
            "place_of_worship": 0.5, "park_facility": 0.1, "public_service": 0.6,
        },
        "industrial": {
            "school": 0.2, "hospital": 0.2, "transit": 0.5, "shop": 2.0, "restaurant": 1.0,
            "place_of_worship": 0.2, "park_facility": 0.1, "public_service": 1.0,
        },
        "institutional": {
            "school": 3.0, "hospital": 3.0, "transit": 0.3, "shop": 0.2, "restaurant": 0.2,
            "place_of_worship": 1.0, "park_facility": 0.3, "public_service": 3.0,
        },
        "park": {
            "school": 0.1, "hospital": 0.1, "transit": 0.2, "shop": 0.1, "restaurant": 1.0,
            "place_of_worship": 0.1, "park_facility": 5.0, "public_service": 0.3,
        },
        "water": {
            "school": 0.1, "hospital": 0.1, "transit": 1.0, "shop": 0.2, "restaurant": 0.5,
            "place_of_worship": 0.1, "park_facility": 1.0, "public_service": 0.2,
        },
        "vacant": {
            "school": 0.3, "hospital": 0.3, "transit": 0.5, "shop": 0.5, "restaurant": 0.5,
            "place_of_worship": 0.3, "park_facility": 0.5, "public_service": 0.3,
        },
        "construction": {
            "school": 0.5, "hospital": 0.5, "transit": 0.5, "shop": 0.5, "restaurant": 0.5,
            "place_of_worship": 0.5, "park_facility": 0.3, "public_service": 0.5,
        },
        _STREET: {
            "school": 0.1, "hospital": 0.1, "transit": 5.0, "shop": 0.3, "restaurant": 0.3,
            "place_of_worship": 0.1, "park_facility": 0.3, "public_service": 0.2,
        },
    }
)  # fmt: skip
"""Relative weight of each POI class given the land use of the parcel a POI lies in.

Keys are land-use classes (``street``: the POI lies in no parcel); POI classes missing from a
row, and land uses missing from the table (or ``unknown``), weigh 1 (no information).
"""

GENERIC_KEYWORDS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "school": (
            "school", "elementary", "primary school", "secondary", "middle school", "high school",
            "academy", "college", "university", "nursery", "kindergarten", "preschool", "campus",
            "institute", "montessori", "lyceum", "faculty",
        ),
        "hospital": (
            "hospital", "clinic", "medical", "health", "surgery", "dental", "dentist", "doctor",
            "physician", "infirmary", "urgent care", "nursing", "pediatric", "maternity",
            "hospice", "healthcare", "physiotherapy", "orthopedic", "medical center",
        ),
        "transit": (
            "station", "stop", "bus", "tram", "rail", "railway", "subway", "metro", "ferry",
            "terminal", "platform", "interchange", "transit", "train", "underground",
            "bus stop", "bus station", "train station", "light rail", "park and ride",
        ),
        "shop": (
            "shop", "store", "market", "mart", "supermarket", "grocer", "grocery", "pharmacy",
            "chemist", "drugstore", "bakery", "butcher", "florist", "flower", "hardware",
            "electronics", "book", "bookshop", "bookstore", "boutique", "salon", "barber",
            "hairdresser", "bank", "laundry", "laundromat", "cleaners", "tailor", "optician",
            "optics", "jeweller", "jewelry", "pet", "supplies", "outlet", "mall", "petrol",
            "fuel", "garage", "auto", "motors", "furniture", "toys", "gifts", "liquor", "wine",
            "convenience", "thrift", "emporium", "depot", "gas station", "petrol station",
            "service station", "dry cleaners", "outfitters", "mobile", "computers",
        ),
        "restaurant": (
            "restaurant", "cafe", "coffee", "bistro", "diner", "grill", "kitchen", "pizzeria",
            "pizza", "pub", "bar", "tavern", "eatery", "canteen", "takeaway", "burger", "sushi",
            "noodle", "ramen", "taqueria", "tacos", "cantina", "trattoria", "brasserie",
            "teahouse", "tea room", "bbq", "steakhouse", "wok", "curry", "kebab", "buffet",
            "brewery", "espresso", "chophouse", "deli", "dining", "food", "snack",
        ),
        "place_of_worship": (
            "church", "chapel", "cathedral", "mosque", "masjid", "synagogue", "temple",
            "gurdwara", "shrine", "parish", "abbey", "basilica", "tabernacle", "congregation",
            "kingdom hall", "meeting house", "ministry", "worship", "minster", "mission",
        ),
        "park_facility": (
            "playground", "pavilion", "pitch", "skatepark", "skate park", "skate", "gazebo",
            "bandstand", "toilets", "restroom", "trailhead", "picnic", "sports ground",
            "tennis court", "basketball court", "ball field", "dog park", "splash pad",
            "recreation ground", "park entrance", "park",
        ),
        "public_service": (
            "library", "post office", "police", "precinct", "fire station", "firehouse",
            "fire department", "courthouse", "town hall", "city hall", "council", "municipal",
            "civic", "community center", "community centre", "recycling", "job centre",
            "job center", "dmv", "registry", "embassy", "consulate", "sheriff", "ambulance",
            "government", "public works", "police station",
        ),
    }
)  # fmt: skip
"""Generic POI vocabulary per class id of the POI taxonomy (words and two-word phrases)."""

_STOPWORD_TEXT: Final = """
    a an the and or of in on at to for from by with as is are be been not no its it
    their they that this these those who whose which what when where than then there here
    has have had do does each every own other another any some such only main mainly used
    place places label labels one two three first second new old more most few part e g eg
    ie also inside outside front from whole its often usually sells selling sell offer
    offers offering goods services service public private people similar them"""
_STOPWORDS: Final = frozenset(_STOPWORD_TEXT.split())
_CLAUSE_SPLIT = re.compile(r"[;.]\s+|\.\s*$")
_IS_CLASS = re.compile(r"^(?P<what>.*?)\s+(?:is|are)\s+(?P<neg>not\s+)?(?P<cls>[a-z_]+)\b")
_STREET_SUFFIX = (
    r"(?:st|street|ave|avenue|rd|road|ln|lane|dr|drive|blvd|boulevard|way|pl|place|ct|"
    r"court|pkwy|parkway|hwy|highway|ter|terrace|sq|square)\.?"
)
_INTERSECTION = re.compile(
    rf"^\s*[\w'. -]+?\s{_STREET_SUFFIX}\s*(?:&|and|/|@|at|x)\s*[\w'. -]+?\s{_STREET_SUFFIX}\s*$",
    re.IGNORECASE,
)


# ------------------------------------------------------------------------------ text helpers


def _fold(text: str) -> str:
    """Lower-case ASCII: accents dropped (``Café`` → ``cafe``), apostrophes removed."""
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return ascii_text.lower().replace("'", "").replace("\u2019", "")


def _stem(word: str) -> str:
    """A light English plural stemmer (``churches`` → ``church``, ``surgeries`` → ``surgery``)."""
    if len(word) <= 3 or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


def _tokens(text: str) -> list[str]:
    """Stemmed word tokens of ``text`` (letters and digits), stop words kept."""
    return [_stem(t) for t in re.findall(r"[a-z0-9]+", _fold(text))]


def _terms(tokens: Sequence[str], phrases: Iterable[str]) -> list[str]:
    """Tokens with known two-word phrases joined (``fire station``) and their words consumed."""
    known = set(phrases)
    out: list[str] = []
    i = 0
    while i < len(tokens):
        if i + 1 < len(tokens) and f"{tokens[i]} {tokens[i + 1]}" in known:
            out.append(f"{tokens[i]} {tokens[i + 1]}")
            i += 2
        elif i + 2 < len(tokens) and f"{tokens[i]} {tokens[i + 1]} {tokens[i + 2]}" in known:
            out.append(f"{tokens[i]} {tokens[i + 1]} {tokens[i + 2]}")
            i += 3
        else:
            out.append(tokens[i])
            i += 1
    return out


def _content(tokens: Iterable[str]) -> list[str]:
    return [t for t in tokens if t not in _STOPWORDS and len(t) > 1 and not t.isdigit()]


# ------------------------------------------------------------------------------ keyword rules


def poi_keywords(taxonomy: Taxonomy, *, generic: bool = True) -> dict[str, dict[str, float]]:
    """Per-class keyword weights built from the taxonomy text (and the generic vocabulary).

    Every clause of a class's id, name, definition, examples and edge rules counts one mention
    of its content words for that class; a clause ``"X is <class id>"`` (in any class's
    counterexamples or edge rules) counts X's words for the class it names instead, and
    ``"X is not <class id>"`` counts nothing. With ``generic``, each word or phrase of
    :data:`GENERIC_KEYWORDS` under a class id of ``taxonomy`` adds :data:`GENERIC_WEIGHT`
    mentions. A term's weight for a class is its share of all its mentions, halved for a term
    mentioned only once (an incidental word of one example, like "central" in "The central
    railway station", should not outweigh a class's own vocabulary).

    Args:
        taxonomy: The POI taxonomy.
        generic: Add :data:`GENERIC_KEYWORDS`.

    Returns:
        ``{term: {class id: weight}}``; terms are stemmed words or two/three-word phrases.
    """
    ids = set(taxonomy.class_ids)
    mentions: dict[str, Counter[str]] = defaultdict(Counter)

    def count(text: str, owner: str, *, routed_only: bool = False) -> None:
        for clause in _CLAUSE_SPLIT.split(_fold(text)):
            clause = clause.strip()
            if not clause:
                continue
            match = _IS_CLASS.match(clause)
            if match and match.group("cls") in ids:
                if match.group("neg"):
                    continue
                target, words = match.group("cls"), match.group("what")
            elif routed_only:
                continue
            else:
                target, words = owner, clause
            for term in set(_content(_tokens(words))):
                mentions[term][target] += 1

    for cls in taxonomy.classes:
        for term in set(_content(_tokens(cls.id.replace("_", " ")))):
            mentions[term][cls.id] += 2  # the class's own id names it best
        for text in (cls.name, cls.definition, *cls.examples, *cls.edge_rules):
            count(text, cls.id)
        for text in cls.counterexamples:
            count(text, cls.id, routed_only=True)
    if generic:
        for cid, words in GENERIC_KEYWORDS.items():
            if cid in ids:
                for word in words:
                    term = " ".join(_tokens(word))
                    mentions[term][cid] += GENERIC_WEIGHT
    out: dict[str, dict[str, float]] = {}
    for term, counts in mentions.items():
        total = sum(counts.values())
        strength = min(1.0, total / 2.0)  # a word the text mentions once counts half
        out[term] = {c: strength * n / total for c, n in counts.items()}
    return out


def _rule_evidence(
    name: str, keywords: Mapping[str, Mapping[str, float]], classes: Sequence[str]
) -> np.ndarray:
    """Keyword evidence ``E_c`` of one name (module docstring, step 2)."""
    evidence = np.zeros(len(classes))
    index = {c: k for k, c in enumerate(classes)}
    phrases = [t for t in keywords if " " in t]
    for term in set(_terms(_tokens(name), phrases)):
        for cid, weight in keywords.get(term, {}).items():
            evidence[index[cid]] += weight
    if "transit" in index and _INTERSECTION.match(_fold(name)):
        evidence[index["transit"]] += INTERSECTION_WEIGHT
    return evidence


# ------------------------------------------------------------------------------ text model


def _features(name: str) -> Counter[str]:
    """Word unigrams and character 3-5-grams of a padded, folded name."""
    folded = _fold(name)
    feats: Counter[str] = Counter(f"w:{t}" for t in _tokens(folded))
    padded = f" {' '.join(re.findall(r'[a-z0-9]+', folded))} "
    for n in (3, 4, 5):
        feats.update(f"c:{padded[i : i + n]}" for i in range(len(padded) - n + 1))
    return feats


def _text_scores(
    names: Sequence[str], train_names: Sequence[str], train_labels: Sequence[str],
    classes: Sequence[str],
) -> np.ndarray:  # fmt: skip
    """Naive-Bayes likelihood ratios ``S_c`` against the pooled background (step 3)."""
    scores = np.zeros((len(names), len(classes)))
    if not train_names:
        return scores
    per_class: dict[str, Counter[str]] = defaultdict(Counter)
    pooled: Counter[str] = Counter()
    for name, label in zip(train_names, train_labels, strict=True):
        name_feats = _features(name)
        per_class[label].update(name_feats)
        pooled.update(name_feats)
    total = sum(pooled.values())
    totals = {c: sum(per_class[c].values()) for c in per_class}
    for i, name in enumerate(names):
        all_feats = _features(name)
        feats = [f for f in all_feats if f in pooled]  # Counter iterates distinct features
        if not feats:
            continue
        background = np.array([pooled[f] / total for f in feats])
        for k, cid in enumerate(classes):
            if cid not in per_class:
                continue  # no labeled POI of this class: ratio 1, score 0
            counts = np.array([per_class[cid][f] for f in feats], dtype=np.float64)
            theta = (counts + TEXT_ALPHA * background) / (totals[cid] + TEXT_ALPHA)
            # Unseen features have ratio 1 (log 0) but still count in the mean.
            ratio_sum = float(np.log(theta / background).sum())
            scores[i, k] = TEXT_FEATURES * ratio_sum / len(all_feats)
    return scores


# ------------------------------------------------------------------------------ context


def _poi_ids(pois: pd.DataFrame) -> pd.Series:
    for column in ("poi_id", "item"):
        if column in pois.columns:
            ids = pois[column].astype(str)
            if ids.duplicated().any():
                dup = sorted(set(ids[ids.duplicated()]))[:5]
                raise ColumnError(f"POIs: duplicate {column} values {', '.join(dup)}.")
            return ids
    raise ColumnError(
        "POIs need a 'poi_id' (or 'item') column naming each POI; columns present: "
        f"{', '.join(map(str, pois.columns))}."
    )


def _poi_parcels(pois: gpd.GeoDataFrame, parcels: gpd.GeoDataFrame | None) -> pd.Series | None:
    """The parcel id each POI lies in (NA outside every parcel); None when nothing says."""
    if parcels is None:
        if "parcel_id" not in pois.columns:
            return None
        return pois["parcel_id"].astype("object").where(pois["parcel_id"].notna(), pd.NA)
    if "parcel_id" not in parcels.columns:
        raise ColumnError(
            "parcels need a 'parcel_id' column; columns present: "
            f"{', '.join(map(str, parcels.columns))}."
        )
    if pois.crs is None or parcels.crs is None or not pois.crs.equals(parcels.crs):
        raise CRSMismatchError(
            f"POIs ({pois.crs}) and parcels ({parcels.crs}) are not in the same CRS; "
            "reproject one with GeoDataFrame.to_crs (a project's layers share its CRS)."
        )
    points = gpd.GeoDataFrame({"_row": np.arange(len(pois))}, geometry=pois.geometry.values)
    points = points.set_crs(pois.crs)
    joined = gpd.sjoin(points, parcels[["parcel_id", "geometry"]], how="left", predicate="within")
    first = joined.drop_duplicates("_row").sort_values("_row")
    values = first["parcel_id"].astype("object").where(first["parcel_id"].notna(), pd.NA)
    return pd.Series(values.to_numpy(), index=pois.index, dtype="object")


def _contexts(parcel_ids: pd.Series | None, parcel_labels: pd.Series | None, n: int) -> list[str]:
    if parcel_ids is None:
        return [_UNKNOWN] * n
    labels: Mapping[str, str] = {}
    if parcel_labels is not None:
        labels = {str(k): str(v) for k, v in parcel_labels.dropna().items()}
    out = []
    for pid in parcel_ids:
        if pid is None or pid is pd.NA or (isinstance(pid, float) and math.isnan(pid)):
            out.append(_STREET)
        else:
            out.append(labels.get(str(pid), _UNKNOWN))
    return out


def _context_logprior(
    contexts: Sequence[str], classes: Sequence[str], train_contexts: Sequence[str],
    train_labels: Sequence[str],
) -> np.ndarray:  # fmt: skip
    """``log π(c | u)`` per POI: hand prior as pseudo-counts plus labeled counts (step 1)."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for ctx, label in zip(train_contexts, train_labels, strict=True):
        counts[ctx][label] += 1
    cache: dict[str, np.ndarray] = {}
    out = np.zeros((len(contexts), len(classes)))
    for i, ctx in enumerate(contexts):
        if ctx not in cache:
            row = CONTEXT_PRIOR.get(ctx, {})
            base = np.array([row.get(c, 1.0) for c in classes], dtype=np.float64)
            base /= base.sum()
            seen = np.array([counts[ctx][c] for c in classes], dtype=np.float64)
            post = CONTEXT_STRENGTH * base + seen
            cache[ctx] = np.log(post / post.sum())
        out[i] = cache[ctx]
    return out


# ------------------------------------------------------------------------------ pre-labels


def poi_prelabels(
    pois: gpd.GeoDataFrame,
    taxonomy: Taxonomy,
    *,
    parcels: gpd.GeoDataFrame | None = None,
    parcel_labels: pd.Series | None = None,
    labeled: pd.Series | None = None,
    generic_keywords: bool = True,
) -> pd.DataFrame:
    """Pre-label each POI's category from its name and the land use around it.

    The model is the module docstring's: land-use prior × keyword rules × (with ``labeled``)
    a naive-Bayes text model, smoothed so no probability is 0 or 1.

    Args:
        pois: POI points with ``poi_id`` (or ``item``) and ``name``; ``parcel_id`` is used
            when ``parcels`` is not given (a project's ``pois`` layer has it; blank means the
            POI lies in no parcel). With neither, land use is ``unknown`` for every POI.
        taxonomy: The POI taxonomy (classes and their text).
        parcels: Parcel polygons with ``parcel_id``, in the CRS of ``pois``; each POI's parcel
            is the one it lies within.
        parcel_labels: Land-use label per parcel id (consensus, or parcel pre-labels);
            parcels without one count as ``unknown`` land use.
        labeled: Known category per POI id (the POIs labeled so far); they train the text
            model and the land-use prior. Their own rows are still predicted (not copied).
        generic_keywords: Use :data:`GENERIC_KEYWORDS` besides the taxonomy text.

    Returns:
        One row per POI, in input order: ``item``, ``label``, ``confidence``, ``margin``,
        ``entropy`` (nats), then ``p_<class>`` per taxonomy class in taxonomy order.

    Raises:
        ColumnError: ``pois`` lacks an id or ``name`` column, or ids repeat.
        LabelError: A ``labeled`` POI is unknown or has a label outside the taxonomy.
        CRSMismatchError: ``pois`` and ``parcels`` are in different CRSs.
    """
    ids = _poi_ids(pois)
    if "name" not in pois.columns:
        raise ColumnError(
            "POIs need a 'name' column to pre-label their category; columns present: "
            f"{', '.join(map(str, pois.columns))}."
        )
    classes = list(taxonomy.class_ids)
    names = ["" if pd.isna(n) else str(n) for n in pois["name"]]
    contexts = _contexts(_poi_parcels(pois, parcels), parcel_labels, len(pois))
    by_id = dict(zip(ids, range(len(ids)), strict=True))
    train_rows: list[int] = []
    train_labels: list[str] = []
    if labeled is not None:
        known = labeled.dropna()
        unknown = [str(k) for k in known.index if str(k) not in by_id]
        if unknown:
            raise LabelError(
                f"labeled POIs {', '.join(unknown[:5])} are not among the POIs given; pass "
                "labels indexed by poi_id."
            )
        bad = sorted({str(v) for v in known if str(v) not in classes})
        if bad:
            raise LabelError(
                f"labeled POI categories {', '.join(bad)} are not classes of "
                f"{taxonomy.label} ({', '.join(classes)})."
            )
        train_rows = [by_id[str(k)] for k in known.index]
        train_labels = [str(v) for v in known]
    keywords = poi_keywords(taxonomy, generic=generic_keywords)
    logits = _context_logprior(contexts, classes, [contexts[r] for r in train_rows], train_labels)
    logits += (
        RULE_WEIGHT * np.vstack([_rule_evidence(n, keywords, classes) for n in names])
        if names
        else 0.0
    )
    logits += TEXT_WEIGHT * _text_scores(
        names, [names[r] for r in train_rows], train_labels, classes
    )
    probas = _softmax(logits) if len(names) else np.zeros((0, len(classes)))
    probas = (1.0 - FLOOR) * probas + FLOOR / len(classes)
    measures = (
        uncertainty(probas)
        if len(names)
        else {k: np.zeros(0) for k in ("confidence", "margin", "entropy")}
    )
    frame = pd.DataFrame(
        {
            "item": ids.to_numpy(),
            "label": [classes[k] for k in probas.argmax(axis=1)] if len(names) else [],
            "confidence": measures["confidence"],
            "margin": measures["margin"],
            "entropy": measures["entropy"],
        }
    )
    for k, cid in enumerate(classes):
        frame[f"p_{cid}"] = probas[:, k]
    return frame


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------------------ truth and crowd


def poi_truth(sample_dir: str | os.PathLike[str], taxonomy: Taxonomy | None = None) -> pd.DataFrame:
    """Read ``truth/pois.csv`` of a sample folder as the crowd simulator's truth frame.

    Difficulty grows as the name says less about the true class: with ``E`` the keyword
    evidence of the name (taxonomy text only, no generic vocabulary, no context) and
    ``q = softmax(β E)`` over the classes, difficulty ``= 1 − q[true]`` rescaled from
    ``[0, 1 − 1/K]`` to ``[0.05, 0.8]``: a name naming its class (``… Primary School``) is
    easy, an uninformative one (``Golden Dragon``) or a misleading one is hard.

    Args:
        sample_dir: A folder written by ``geolabel sample`` (``truth/pois.csv`` and
            ``taxonomies/poi.yaml``).
        taxonomy: The POI taxonomy; ``taxonomies/poi.yaml`` of the folder when None.

    Returns:
        Columns ``item``, ``label``, ``alt_label`` (None), ``ambiguity`` (``"none"``),
        ``difficulty`` (see :data:`geolabel.crowd.simulate.TRUTH_COLUMNS`) and ``name``.

    Raises:
        InputFileError: A file is missing.
        ColumnError: ``pois.csv`` lacks ``poi_id``, ``name`` or ``category``.
    """
    from geolabel.taxonomy import load_taxonomy

    root = Path(sample_dir)
    path = root / "truth" / "pois.csv"
    if not path.is_file():
        raise InputFileError(
            f"{path} not found; point at a folder written by `geolabel sample` (it has "
            "truth/pois.csv)."
        )
    if taxonomy is None:
        tax_path = root / "taxonomies" / "poi.yaml"
        if not tax_path.is_file():
            raise InputFileError(f"{tax_path} not found; pass the POI taxonomy explicitly.")
        taxonomy = load_taxonomy(tax_path)
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("poi_id", "name", "category") if c not in table.columns]
    if missing:
        raise ColumnError(
            f"{path}: missing column(s) {', '.join(missing)}; columns present: "
            f"{', '.join(table.columns)}."
        )
    classes = list(taxonomy.class_ids)
    bad = sorted(set(table["category"]) - set(classes))
    if bad:
        raise LabelError(f"{path}: categories {', '.join(bad)} are not in {taxonomy.label}.")
    keywords = poi_keywords(taxonomy, generic=False)
    k = len(classes)
    difficulty = []
    for name, label in zip(table["name"], table["category"], strict=True):
        q = _softmax(RULE_WEIGHT * _rule_evidence(name, keywords, classes)[None, :])[0]
        miss = (1.0 - q[classes.index(label)]) / (1.0 - 1.0 / k)
        difficulty.append(round(0.05 + 0.75 * min(max(miss, 0.0), 1.0), 4))
    frame = pd.DataFrame(
        {
            "item": table["poi_id"],
            "label": table["category"],
            "alt_label": None,
            "ambiguity": "none",
            "difficulty": difficulty,
            "name": table["name"],
        }
    )
    return frame[[*TRUTH_COLUMNS, "name"]]


def poi_crowd(
    classes: Sequence[str], seed: int = 0, *, n_annotators: int = 30, n_experts: int = 3
) -> list[AnnotatorProfile]:
    """The simulated crowd for POI classes (:func:`geolabel.crowd.simulate.make_crowd`).

    Annotator ids are those of the land-use crowd (``crowd-001``…, ``expert-01``…): the same
    people label POIs, with skills drawn for the POI classes.

    Args:
        classes: POI class ids (``taxonomy.class_ids``).
        seed: Seed of the crowd.
        n_annotators: Crowd workers (spammers included).
        n_experts: Experts.

    Returns:
        Annotator profiles, crowd first.
    """
    return make_crowd(list(classes), n_annotators=n_annotators, n_experts=n_experts, seed=seed)


# ------------------------------------------------------------------------------ store


def store_poi_prelabels(
    project: Project,
    frame: pd.DataFrame,
    model_version: str,
    *,
    taxonomy: Taxonomy | None = None,
) -> int:
    """Store POI pre-labels as predictions of the POI taxonomy (registered if missing).

    The taxonomy version is added with :meth:`Project.add_taxonomy_version`, which is
    idempotent (identical content is stored once; different content under the same version is
    refused). Re-storing the same ``model_version`` adds nothing.

    Args:
        project: An open project whose items include the POIs (kind ``poi``).
        frame: Output of :func:`poi_prelabels`.
        model_version: Version tag of this pre-labeler run (``"poi-rules.v1+r3"``).
        taxonomy: The POI taxonomy the frame was made with; when None, the latest version of
            the project's ``poi`` taxonomy (it must be stored already).

    Returns:
        Number of predictions added.

    Raises:
        ColumnError: ``frame`` lacks ``item``/``label`` or a ``p_<class>`` column.
        StoreError: A POI is not an item of the project, or no taxonomy is given and none
            named ``poi`` is stored.
    """
    if taxonomy is None:
        taxonomy = project.current_taxonomy(POI_TAXONOMY_NAME)
    missing = [
        c for c in ("item", "label", "confidence", *(f"p_{c}" for c in taxonomy.class_ids))
        if c not in frame.columns
    ]  # fmt: skip
    if missing:
        raise ColumnError(
            f"store_poi_prelabels: frame lacks {', '.join(missing)}; pass the output of "
            "poi_prelabels made with the same taxonomy."
        )
    project.add_taxonomy_version(
        taxonomy.name, taxonomy.version, taxonomy.to_yaml(), taxonomy.sha256
    )
    probas = [{c: float(row[f"p_{c}"]) for c in taxonomy.class_ids} for _, row in frame.iterrows()]
    rows = pd.DataFrame(
        {
            "item": frame["item"].astype(str),
            "label": frame["label"].astype(str),
            "confidence": frame["confidence"].astype(float),
            "probas": probas,
        }
    )
    return project.add_predictions(
        rows,
        model_version=model_version,
        taxonomy_name=taxonomy.name,
        taxonomy_version=taxonomy.version,
        allowed_labels=taxonomy.class_ids,
    )
