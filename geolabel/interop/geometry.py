"""Chip pixels <-> project coordinates: masks to polygons and back, percent polygons."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import rasterio.features
import shapely
from affine import Affine
from pyproj import CRS, Transformer
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import transform as shapely_transform

from geolabel.errors import GeometryError

__all__ = [
    "drawn_on_top",
    "geometry_to_mask",
    "geometry_to_percent_rings",
    "mask_to_geometry",
    "percent_ring_to_geometry",
    "polygonal",
    "reproject_geometry",
]


def mask_to_geometry(mask: np.ndarray, transform: Affine) -> BaseGeometry:
    """Turn a boolean mask into a (multi)polygon along the pixel edges.

    The polygons follow pixel boundaries exactly, so :func:`geometry_to_mask` on the same
    grid gives the same mask back (pixel centres decide).

    Args:
        mask: ``(height, width)`` boolean mask.
        transform: Pixel -> CRS transform of the mask's grid.

    Returns:
        A polygon or multipolygon (empty when the mask is).
    """
    m = np.asarray(mask).astype(np.uint8)
    parts = [
        shape(geom)
        for geom, value in rasterio.features.shapes(m, mask=m.astype(bool), transform=transform)
        if value == 1
    ]
    if not parts:
        return Polygon()
    merged = shapely.union_all(parts)
    return merged if isinstance(merged, Polygon | MultiPolygon) else merged.buffer(0)


def geometry_to_mask(
    geometry: BaseGeometry, transform: Affine, shape_hw: tuple[int, int]
) -> np.ndarray:
    """Rasterize a geometry onto a grid (a pixel is in when its centre is).

    Args:
        geometry: Polygon(s) in the grid's CRS.
        transform: Pixel -> CRS transform.
        shape_hw: ``(height, width)`` of the grid.

    Returns:
        Boolean mask.
    """
    if geometry.is_empty:
        return np.zeros(shape_hw, dtype=bool)
    burned = rasterio.features.rasterize(
        [(geometry, 1)], out_shape=shape_hw, transform=transform, fill=0, dtype="uint8"
    )
    return np.asarray(burned.astype(bool))


def percent_ring_to_geometry(
    points: Sequence[Sequence[float]], width: int, height: int, transform: Affine
) -> Polygon:
    """Turn Label Studio polygon points (percent of the image) into a polygon in the CRS.

    Args:
        points: ``[[x%, y%], ...]``; ``x`` is a share of ``width``, ``y`` of ``height``.
        width: ``original_width`` of the image.
        height: ``original_height``.
        transform: Chip pixel -> CRS transform.

    Returns:
        The polygon (made valid if the ring crosses itself).

    Raises:
        GeometryError: Fewer than three points, or a point that is not two numbers.
    """
    try:
        pixels = [(float(x) * width / 100.0, float(y) * height / 100.0) for x, y in points]
    except (TypeError, ValueError) as exc:
        raise GeometryError(f"polygon points must be [x, y] pairs of numbers ({exc})") from exc
    if len(pixels) < 3:
        raise GeometryError(f"a polygon needs at least 3 points, got {len(pixels)}")
    ring = [transform @ p for p in pixels]
    polygon = Polygon(ring)
    if not polygon.is_valid:
        fixed = shapely.make_valid(polygon)
        polys = [g for g in getattr(fixed, "geoms", [fixed]) if isinstance(g, Polygon)]
        polygon = max(polys, key=lambda g: g.area) if polys else Polygon()
    return polygon


def geometry_to_percent_rings(
    geometry: BaseGeometry, width: int, height: int, transform: Affine
) -> list[list[list[float]]]:
    """Turn a (multi)polygon in the CRS into Label Studio percent rings (exteriors only).

    Args:
        geometry: Polygon(s) in the chip's CRS.
        width: Chip width in pixels.
        height: Chip height in pixels.
        transform: Chip pixel -> CRS transform.

    Returns:
        One ``[[x%, y%], ...]`` list per polygon, without the closing point.
    """
    inverse = ~transform
    polygons = [g for g in getattr(geometry, "geoms", [geometry]) if isinstance(g, Polygon)]
    rings = []
    for polygon in polygons:
        if polygon.is_empty:
            continue
        coords = list(polygon.exterior.coords)[:-1]
        rings.append(
            [
                [
                    round(100.0 * px / width, 6),
                    round(100.0 * py / height, 6),
                ]
                for px, py in (inverse @ (x, y) for x, y in coords)
            ]
        )
    return rings


def reproject_geometry(geometry: BaseGeometry, src: str, dst: str) -> BaseGeometry:
    """Reproject a geometry when the CRSs differ (returned unchanged otherwise).

    Args:
        geometry: The geometry.
        src: Its CRS.
        dst: The CRS wanted.

    Returns:
        The geometry in ``dst``.
    """
    if CRS.from_user_input(src).equals(CRS.from_user_input(dst), ignore_axis_order=True):
        return geometry
    transformer = Transformer.from_crs(src, dst, always_xy=True)
    return shapely_transform(transformer.transform, geometry)


def drawn_on_top(geometries: Sequence[BaseGeometry]) -> list[BaseGeometry]:
    """Resolve overlapping polygons of one drawing: smaller ones lie on top of larger ones.

    Label Studio polygons have no holes, so an island of another class inside a region is
    drawn as a second, smaller polygon over it. Each polygon here loses the parts covered by
    smaller ones, so the regions no longer overlap and burn back the same whatever the order.

    Args:
        geometries: Polygons of one annotation, in the same CRS.

    Returns:
        The polygons, in input order, each minus every smaller polygon.
    """
    order = sorted(range(len(geometries)), key=lambda i: geometries[i].area)
    out: list[BaseGeometry] = list(geometries)
    taken: list[BaseGeometry] = []
    for i in order:
        geometry = geometries[i]
        if taken:
            geometry = polygonal(geometry.difference(shapely.union_all(taken)))
        out[i] = geometry
        taken.append(geometries[i])
    return out


def polygonal(geometry: BaseGeometry) -> BaseGeometry:
    """The polygon parts of a geometry (a set operation may leave lines or points behind).

    Args:
        geometry: Any geometry.

    Returns:
        A polygon, a multipolygon, or an empty polygon.
    """
    if isinstance(geometry, Polygon | MultiPolygon):
        return geometry
    parts = [g for g in getattr(geometry, "geoms", []) if isinstance(g, Polygon | MultiPolygon)]
    if not parts:
        return Polygon()
    merged = shapely.union_all(parts)
    return merged if isinstance(merged, Polygon | MultiPolygon) else Polygon()
