"""Layout of the sample city: streets, blocks, parcels, land use, ambiguity, POIs and districts.

The city is laid out in local metres (x east, y north, origin at the south-west corner of the
scene) and moved to its projected CRS only when written. Everything is drawn from one
``numpy.random.Generator`` seeded by :class:`CityConfig.seed`, so a seed gives the same city.

Layout, in the order it is built:

1. **Street grid.** North–south avenues ("1st Avenue", "2nd Avenue"...) and east–west streets
   named after trees ("Oak Street", "Elm Road"...). Road centre lines sit on the scene edges and at
   random spacings in between, scaled so that the grid fills the scene exactly; one avenue near the
   middle is the wide main avenue. Blocks are what lies between roads.
2. **Districts.** The east–west street nearest the middle splits the city into ``Northgate``
   (north) and ``Riverside`` (south). The scene renderer images the two differently (haze,
   brightness and season), so "new region" routing and domain shift are real.
3. **Zoning of blocks.** Blocks along the main avenue are downtown (commercial), a corner of
   Riverside is industrial, two blocks are parks (one with a pond), one is a reservoir, a few are
   institutional (schools, a hospital), the rest residential.
4. **Parcels.** A block is cut into a north row (fronting the street north of it) and a south row;
   rows are cut into lots whose widths depend on the zone. Whole-block uses (parks, schools) are
   one parcel. House numbers follow the US grid: ``100 × (index of the avenue to the west) + 2k``,
   odd on the north side of a street. APNs are ``BOOK-BLOCK-LOT`` (book per district), so the
   notices' "APN 412-007-003" and "Block 7, Lot 3" name the same parcel.
5. **Land use and ambiguity (truth).** Each parcel takes its zone's class; some become vacant or
   construction sites. Planted on purpose: a block of ``mixed_use`` parcels (shops under flats)
   next to downtown — a class taxonomy v1 lacks — and two small clusters of genuinely borderline
   parcels (houses converted to offices: residential ↔ commercial; cleared lots:
   vacant ↔ construction). Their ``difficulty`` is high, and the Riverside district is harder
   overall.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import LineString, Point, Polygon, box
from shapely.geometry.base import BaseGeometry

__all__ = [
    "AMBIGUITY_KINDS",
    "LAND_USE_CODES",
    "City",
    "CityConfig",
    "build_city",
]

#: Land-use classes of the truth, with the codes the truth mask uses. ``mixed_use`` is the class
#: taxonomy v1 deliberately lacks; ``road`` is pixel-only.
LAND_USE_CODES: dict[str, int] = {
    "residential": 1,
    "commercial": 2,
    "industrial": 3,
    "institutional": 4,
    "park": 5,
    "water": 6,
    "vacant": 7,
    "construction": 8,
    "road": 9,
    "mixed_use": 10,
}

AMBIGUITY_KINDS = ("none", "mixed_use", "borderline")

_TREE_NAMES = (
    "Oak",
    "Elm",
    "Maple",
    "Pine",
    "Cedar",
    "Birch",
    "Walnut",
    "Chestnut",
    "Willow",
    "Spruce",
    "Ash",
    "Poplar",
    "Hickory",
    "Sycamore",
    "Magnolia",
    "Laurel",
    "Alder",
    "Juniper",
    "Aspen",
    "Cypress",
    "Hazel",
    "Linden",
    "Redwood",
    "Sequoia",
    "Hemlock",
    "Larch",
    "Holly",
    "Rowan",
    "Beech",
    "Mulberry",
)
_STREET_SUFFIXES = ("Street", "Street", "Road", "Street", "Lane", "Street", "Drive", "Street")
_ZONING_BY_USE = {
    "residential": ("R-1", "R-2", "R-2", "R-3"),
    "commercial": ("C-1", "C-2", "C-2"),
    "mixed_use": ("C-2", "R-3"),
    "industrial": ("M-1", "M-2"),
    "institutional": ("P",),
    "park": ("OS",),
    "water": ("OS",),
    "vacant": ("R-2", "C-1", "R-1"),
    "construction": ("R-3", "C-2", "MU-3"),
}
_DISTRICTS = ("Northgate", "Riverside")
_APN_BOOK = {"Northgate": 412, "Riverside": 415}


@dataclass(frozen=True, slots=True)
class CityConfig:
    """Parameters of a generated city.

    Attributes:
        size_px: Width and height of the scene in pixels (the city is square).
        seed: Seed of the random generator; the same seed gives the same city.
        pixel_size_m: Ground sampling distance in metres.
        crs: Projected CRS of every output (a UTM zone, metres).
        origin: Easting and northing of the scene's south-west corner in ``crs``.
    """

    size_px: int = 1024
    seed: int = 0
    pixel_size_m: float = 0.5
    crs: str = "EPSG:32610"
    origin: tuple[float, float] = (551_000.0, 4_182_000.0)

    def __post_init__(self) -> None:
        if self.size_px < 256 or self.size_px % 64:
            raise ValueError(
                f"size_px={self.size_px}: the sample city needs at least 256 px and a multiple"
                " of 64 (e.g. 1024 or 2048)."
            )
        if self.pixel_size_m <= 0:
            raise ValueError(f"pixel_size_m must be positive, got {self.pixel_size_m}.")

    @property
    def extent_m(self) -> float:
        """Side of the square city in metres."""
        return self.size_px * self.pixel_size_m


@dataclass(frozen=True, slots=True)
class RenderObject:
    """One thing painted on the scene: a shape, its material and how it looks.

    Attributes:
        geometry: Shape in local metres.
        material: Material name (a key of ``geolabel.synth.scene.MATERIALS``).
        gain: Brightness multiplier of this object (objects of one material differ a little).
        height_m: Height above ground; objects taller than 0 cast a shadow.
        z: Paint order: higher is painted later (on top); equal z keeps list order.
    """

    geometry: BaseGeometry
    material: str
    gain: float = 1.0
    height_m: float = 0.0
    z: int = 0


@dataclass
class City:
    """A generated city in local metres, ready to be rendered and written.

    Attributes:
        config: The parameters it was built with.
        streets: One row per street: ``name``, ``orientation`` (``ns``/``ew``), ``order``,
            ``width_m`` and a centre line.
        parcels: One row per parcel with public attributes (id, APN, address...) and geometry.
        truth: One row per parcel with the true land use, ambiguity, alternative label,
            difficulty and zoning; never read by the pipeline except to score itself.
        districts: District polygons.
        pois: Points of interest with ``poi_id``, ``name``, ``category`` (truth) and geometry.
        objects: What the renderer paints, bottom to top.
        roads: Road surface polygons (including sidewalks) in local metres.
    """

    config: CityConfig
    streets: gpd.GeoDataFrame
    parcels: gpd.GeoDataFrame
    truth: pd.DataFrame
    districts: gpd.GeoDataFrame
    pois: gpd.GeoDataFrame
    objects: list[RenderObject] = field(default_factory=list)
    roads: list[BaseGeometry] = field(default_factory=list)


def _ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"


def _street_names(count: int) -> list[str]:
    names = []
    for k in range(count):
        tree = _TREE_NAMES[k % len(_TREE_NAMES)]
        suffix = _STREET_SUFFIXES[k % len(_STREET_SUFFIXES)]
        prefix = "" if k < len(_TREE_NAMES) else ("West " if (k // len(_TREE_NAMES)) % 2 else "")
        extra = "" if k < 2 * len(_TREE_NAMES) else f" {k // len(_TREE_NAMES)}"
        names.append(f"{prefix}{tree}{extra} {suffix}")
    return names


def _grid_lines(extent: float, mean_spacing: float, rng: np.random.Generator) -> np.ndarray:
    """Road centre positions from 0 to ``extent`` at random spacings that fill it exactly."""
    n = max(2, round(extent / mean_spacing))
    spacing = rng.uniform(0.85, 1.15, size=n)
    spacing *= extent / spacing.sum()
    return np.concatenate([[0.0], np.cumsum(spacing)])


def _split_widths(total: float, lo: float, hi: float, rng: np.random.Generator) -> list[float]:
    """Cut ``total`` metres into lot widths drawn from [lo, hi]; no sliver lots."""
    widths: list[float] = []
    left = total
    while left > hi:
        w = float(rng.uniform(lo, hi))
        if left - w < lo:
            break
        widths.append(w)
        left -= w
    widths.append(left)
    return widths


@dataclass
class _Parcel:
    """A parcel while the city is being built (internal)."""

    geometry: Polygon
    zone: str
    district: str
    block_no: int
    lot: int
    street: str
    north_side: bool
    column: int
    row: int
    cross_from: str
    cross_to: str
    corner: str | None
    land_use: str = ""
    ambiguity: str = "none"
    alt_label: str | None = None
    house_number: int = 0
    attrs: dict[str, Any] = field(default_factory=dict)


def _assign_zones(
    nx: int, ny: int, main_col: int, split_row: int, rng: np.random.Generator
) -> np.ndarray:
    """Zone of every block (column, row), rows counted from the north."""
    zones = np.full((nx, ny), "residential", dtype=object)
    # Downtown along the main avenue: the blocks on both sides of it.
    for col in (main_col - 1, main_col):
        for row in range(ny):
            if 0 <= col < nx:
                zones[col, row] = "commercial"
    # Industrial: the south-east corner of Riverside.
    for col in range(max(main_col + 1, nx - 2), nx):
        for row in range(max(split_row + 1, ny - 2), ny):
            zones[col, row] = "industrial"
    free = [
        (c, r)
        for c in range(nx)
        for r in range(ny)
        if zones[c, r] == "residential" and abs(c - main_col) > 1
    ]
    north = [b for b in free if b[1] < split_row]
    south = [b for b in free if b[1] >= split_row]

    def take(pool: list[tuple[int, int]], zone: str) -> None:
        if not pool:
            return
        k = int(rng.integers(len(pool)))
        c, r = pool.pop(k)
        zones[c, r] = zone

    take(north, "park_pond")
    take(north, "school")
    take(south, "park")
    take(south, "hospital")
    take(south, "reservoir")
    take(south, "school")
    return zones


def build_city(config: CityConfig | None = None) -> City:
    """Lay out a sample city.

    Args:
        config: Size, seed and georeference; defaults to the bundled sample's.

    Returns:
        The city in local metres, with parcels, truth, streets, districts, POIs and the objects
        the renderer paints.
    """
    config = config or CityConfig()
    rng = np.random.default_rng(config.seed)
    extent = config.extent_m
    road_w, main_w = 12.0, 18.0

    xs = _grid_lines(extent, 95.0, rng)  # avenue centre lines, west to east
    ys_from_north = _grid_lines(extent, 68.0, rng)  # street centre lines, north to south
    ys = extent - ys_from_north
    nx, ny = len(xs) - 1, len(ys) - 1
    main_idx = len(xs) // 2  # the wide main avenue
    avenue_names = [_ordinal(i + 1) + " Avenue" for i in range(len(xs))]
    street_names = _street_names(len(ys))
    avenue_w = [main_w if i == main_idx else road_w for i in range(len(xs))]
    split_row = ny // 2  # blocks with row < split_row are in Northgate

    streets_rows = []
    roads: list[BaseGeometry] = []
    for i, x in enumerate(xs):
        streets_rows.append(
            {
                "name": avenue_names[i],
                "orientation": "ns",
                "order": i,
                "width_m": avenue_w[i],
                "geometry": LineString([(x, 0.0), (x, extent)]),
            }
        )
        roads.append(box(x - avenue_w[i] / 2, 0, x + avenue_w[i] / 2, extent))
    for j, y in enumerate(ys):
        streets_rows.append(
            {
                "name": street_names[j],
                "orientation": "ew",
                "order": j,
                "width_m": road_w,
                "geometry": LineString([(0.0, y), (extent, y)]),
            }
        )
        roads.append(box(0, y - road_w / 2, extent, y + road_w / 2))

    zones = _assign_zones(nx, ny, main_idx, split_row, rng)
    parcels: list[_Parcel] = []
    block_no = 0
    for row in range(ny):
        for col in range(nx):
            block_no += 1
            x0 = xs[col] + avenue_w[col] / 2
            x1 = xs[col + 1] - avenue_w[col + 1] / 2
            y_top = ys[row] - road_w / 2
            y_bot = ys[row + 1] + road_w / 2
            district = _DISTRICTS[0] if row < split_row else _DISTRICTS[1]
            zone = str(zones[col, row])
            common: dict[str, Any] = {
                "district": district,
                "block_no": block_no,
                "column": col,
                "row": row,
                "cross_from": avenue_names[col],
                "cross_to": avenue_names[col + 1],
            }
            if zone in ("park", "park_pond", "school", "hospital", "reservoir"):
                geom = box(x0, y_bot, x1, y_top)
                if zone == "park_pond":
                    # The pond is a parcel of its own in the east part of the park block.
                    cut = x0 + (x1 - x0) * 0.62
                    parcels.append(
                        _Parcel(
                            box(x0, y_bot, cut, y_top),
                            "park",
                            street=street_names[row],
                            north_side=False,
                            lot=1,
                            corner=avenue_names[col],
                            **common,
                        )
                    )
                    parcels.append(
                        _Parcel(
                            box(cut, y_bot, x1, y_top),
                            "water",
                            street=street_names[row],
                            north_side=False,
                            lot=2,
                            corner=avenue_names[col + 1],
                            **common,
                        )
                    )
                else:
                    use = {"reservoir": "water"}.get(zone, zone)
                    parcels.append(
                        _Parcel(
                            geom,
                            use,
                            street=street_names[row],
                            north_side=False,
                            lot=1,
                            corner=avenue_names[col],
                            **common,
                        )
                    )
                continue
            y_mid = (y_top + y_bot) / 2
            lot_range = {
                "residential": (13.0, 20.0),
                "commercial": (18.0, 32.0),
                "industrial": (38.0, 70.0),
            }[zone]
            lot = 0
            for north_side, (ya, yb), street in (
                (False, (y_mid, y_top), street_names[row]),  # south side of the street to the north
                (
                    True,
                    (y_bot, y_mid),
                    street_names[row + 1],
                ),  # north side of the street to the south
            ):
                widths = _split_widths(x1 - x0, *lot_range, rng)
                xa = x0
                for k, w in enumerate(widths):
                    lot += 1
                    corner = (
                        avenue_names[col]
                        if k == 0
                        else avenue_names[col + 1]
                        if k == len(widths) - 1
                        else None
                    )
                    p = _Parcel(
                        box(xa, ya, xa + w, yb),
                        zone,
                        street=street,
                        north_side=north_side,
                        lot=lot,
                        corner=corner,
                        **common,
                    )
                    p.house_number = 100 * (col + 1) + 2 * k + (1 if north_side else 0) + 2
                    parcels.append(p)
                    xa += w
    for p in parcels:
        if p.house_number == 0:  # whole-block uses: numbered by lot along their street
            p.house_number = 100 * (p.column + 1) + 2 * (p.lot - 1) + 2
        p.land_use = {"school": "institutional", "hospital": "institutional"}.get(p.zone, p.zone)
        p.attrs["facility"] = p.zone if p.zone in ("school", "hospital") else None

    _plant_ambiguity(parcels, main_idx, split_row, rng)
    _scatter_vacant_and_construction(parcels, rng)

    from geolabel.synth.layout import paint_city  # local import: layout detail lives apart

    objects = paint_city(parcels, roads, streets_rows, xs, ys, avenue_w, road_w, rng)
    return _assemble(
        config,
        parcels,
        streets_rows,
        roads,
        objects,
        xs,
        ys,
        avenue_names,
        street_names,
        split_row,
        avenue_w,
        rng,
    )


def _plant_ambiguity(
    parcels: list[_Parcel], main_idx: int, split_row: int, rng: np.random.Generator
) -> None:
    """Plant the mixed-use block and the two borderline clusters."""
    by_block: dict[int, list[_Parcel]] = {}
    for p in parcels:
        by_block.setdefault(p.block_no, []).append(p)

    def residential_block(col: int, north: bool) -> list[_Parcel] | None:
        cands = [
            ps
            for ps in by_block.values()
            if ps[0].column == col
            and (ps[0].row < split_row) == north
            and all(q.land_use == "residential" for q in ps)
            and len(ps) >= 6
        ]
        if not cands:
            return None
        return cands[int(rng.integers(len(cands)))]

    # Mixed use: a whole residential block next to downtown in Northgate (east side first).
    for col in (main_idx + 1, main_idx - 2, main_idx + 2, main_idx - 3):
        block = residential_block(col, north=True)
        if block:
            for p in block:
                p.land_use, p.ambiguity = "mixed_use", "mixed_use"
                p.alt_label = None
            break
    # Houses converted to offices (residential, or commercial?) in Riverside, next to downtown.
    for col in (main_idx - 2, main_idx + 1, main_idx - 3, main_idx + 2):
        block = residential_block(col, north=False)
        if block:
            side = [p for p in block if not p.north_side][:5]
            for p in side:
                p.ambiguity = "borderline"
                p.attrs["converted"] = True
                if rng.random() < 0.5:
                    p.land_use, p.alt_label = "residential", "commercial"
                else:
                    p.land_use, p.alt_label = "commercial", "residential"
            break
    # Cleared lots (vacant, or construction?) in a Northgate residential block away from downtown.
    for col in (0, 1, main_idx + 3, main_idx - 4):
        block = residential_block(col, north=True)
        if block and not any(p.ambiguity != "none" for p in block):
            side = [p for p in block if p.north_side][:4]
            for k, p in enumerate(side):
                p.ambiguity = "borderline"
                p.attrs["cleared"] = True
                if k % 2 == 0:
                    p.land_use, p.alt_label = "vacant", "construction"
                else:
                    p.land_use, p.alt_label = "construction", "vacant"
            break


def _scatter_vacant_and_construction(parcels: list[_Parcel], rng: np.random.Generator) -> None:
    """Turn some ordinary lots into vacant lots and construction sites."""
    for p in parcels:
        if p.ambiguity != "none" or p.zone not in ("residential", "commercial", "industrial"):
            continue
        u = rng.random()
        if u < 0.045:
            p.land_use = "vacant"
        elif u < 0.09:
            p.land_use = "construction"


def _apn(p: _Parcel) -> str:
    return f"{_APN_BOOK[p.district]:03d}-{p.block_no:03d}-{p.lot:03d}"


def _difficulty(p: _Parcel, rng: np.random.Generator) -> float:
    d = 0.08 if p.district == "Northgate" else 0.3
    if p.land_use in ("vacant", "construction"):
        d += 0.12
    if p.geometry.area < 350:
        d += 0.05
    if p.ambiguity == "mixed_use":
        d = 0.75
    elif p.ambiguity == "borderline":
        d = 0.65
    return float(np.clip(d + rng.normal(0, 0.03), 0.0, 1.0))


def _assemble(
    config: CityConfig,
    parcels: list[_Parcel],
    streets_rows: list[dict[str, Any]],
    roads: list[BaseGeometry],
    objects: list[RenderObject],
    xs: np.ndarray,
    ys: np.ndarray,
    avenue_names: list[str],
    street_names: list[str],
    split_row: int,
    avenue_w: list[float],
    rng: np.random.Generator,
) -> City:
    """Collect the internal records into typed frames."""
    crs = config.crs
    rows, truth_rows = [], []
    for k, p in enumerate(parcels, start=1):
        pid = f"P{k:04d}"
        p.attrs["parcel_id"] = pid
        address = f"{p.house_number} {p.street}"
        rows.append(
            {
                "parcel_id": pid,
                "apn": _apn(p),
                "address": address,
                "house_number": p.house_number,
                "street": p.street,
                "block": p.block_no,
                "lot": p.lot,
                "cross_from": p.cross_from,
                "cross_to": p.cross_to,
                "corner": p.corner,
                "district": p.district,
                "geometry": p.geometry,
            }
        )
        zoning_choices = _ZONING_BY_USE[p.land_use]
        truth_rows.append(
            {
                "parcel_id": pid,
                "land_use": p.land_use,
                "ambiguity": p.ambiguity,
                "alt_label": p.alt_label,
                "difficulty": round(_difficulty(p, rng), 3),
                "district": p.district,
                "zoning": zoning_choices[int(rng.integers(len(zoning_choices)))],
            }
        )
    parcels_gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs=None)
    truth = pd.DataFrame(truth_rows)
    streets = gpd.GeoDataFrame(streets_rows, geometry="geometry", crs=None)
    extent = config.extent_m
    y_split = ys[split_row]
    districts = gpd.GeoDataFrame(
        {
            "district": list(_DISTRICTS),
            "imaged": ["2025-06-14 clear, early summer", "2025-09-02 hazy, late summer"],
        },
        geometry=[box(0, y_split, extent, extent), box(0, 0, extent, y_split)],
        crs=None,
    )
    pois = _make_pois(parcels, xs, ys, avenue_names, street_names, avenue_w, rng)

    def place(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        gdf = gdf.copy()
        gdf["geometry"] = gdf.geometry.translate(*config.origin)
        return gdf.set_crs(crs)

    return City(
        config=config,
        streets=place(streets),
        parcels=place(parcels_gdf),
        truth=truth,
        districts=place(districts),
        pois=place(pois),
        objects=objects,
        roads=roads,
    )


_SCHOOL_NAMES = (
    "Oakwood Elementary School",
    "Riverside High School",
    "Lincoln Middle School",
    "Maple Grove Academy",
    "Cedar Park Elementary School",
)
_HOSPITALS = ("Riverside General Hospital", "St. Mary's Medical Center")
_SHOPS = (
    "Corner Market",
    "Main Street Pharmacy",
    "Hardware Depot",
    "Green Grocer",
    "Book Nook",
    "City Bakery",
    "Fresh Mart",
    "Bright Optics",
    "Tailor & Co.",
    "Sunrise Florist",
    "Metro Electronics",
    "Pet Supplies Plus",
)
_RESTAURANTS = (
    "Bella Pizzeria",
    "Golden Dragon",
    "Blue Door Cafe",
    "Taqueria El Sol",
    "The Daily Grind",
    "Harbor Diner",
    "Saffron Kitchen",
    "Noodle House",
)
_WORSHIP = ("St. Paul's Church", "Grace Community Church", "Beth Shalom Synagogue")
_SERVICES = (
    "Fire Station No. 3",
    "Northgate Public Library",
    "Riverside Post Office",
    "Police Precinct 7",
)


def _make_pois(
    parcels: list[_Parcel],
    xs: np.ndarray,
    ys: np.ndarray,
    avenue_names: list[str],
    street_names: list[str],
    avenue_w: list[float],
    rng: np.random.Generator,
) -> gpd.GeoDataFrame:
    """Points of interest: facilities in their parcels, shops, transit stops at intersections."""
    rows: list[dict[str, Any]] = []
    counters = {"school": 0, "hospital": 0}

    def add(name: str, category: str, geom: Point, parcel: _Parcel | None) -> None:
        rows.append(
            {
                "name": name,
                "category": category,
                "parcel_id": parcel.attrs.get("parcel_id") if parcel else None,
                "geometry": geom,
            }
        )

    for p in parcels:
        c = p.geometry.centroid
        fac = p.attrs.get("facility")
        if fac in counters:
            names = _SCHOOL_NAMES if fac == "school" else _HOSPITALS
            add(names[counters[fac] % len(names)], fac, c, p)
            counters[fac] += 1
        elif p.land_use == "park":
            add(f"{p.district} Park Playground", "park_facility", c, p)
        elif p.land_use in ("commercial", "mixed_use") and rng.random() < 0.35:
            if rng.random() < 0.6:
                add(_SHOPS[int(rng.integers(len(_SHOPS)))], "shop", c, p)
            else:
                add(_RESTAURANTS[int(rng.integers(len(_RESTAURANTS)))], "restaurant", c, p)
        elif p.land_use == "residential" and p.geometry.area > 450 and rng.random() < 0.025:
            add(_WORSHIP[int(rng.integers(len(_WORSHIP)))], "place_of_worship", c, p)
        elif p.land_use == "commercial" and rng.random() < 0.04:
            add(_SERVICES[int(rng.integers(len(_SERVICES)))], "public_service", c, p)
    # Transit stops at every other intersection of the main avenue, and along one cross street.
    main_idx = len(xs) // 2
    for j in range(1, len(ys) - 1, 2):
        x = xs[main_idx] + avenue_w[main_idx] / 2 - 1.5
        name = f"{_short(avenue_names[main_idx])} & {_short(street_names[j])}"
        add(name, "transit", Point(x, ys[j] + 8.0), None)
    j_mid = len(ys) // 2
    for i in range(1, len(xs) - 1, 2):
        if i == main_idx:
            continue
        name = f"{_short(street_names[j_mid])} & {_short(avenue_names[i])}"
        add(name, "transit", Point(xs[i] + 9.0, ys[j_mid] - 4.5), None)
    gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs=None)
    gdf.insert(0, "poi_id", [f"POI{k:04d}" for k in range(1, len(gdf) + 1)])
    return gdf


def _short(name: str) -> str:
    abbrev = {"Street": "St", "Avenue": "Ave", "Road": "Rd", "Lane": "Ln", "Drive": "Dr"}
    head, _, suffix = name.rpartition(" ")
    return f"{head} {abbrev.get(suffix, suffix)}"
