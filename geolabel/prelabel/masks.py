"""Training masks from labeled parcels: burn each parcel's label onto the scene grid.

Unlabeled parcels become ``IGNORE_INDEX`` (the loss and the metrics skip them); pixels outside
every parcel take the road class when one is named (in a city, what lies between parcels is
street), so roads are learned from their own class. Parcel edges can be eroded by a pixel or two:
edge pixels mix a parcel with its neighbour or the street and teach the model noise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import geopandas as gpd
import numpy as np
from affine import Affine
from rasterio.features import rasterize

from geolabel.errors import LabelError

__all__ = ["IGNORE_INDEX", "burn_labels", "burn_parcel_ids"]

#: Mask value skipped by the loss and the metrics.
IGNORE_INDEX = 255


def burn_parcel_ids(
    parcels: gpd.GeoDataFrame, *, transform: Affine, shape: tuple[int, int]
) -> np.ndarray:
    """Rasterise parcel ordinals: pixel value ``k + 1`` for the ``k``-th parcel, 0 outside all.

    A pixel belongs to a parcel when its centre is inside it (later parcels win overlaps).

    Args:
        parcels: Parcel polygons, in the grid's CRS.
        transform: Affine transform of the grid.
        shape: (rows, cols) of the grid.

    Returns:
        ``int32`` raster of parcel ordinals.
    """
    if len(parcels) == 0:
        return np.zeros(shape, dtype=np.int32)
    return rasterize(
        ((g, k + 1) for k, g in enumerate(parcels.geometry.values)),
        out_shape=shape,
        transform=transform,
        fill=0,
        dtype="int32",
    )


def burn_labels(
    parcels: gpd.GeoDataFrame,
    labels: Mapping[str, str],
    *,
    classes: Sequence[str],
    transform: Affine,
    shape: tuple[int, int],
    outside_class: str | None = "road",
    erode_px: int = 1,
    parcel_ids: np.ndarray | None = None,
) -> np.ndarray:
    """Rasterise parcel labels into a class-index mask on a scene grid.

    Args:
        parcels: Parcel polygons with a ``parcel_id`` column, in the grid's CRS.
        labels: ``parcel_id`` → class id for the labeled parcels; others are ignored.
        classes: The model's classes in order; mask values are indices into it.
        transform: Affine transform of the grid.
        shape: (rows, cols) of the grid.
        outside_class: Class of pixels outside every parcel (``None``: ignore them).
        erode_px: Pixels trimmed from the edge of every labeled parcel (set to ignore).
        parcel_ids: The parcels' ordinals on the grid (:func:`burn_parcel_ids`), if already
            rasterised.

    Returns:
        ``uint8`` mask of class indices, ``IGNORE_INDEX`` where unknown.

    Raises:
        LabelError: A label or ``outside_class`` is not one of ``classes``.
    """
    index = {c: k for k, c in enumerate(classes)}
    unknown = sorted({str(v) for v in labels.values()} - set(index))
    if unknown:
        raise LabelError(
            f"Labels {', '.join(map(repr, unknown))} are not classes of the model"
            f" ({', '.join(classes)}). Retrain with the current taxonomy or remap the labels."
        )
    if outside_class is not None and outside_class not in index:
        raise LabelError(f"outside_class {outside_class!r} is not one of {', '.join(classes)}.")
    ids = parcels["parcel_id"].astype(str).to_numpy()
    # One rasterisation of parcel ordinals; labels are looked up per ordinal.
    ordinal = (
        burn_parcel_ids(parcels, transform=transform, shape=shape)
        if parcel_ids is None
        else parcel_ids
    )
    lut = np.full(len(ids) + 1, IGNORE_INDEX, dtype=np.uint8)
    lut[0] = IGNORE_INDEX if outside_class is None else index[outside_class]
    for k, pid in enumerate(ids, start=1):
        label = labels.get(pid)
        if label is not None:
            lut[k] = index[str(label)]
    mask = lut[ordinal]
    if erode_px > 0:
        # An edge pixel has a pixel of another parcel (or of no parcel) within erode_px
        # rows or columns; the scene border is not an edge.
        edge = np.zeros(shape, dtype=bool)
        for k in range(1, erode_px + 1):
            diff_r = ordinal[:-k, :] != ordinal[k:, :]
            diff_c = ordinal[:, :-k] != ordinal[:, k:]
            edge[:-k, :] |= diff_r
            edge[k:, :] |= diff_r
            edge[:, :-k] |= diff_c
            edge[:, k:] |= diff_c
        mask[edge & (ordinal > 0)] = IGNORE_INDEX
    return mask
