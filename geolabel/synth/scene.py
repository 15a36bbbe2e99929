"""Render the sample city into a 4-band (R, G, B, NIR) surface-reflectance scene and a truth mask.

The image model, per pixel and band ``b``::

    L_b = (S_b[m] · g_obj · (1 + a_m · T_low + c_m · T_grain)) · shadow_b      (ground radiance)
    I_b = blur(L_b · gain_d + haze_{d,b}) + ε,   ε ~ N(0, 25 + 0.01 · I_b)   (sensor)

where ``S[m]`` is the reflectance spectrum of the pixel's material (×10 000), ``g_obj`` the
brightness of the object the pixel belongs to, ``T_low``/``T_grain`` smooth and fine texture
fields, and ``d`` the district: Riverside was imaged on a hazy late-summer day (path radiance
added, contrast lower, vegetation drier: less NIR, more red), Northgate on a clear early-summer
day. Shadows are cast north-west by everything with a height. Values are stored as ``uint16``
with 0 reserved for nodata.
"""

from __future__ import annotations

import numpy as np
from affine import Affine
from rasterio.features import rasterize
from scipy.ndimage import gaussian_filter
from shapely.affinity import translate
from shapely.geometry.base import BaseGeometry

from geolabel.synth.city import LAND_USE_CODES, City

__all__ = ["BAND_NAMES", "MATERIALS", "render_scene", "render_truth_mask", "scene_transform"]

BAND_NAMES = ("red", "green", "blue", "nir")

#: Material → (R, G, B, NIR reflectance × 10 000, smooth texture amplitude, grain amplitude).
MATERIALS: dict[str, tuple[tuple[int, int, int, int], float, float]] = {
    "grass": ((550, 950, 450, 4200), 0.10, 0.10),
    "tree": ((330, 620, 300, 3500), 0.08, 0.22),
    "shrub": ((450, 800, 400, 3000), 0.06, 0.18),
    "dry_grass": ((1900, 1750, 1150, 2700), 0.10, 0.10),
    "soil": ((2700, 2150, 1500, 3000), 0.10, 0.07),
    "soil_dark": ((1800, 1500, 1150, 2100), 0.08, 0.07),
    "path": ((2600, 2400, 2000, 2700), 0.05, 0.05),
    "asphalt": ((850, 880, 860, 1000), 0.06, 0.05),
    "parking": ((1150, 1150, 1120, 1300), 0.06, 0.05),
    "concrete": ((2300, 2250, 2150, 2500), 0.05, 0.04),
    "concrete_dusty": ((2600, 2400, 2100, 2700), 0.10, 0.06),
    "roof_tile": ((2900, 1500, 1050, 3100), 0.03, 0.05),
    "roof_shingle": ((1350, 1380, 1450, 1550), 0.03, 0.05),
    "roof_brown": ((1800, 1350, 1050, 2000), 0.03, 0.05),
    "roof_flat_white": ((4300, 4300, 4250, 4500), 0.03, 0.02),
    "roof_flat_grey": ((2600, 2600, 2550, 2800), 0.03, 0.02),
    "roof_mixed": ((1950, 1850, 1750, 2150), 0.04, 0.03),
    "roof_metal": ((2500, 2850, 3250, 3000), 0.02, 0.02),
    "water": ((250, 450, 650, 120), 0.05, 0.02),
    "pool": ((900, 2200, 2800, 500), 0.02, 0.02),
    "track": ((2900, 1200, 900, 2600), 0.02, 0.03),
    "marking": ((5000, 5000, 4800, 5000), 0.0, 0.02),
    "tank": ((4000, 4000, 4000, 4200), 0.01, 0.02),
    "machinery": ((4200, 3400, 600, 3500), 0.01, 0.03),
    "awning_red": ((3500, 1000, 900, 3000), 0.01, 0.02),
    "awning_green": ((700, 2200, 900, 2600), 0.01, 0.02),
    "awning_blue": ((700, 1200, 3000, 1600), 0.01, 0.02),
    "container_red": ((3000, 900, 700, 2900), 0.01, 0.03),
    "container_blue": ((700, 1100, 2500, 1500), 0.01, 0.03),
    "container_green": ((900, 1900, 900, 2200), 0.01, 0.03),
    "car_white": ((4500, 4500, 4500, 4600), 0.0, 0.03),
    "car_black": ((350, 350, 380, 450), 0.0, 0.03),
    "car_silver": ((3000, 3050, 3100, 3200), 0.0, 0.03),
    "car_red": ((3200, 600, 600, 2800), 0.0, 0.03),
    "car_blue": ((600, 900, 2600, 1200), 0.0, 0.03),
}
_VEGETATION = ("grass", "tree", "shrub")
_SHADOW = np.array([0.36, 0.38, 0.47, 0.33], dtype=np.float32)
#: Shadow displacement per metre of height (sun from the south-east, elevation ≈ 60°).
_SHADOW_PER_M = (-0.45, 0.45)
#: Per district: (gain, haze added per band, vegetation (red, nir) factors).
_DISTRICT_LOOK = {
    "Northgate": (1.0, (0.0, 0.0, 0.0, 0.0), (1.0, 1.0)),
    "Riverside": (0.8, (650.0, 720.0, 880.0, 330.0), (1.45, 0.72)),
}


def scene_transform(city: City) -> Affine:
    """Affine transform of the scene grid in the city's CRS."""
    ps = city.config.pixel_size_m
    x0, y0 = city.config.origin
    return Affine(ps, 0.0, x0, 0.0, -ps, y0 + city.config.extent_m)


def _local_transform(city: City) -> Affine:
    ps = city.config.pixel_size_m
    return Affine(ps, 0.0, 0.0, 0.0, -ps, city.config.extent_m)


def render_truth_mask(city: City) -> np.ndarray:
    """The true land-use class code of every pixel (``LAND_USE_CODES``; roads are 9).

    Args:
        city: The city to render.

    Returns:
        A ``(H, W)`` ``uint8`` array on the scene grid.
    """
    size = city.config.size_px
    ox, oy = city.config.origin
    uses = dict(zip(city.truth["parcel_id"], city.truth["land_use"], strict=True))
    shapes: list[tuple[BaseGeometry, int]] = [(g, LAND_USE_CODES["road"]) for g in city.roads]
    shapes += [
        (translate(g, -ox, -oy), LAND_USE_CODES[uses[pid]])
        for pid, g in zip(city.parcels["parcel_id"], city.parcels.geometry, strict=True)
    ]
    return rasterize(
        shapes, out_shape=(size, size), transform=_local_transform(city), fill=0, dtype="uint8"
    )


def render_scene(city: City) -> np.ndarray:
    """Paint the city as a ``(4, H, W)`` ``uint16`` reflectance image (0 = nodata, never used).

    Args:
        city: The city to render.

    Returns:
        The image, bands red, green, blue, NIR.
    """
    rng = np.random.default_rng(city.config.seed + 1)
    size = city.config.size_px
    transform = _local_transform(city)
    names = list(MATERIALS)
    mat_index = {n: k for k, n in enumerate(names)}
    objects = city.objects
    # One rasterisation of object ids; material, gain and height are looked up per object.
    obj_ids = rasterize(
        ((o.geometry, k + 1) for k, o in enumerate(objects)),
        out_shape=(size, size),
        transform=transform,
        fill=0,
        dtype="int32",
    )
    mat_of = np.array([mat_index["asphalt"]] + [mat_index[o.material] for o in objects])
    gain_of = np.array([1.0] + [o.gain for o in objects], dtype=np.float32)
    mat = mat_of[obj_ids]
    spectra = np.array([MATERIALS[n][0] for n in names], dtype=np.float32)
    amp_low = np.array([MATERIALS[n][1] for n in names], dtype=np.float32)
    amp_grain = np.array([MATERIALS[n][2] for n in names], dtype=np.float32)

    t_low = gaussian_filter(rng.standard_normal((size, size)).astype(np.float32), 6.0)
    t_low /= t_low.std() + 1e-6
    t_grain = rng.standard_normal((size, size)).astype(np.float32)
    t_grain = 0.6 * t_grain + 0.4 * gaussian_filter(t_grain, 1.0) / 0.28
    texture = 1.0 + amp_low[mat] * t_low + amp_grain[mat] * t_grain
    np.clip(texture, 0.3, 2.0, out=texture)
    image = spectra[mat].transpose(2, 0, 1) * (gain_of[obj_ids] * texture)[None]

    # Shadows: each tall object's footprint swept north-west by its height.
    dx, dy = _SHADOW_PER_M
    casts = []
    for o in objects:
        if o.height_m > 0:
            moved = translate(o.geometry, dx * o.height_m, dy * o.height_m)
            casts.append((o.geometry.union(moved).convex_hull, 1))
    shadow = rasterize(casts, out_shape=(size, size), transform=transform, fill=0, dtype="uint8")
    heights = np.array([0.0] + [o.height_m for o in objects], dtype=np.float32)[obj_ids]
    # Ground in shadow is darkened; roofs and tree crowns (lit from above) are not.
    in_shadow = (shadow == 1) & (heights < 2.0)
    image[:, in_shadow] *= _SHADOW[:, None]

    # District looks (a mosaic of two acquisitions).
    dist = rasterize(
        (
            (translate(g, -city.config.origin[0], -city.config.origin[1]), k)
            for k, g in enumerate(city.districts.geometry)
        ),
        out_shape=(size, size),
        transform=transform,
        fill=0,
        dtype="uint8",
    )
    veg = np.isin(mat, [mat_index[n] for n in _VEGETATION])
    for k, name in enumerate(city.districts["district"]):
        gain, haze, (veg_red, veg_nir) = _DISTRICT_LOOK.get(name, _DISTRICT_LOOK["Northgate"])
        sel = dist == k
        vsel = sel & veg
        image[0, vsel] *= veg_red
        image[3, vsel] *= veg_nir
        for b in range(4):
            image[b, sel] = image[b, sel] * gain + haze[b]

    for b in range(4):  # optics: a slight blur
        image[b] = gaussian_filter(image[b], 0.55)
    image += rng.standard_normal(image.shape).astype(np.float32) * (25.0 + 0.01 * image)
    return np.clip(np.rint(image), 1, 10_000).astype(np.uint16)
