"""What stands on each parcel and street of the sample city: the objects the renderer paints.

Land uses differ the way they do on real imagery: houses are small pitched roofs in lawns with
trees and driveways; shops are large flat roofs with rooftop plant and striped car parks;
mixed-use blocks are tall flat roofs with terraces and shop awnings; industry is huge metal roofs,
containers, trucks and tanks; schools have sports fields and running tracks; parks are trees and
paths; vacant lots are dry grass and soil; construction sites are bare soil, foundations and
machinery. Heights drive the shadows the renderer casts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from shapely.affinity import rotate
from shapely.geometry import LineString, Point, Polygon, box
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

if TYPE_CHECKING:
    from geolabel.synth.city import RenderObject, _Parcel

__all__ = ["paint_city"]

# Paint order (z) of object families.
Z_GROUND, Z_SURFACE, Z_MARK, Z_BUILDING, Z_ROOFTOP, Z_VEHICLE, Z_TREE = 0, 1, 2, 3, 4, 5, 6

_CAR_COLOURS = ("car_white", "car_black", "car_silver", "car_red", "car_blue", "car_silver")


class _Painter:
    """Collects render objects for one parcel in the parcel's own frame.

    ``u`` runs along the street frontage (west to east), ``v`` is the distance from the front
    edge into the parcel, whichever side of the street it is on.
    """

    def __init__(self, parcel: _Parcel, out: list[RenderObject], rng: np.random.Generator) -> None:
        from geolabel.synth.city import RenderObject

        self._obj = RenderObject
        self.out = out
        self.rng = rng
        x0, y0, x1, y1 = parcel.geometry.bounds
        self.x0, self.width, self.depth = x0, x1 - x0, y1 - y0
        # South side of a street: the front is the top edge; north side: the bottom edge.
        self.front_y, self.sign = (y0, 1.0) if parcel.north_side else (y1, -1.0)

    def rect(self, u0: float, v0: float, u1: float, v1: float) -> Polygon:
        ya = self.front_y + self.sign * v0
        yb = self.front_y + self.sign * v1
        return box(self.x0 + u0, min(ya, yb), self.x0 + u1, max(ya, yb))

    def point(self, u: float, v: float) -> Point:
        return Point(self.x0 + u, self.front_y + self.sign * v)

    def add(
        self,
        geom: BaseGeometry,
        material: str,
        z: int,
        *,
        height: float = 0.0,
        gain: float | None = None,
    ) -> None:
        if geom.is_empty:
            return
        g = float(self.rng.normal(1.0, 0.05)) if gain is None else gain
        self.out.append(self._obj(geom, material, g, height, z))

    def ground(self, material: str) -> None:
        self.add(self.rect(0, 0, self.width, self.depth), material, Z_GROUND)

    def trees(
        self, n: int, region: tuple[float, float, float, float], r: tuple[float, float]
    ) -> None:
        u0, v0, u1, v1 = region
        if u1 - u0 < 1 or v1 - v0 < 1:
            return
        for _ in range(n):
            rad = float(self.rng.uniform(*r))
            c = self.point(float(self.rng.uniform(u0, u1)), float(self.rng.uniform(v0, v1)))
            self.add(c.buffer(rad, quad_segs=6), "tree", Z_TREE, height=rad * 2.5)

    def cars(self, region: tuple[float, float, float, float], fill: float) -> None:
        """A car park: stall lines and parked cars."""
        u0, v0, u1, v1 = region
        stall = 2.6
        rows = int((v1 - v0) // 6.0)
        for r in range(rows):
            va = v0 + r * 6.0 + 0.5
            n = int((u1 - u0) // stall)
            for k in range(n + 1):
                uu = u0 + k * stall
                self.add(self.rect(uu, va, uu + 0.25, va + 5.0), "marking", Z_MARK, gain=1.0)
                if k < n and self.rng.random() < fill:
                    colour = _CAR_COLOURS[int(self.rng.integers(len(_CAR_COLOURS)))]
                    self.add(
                        self.rect(uu + 0.4, va + 0.4, uu + 2.2, va + 4.8),
                        colour,
                        Z_VEHICLE,
                        height=1.5,
                    )


def _house(pt: _Painter, converted: bool) -> None:
    rng = pt.rng
    w, d = pt.width, pt.depth
    pt.ground("grass")
    hw = min(w - 3.0, rng.uniform(12.0, 15.0) if converted else rng.uniform(8.0, 12.5))
    hd = min(d * 0.55, rng.uniform(11.0, 15.0) if converted else rng.uniform(8.5, 13.0))
    setback = rng.uniform(4.0, 7.0)
    u0 = rng.uniform(1.0, max(1.0, w - hw - 1.0))
    if converted:
        # Front yard paved over for customer parking.
        pt.add(pt.rect(0.5, 0.0, w - 0.5, setback), "parking", Z_SURFACE)
        pt.cars((1.0, 0.3, w - 1.0, setback), 0.6)
    else:
        side = u0 + hw + 0.3 if u0 + hw + 3.5 < w else max(0.0, u0 - 3.3)
        pt.add(pt.rect(side, 0.0, side + 3.0, setback + 2.0), "concrete", Z_SURFACE)
    roof = ("roof_tile", "roof_tile", "roof_shingle", "roof_shingle", "roof_brown")[
        int(rng.integers(5))
    ]
    g = float(rng.normal(1.0, 0.06))
    # A pitched roof: two planes, one facing the sun, one away from it.
    pt.add(
        pt.rect(u0, setback, u0 + hw / 2, setback + hd), roof, Z_BUILDING, height=7.0, gain=g * 1.1
    )
    pt.add(
        pt.rect(u0 + hw / 2, setback, u0 + hw, setback + hd),
        roof,
        Z_BUILDING,
        height=7.0,
        gain=g * 0.86,
    )
    back = (0.5, setback + hd + 1.0, w - 0.5, d - 0.5)
    if rng.random() < 0.15 and back[3] - back[1] > 6:
        pv = back[1] + rng.uniform(0.5, back[3] - back[1] - 5.0)
        pu = rng.uniform(0.5, max(0.6, w - 7.0))
        pt.add(pt.rect(pu, pv, pu + 5.5, pv + 3.5), "pool", Z_SURFACE)
    if rng.random() < 0.25 and back[3] - back[1] > 5:
        pt.add(pt.rect(w - 5.0, d - 5.5, w - 1.0, d - 1.0), "roof_shingle", Z_BUILDING, height=3.0)
    pt.trees(int(rng.integers(1, 4)), back, (1.8, 3.5))
    pt.trees(int(rng.integers(0, 2)), (0.5, 0.5, w - 0.5, setback - 1.0), (1.2, 2.2))


def _commercial(pt: _Painter) -> None:
    rng = pt.rng
    w, d = pt.width, pt.depth
    pt.ground("parking")
    bd = d * rng.uniform(0.45, 0.7)
    setback = rng.uniform(0.0, 2.5)
    roof = "roof_flat_white" if rng.random() < 0.55 else "roof_flat_grey"
    pt.add(
        pt.rect(1.0, setback, w - 1.0, setback + bd),
        roof,
        Z_BUILDING,
        height=float(rng.uniform(9, 14)),
    )
    for _ in range(int(rng.integers(2, 6))):
        uu = rng.uniform(2.0, max(2.1, w - 5.0))
        vv = setback + rng.uniform(1.5, max(1.6, bd - 4.0))
        pt.add(
            pt.rect(uu, vv, uu + rng.uniform(1.5, 3.0), vv + rng.uniform(1.5, 3.0)),
            "roof_metal",
            Z_ROOFTOP,
            height=1.0,
        )
    pt.cars((1.0, setback + bd + 1.0, w - 1.0, d - 0.5), rng.uniform(0.3, 0.8))
    if rng.random() < 0.5:
        pt.trees(int(rng.integers(1, 3)), (0.5, d - 2.5, w - 0.5, d - 0.5), (1.5, 2.5))


def _mixed_use(pt: _Painter) -> None:
    rng = pt.rng
    w, d = pt.width, pt.depth
    pt.ground("concrete")
    bd = d * rng.uniform(0.6, 0.75)
    g = float(rng.normal(1.0, 0.05))
    pt.add(
        pt.rect(0.5, 0.0, w - 0.5, bd),
        "roof_mixed",
        Z_BUILDING,
        height=float(rng.uniform(13, 17)),
        gain=g,
    )
    awning = ("awning_red", "awning_green", "awning_blue")[int(rng.integers(3))]
    pt.add(pt.rect(0.5, 0.0, w - 0.5, 1.2), awning, Z_ROOFTOP, height=0.5)
    # Roof terraces of the flats: planters and small trees on the roof.
    for _ in range(int(rng.integers(2, 5))):
        uu = rng.uniform(1.5, max(1.6, w - 5.0))
        vv = rng.uniform(3.0, max(3.1, bd - 5.0))
        pt.add(
            pt.rect(uu, vv, uu + rng.uniform(2.0, 4.0), vv + rng.uniform(1.5, 3.0)),
            "grass",
            Z_ROOFTOP,
        )
    pt.add(pt.rect(w * 0.3, bd * 0.4, w * 0.55, bd * 0.65), "roof_tile", Z_ROOFTOP, height=2.5)
    court = (0.8, bd + 0.8, w - 0.8, d - 0.5)
    pt.add(pt.rect(*court), "grass", Z_SURFACE)
    pt.trees(int(rng.integers(1, 3)), court, (1.5, 2.5))
    if rng.random() < 0.5:
        pt.cars((1.0, d - 6.0, w - 1.0, d - 0.2), 0.5)


def _industrial(pt: _Painter) -> None:
    rng = pt.rng
    w, d = pt.width, pt.depth
    pt.ground("concrete_dusty")
    bw, bd = w * rng.uniform(0.55, 0.8), d * rng.uniform(0.5, 0.75)
    u0 = rng.uniform(1.0, max(1.1, w - bw - 1.0))
    v0 = rng.uniform(1.0, max(1.1, d - bd - 1.0))
    pt.add(
        pt.rect(u0, v0, u0 + bw, v0 + bd),
        "roof_metal",
        Z_BUILDING,
        height=float(rng.uniform(9, 12)),
    )
    for k in range(1, int(bw // 8)):
        uu = u0 + 8.0 * k
        pt.add(
            pt.rect(uu, v0 + 1.0, uu + 1.0, v0 + bd - 1.0), "roof_flat_white", Z_ROOFTOP, height=0.3
        )
    yard_u = (0.5, u0 - 0.5) if u0 > 8 else (u0 + bw + 0.5, w - 0.5)
    if yard_u[1] - yard_u[0] > 3:
        for k in range(int((d - 2) // 3.2)):
            if rng.random() < 0.75:
                colour = ("container_red", "container_blue", "container_green")[
                    int(rng.integers(3))
                ]
                pt.add(
                    pt.rect(
                        yard_u[0], 1.0 + 3.2 * k, min(yard_u[1], yard_u[0] + 6.1), 3.5 + 3.2 * k
                    ),
                    colour,
                    Z_VEHICLE,
                    height=2.6,
                )
    for _ in range(int(rng.integers(1, 4))):
        uu = rng.uniform(1.0, max(1.1, w - 14.0))
        vv = rng.uniform(0.5, 3.0)
        pt.add(pt.rect(uu, vv, uu + 12.5, vv + 2.6), "car_white", Z_VEHICLE, height=3.5)
    if rng.random() < 0.5:
        r = rng.uniform(3.0, 5.5)
        c = pt.point(w - r - 1.5, d - r - 1.5)
        pt.add(c.buffer(r, quad_segs=8), "tank", Z_BUILDING, height=8.0)
    if rng.random() < 0.5:
        pt.add(pt.rect(0.5, d - 6.0, w * 0.4, d - 0.5), "soil", Z_SURFACE)


def _school(pt: _Painter) -> None:
    rng = pt.rng
    w, d = pt.width, pt.depth
    pt.ground("grass")
    roof = "roof_tile" if rng.random() < 0.5 else "roof_flat_grey"
    arm = min(14.0, w * 0.2)
    pt.add(
        unary_union([pt.rect(2, 2, w * 0.55, 2 + arm), pt.rect(2, 2, 2 + arm, d * 0.6)]),
        roof,
        Z_BUILDING,
        height=9.0,
    )
    # A sports field with a running track around it.
    cx, cy, length, rad = w * 0.72, d * 0.6, min(w * 0.22, 30.0), min(w * 0.16, d * 0.28, 18.0)
    c = pt.point(cx, cy)
    field_line = LineString([(c.x - length / 2, c.y), (c.x + length / 2, c.y)])
    oval = field_line.buffer(rad, quad_segs=12)
    pt.add(oval.difference(field_line.buffer(rad - 4.0, quad_segs=12)), "track", Z_SURFACE)
    pt.add(pt.rect(w * 0.08, d * 0.72, w * 0.38, d * 0.92), "asphalt", Z_SURFACE)
    pt.add(pt.rect(w * 0.22, d * 0.72, w * 0.225, d * 0.92), "marking", Z_MARK, gain=1.0)
    pt.cars((w * 0.4, 0.5, w * 0.95, 12.5), 0.5)
    pt.trees(int(rng.integers(6, 14)), (1.0, d * 0.9, w - 1.0, d - 1.0), (2.0, 4.0))


def _hospital(pt: _Painter) -> None:
    rng = pt.rng
    w, d = pt.width, pt.depth
    pt.ground("grass")
    bar = min(w, d) * 0.18
    h_shape = unary_union(
        [
            pt.rect(w * 0.2, d * 0.2, w * 0.2 + bar, d * 0.75),
            pt.rect(w * 0.75 - bar, d * 0.2, w * 0.75, d * 0.75),
            pt.rect(w * 0.2, d * 0.45, w * 0.75, d * 0.45 + bar),
        ]
    )
    pt.add(h_shape, "roof_flat_white", Z_BUILDING, height=22.0)
    pad = pt.point(w * 0.475, d * 0.3).buffer(4.0, quad_segs=8)
    pt.add(pad, "concrete", Z_ROOFTOP, height=0.2)
    pt.add(pt.rect(w * 0.8, 1.0, w - 1.0, d - 1.0), "parking", Z_SURFACE)
    pt.cars((w * 0.8, 1.0, w - 1.0, d - 1.0), 0.7)
    pt.trees(int(rng.integers(8, 16)), (1.0, 1.0, w * 0.18, d - 1.0), (2.0, 3.5))


def _park(pt: _Painter) -> None:
    rng = pt.rng
    w, d = pt.width, pt.depth
    pt.ground("grass")
    for a, b in (((0, 0), (w, d)), ((0, d), (w, 0)), ((w / 2, 0), (w / 2, d))):
        path = LineString([pt.point(*a), pt.point(*b)]).buffer(1.2, cap_style="flat")
        pt.add(path, "path", Z_SURFACE)
    pg = pt.rect(w * 0.1, d * 0.1, w * 0.1 + 10, d * 0.1 + 8)
    pt.add(pg, "soil", Z_SURFACE)
    n = int(w * d / 120)
    for _ in range(max(4, n // 6)):  # clumps of trees
        c = (rng.uniform(0, w), rng.uniform(0, d))
        pt.trees(int(rng.integers(3, 8)), (c[0] - 8, c[1] - 8, c[0] + 8, c[1] + 8), (2.0, 4.5))


def _water(pt: _Painter) -> None:
    rng = pt.rng
    w, d = pt.width, pt.depth
    pt.ground("grass")
    inset = min(w, d) * 0.12
    body = pt.rect(inset, inset, w - inset, d - inset)
    body = body.buffer(-min(w, d) * 0.1).buffer(min(w, d) * 0.1, quad_segs=8)  # rounded shore
    body = rotate(body, float(rng.uniform(-10, 10)))
    pt.add(body, "water", Z_SURFACE)
    pt.trees(int(rng.integers(4, 10)), (1.0, 1.0, w - 1.0, inset), (2.0, 3.5))


def _vacant(pt: _Painter) -> None:
    rng = pt.rng
    w, d = pt.width, pt.depth
    pt.ground("dry_grass")
    for _ in range(int(rng.integers(1, 4))):
        c = pt.point(rng.uniform(0, w), rng.uniform(0, d))
        pt.add(c.buffer(rng.uniform(2, 6), quad_segs=5), "soil", Z_SURFACE)
    for _ in range(int(rng.integers(1, 5))):
        c = pt.point(rng.uniform(1, w - 1), rng.uniform(1, d - 1))
        pt.add(c.buffer(rng.uniform(0.8, 1.8), quad_segs=4), "shrub", Z_TREE, height=1.5)
    if rng.random() < 0.5:
        track = LineString([pt.point(rng.uniform(0, w), 0), pt.point(rng.uniform(0, w), d)])
        pt.add(track.buffer(0.8), "soil", Z_SURFACE)


def _construction(pt: _Painter) -> None:
    rng = pt.rng
    w, d = pt.width, pt.depth
    pt.ground("soil")
    fw, fd = w * rng.uniform(0.5, 0.8), d * rng.uniform(0.35, 0.6)
    u0, v0 = rng.uniform(1.0, max(1.1, w - fw - 1.0)), rng.uniform(2.0, max(2.1, d - fd - 2.0))
    slab = pt.rect(u0, v0, u0 + fw, v0 + fd)
    if rng.random() < 0.5:
        pt.add(slab.difference(slab.buffer(-1.2)), "concrete", Z_SURFACE)  # footings
        pt.add(slab.buffer(-1.2), "soil_dark", Z_SURFACE)
    else:
        pt.add(slab, "concrete", Z_SURFACE)  # slab with a partial structure
        pt.add(
            pt.rect(u0, v0, u0 + fw * rng.uniform(0.3, 0.6), v0 + fd),
            "roof_flat_grey",
            Z_BUILDING,
            height=float(rng.uniform(4, 9)),
        )
    for _ in range(int(rng.integers(1, 4))):
        uu, vv = rng.uniform(0.5, max(0.6, w - 6.0)), rng.uniform(0.5, max(0.6, d - 4.0))
        pt.add(
            pt.rect(uu, vv, uu + rng.uniform(2.5, 5.0), vv + rng.uniform(2.0, 3.0)),
            "machinery",
            Z_VEHICLE,
            height=3.0,
        )
    for _ in range(int(rng.integers(1, 4))):
        c = pt.point(rng.uniform(1, w - 1), rng.uniform(1, d - 1))
        pt.add(c.buffer(rng.uniform(1.5, 3.5), quad_segs=5), "soil_dark", Z_SURFACE, height=1.0)


def _cleared(pt: _Painter) -> None:
    """A cleared lot: graded soil, some surviving dry grass, maybe one machine, no structure."""
    rng = pt.rng
    w, d = pt.width, pt.depth
    pt.ground("soil")
    for _ in range(int(rng.integers(2, 4))):
        c = pt.point(rng.uniform(0, w), rng.uniform(0, d))
        pt.add(c.buffer(rng.uniform(2.5, 5.0), quad_segs=5), "dry_grass", Z_SURFACE)
    for k in range(int(d // 3)):
        pt.add(pt.rect(1.0, 1.5 + 3 * k, w - 1.0, 2.0 + 3 * k), "soil_dark", Z_MARK)
    if rng.random() < 0.5:
        uu, vv = rng.uniform(0.5, max(0.6, w - 5.0)), rng.uniform(0.5, max(0.6, d - 4.0))
        pt.add(pt.rect(uu, vv, uu + 3.5, vv + 2.2), "machinery", Z_VEHICLE, height=3.0)


_PAINTERS: dict[str, Callable[[_Painter], None]] = {
    "commercial": _commercial,
    "mixed_use": _mixed_use,
    "industrial": _industrial,
    "park": _park,
    "water": _water,
    "vacant": _vacant,
    "construction": _construction,
}


def _paint_parcel(p: _Parcel, out: list[RenderObject], rng: np.random.Generator) -> None:
    pt = _Painter(p, out, rng)
    if p.attrs.get("cleared"):
        _cleared(pt)
    elif p.attrs.get("facility") == "school":
        _school(pt)
    elif p.attrs.get("facility") == "hospital":
        _hospital(pt)
    elif p.land_use == "residential" or p.attrs.get("converted"):
        _house(pt, converted=bool(p.attrs.get("converted")))
    else:
        _PAINTERS[p.land_use](pt)


def paint_city(
    parcels: list[_Parcel],
    roads: list[BaseGeometry],
    streets_rows: list[dict[str, Any]],
    xs: np.ndarray,
    ys: np.ndarray,
    avenue_w: list[float],
    road_w: float,
    rng: np.random.Generator,
) -> list[RenderObject]:
    """Everything the renderer paints, sorted bottom to top.

    Args:
        parcels: The parcels with their land use decided.
        roads: Road surface polygons (local metres).
        streets_rows: Street records (name, orientation, width, centre line).
        xs: Avenue centre positions (west to east).
        ys: Street centre positions (north to south).
        avenue_w: Width of each avenue in metres.
        road_w: Width of the east–west streets in metres.
        rng: The city's random generator.

    Returns:
        Render objects in paint order.
    """
    from geolabel.synth.city import RenderObject

    out: list[RenderObject] = []
    for p in parcels:
        _paint_parcel(p, out, rng)
    extent = float(xs[-1])
    for r in roads:
        out.append(RenderObject(r, "asphalt", float(rng.normal(1.0, 0.03)), 0.0, Z_SURFACE))
    # Sidewalks along both sides of every road, then lane markings and crossings.
    for row in streets_rows:
        half = row["width_m"] / 2
        line: LineString = row["geometry"]
        (xa, ya), _ = line.coords
        if row["orientation"] == "ns":
            for s in (-1, 1):
                out.append(
                    RenderObject(
                        box(
                            xa + s * half - (2.2 if s > 0 else 0),
                            0,
                            xa + s * half + (0 if s > 0 else 2.2),
                            extent,
                        ),
                        "concrete",
                        1.0,
                        0.0,
                        Z_SURFACE,
                    )
                )
        else:
            for s in (-1, 1):
                out.append(
                    RenderObject(
                        box(
                            0,
                            ya + s * half - (2.2 if s > 0 else 0),
                            extent,
                            ya + s * half + (0 if s > 0 else 2.2),
                        ),
                        "concrete",
                        1.0,
                        0.0,
                        Z_SURFACE,
                    )
                )
        dashes = []
        length = extent
        for k in range(int(length // 9)):
            a = k * 9.0 + 1.0
            if row["orientation"] == "ns":
                dashes.append(box(xa - 0.15, a, xa + 0.15, a + 4.5))
            else:
                dashes.append(box(a, ya - 0.15, a + 4.5, ya + 0.15))
        out.append(RenderObject(unary_union(dashes), "marking", 1.0, 0.0, Z_MARK))
    # Intersections are plain asphalt (no sidewalk across them) with zebra crossings.
    for i, x in enumerate(xs):
        for y in ys:
            hw, hh = avenue_w[i] / 2, road_w / 2
            out.append(
                RenderObject(box(x - hw, y - hh, x + hw, y + hh), "asphalt", 1.0, 0.0, Z_MARK)
            )
            stripes = [
                box(x - hw + 0.6 + 1.0 * k, y + hh - 0.1, x - hw + 1.1 + 1.0 * k, y + hh + 2.2)
                for k in range(int((2 * hw - 1) // 1.0))
            ]
            out.append(RenderObject(unary_union(stripes), "marking", 1.0, 0.0, Z_MARK))
    # Traffic: cars in the lanes.
    for row in streets_rows:
        line = row["geometry"]
        (xa, ya), _ = line.coords
        n = int(rng.poisson(extent / 40.0))
        for _ in range(n):
            t = float(rng.uniform(2, extent - 6))
            lane = float(rng.choice([-1.0, 1.0])) * row["width_m"] / 4
            colour = _CAR_COLOURS[int(rng.integers(len(_CAR_COLOURS)))]
            if row["orientation"] == "ns":
                car = box(xa + lane - 0.9, t, xa + lane + 0.9, t + 4.5)
            else:
                car = box(t, ya + lane - 0.9, t + 4.5, ya + lane + 0.9)
            out.append(RenderObject(car, colour, float(rng.normal(1.0, 0.05)), 1.5, Z_VEHICLE))
    out.sort(key=lambda o: o.z)  # stable: equal z keeps insertion order
    return out
