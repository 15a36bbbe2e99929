"""Self-contained folium maps of a project: scene, labels, disagreement, hotspots, notices.

:func:`project_map` builds one HTML file that works with no network: Leaflet's JS and CSS
(vendored in ``geolabel/review/resources``, BSD-2) are inlined, folium's other CDN assets
(jQuery, Bootstrap, Font Awesome, awesome-markers) are dropped (the map uses none of them:
every layer, points included, is a GeoJSON layer whose popups come from ``GeoJsonPopup``, not
``folium.Popup``, which needs jQuery and pastes its HTML into a JavaScript template literal), no
base tiles are loaded, and the scene is embedded as a PNG data URI. Every string from a user or
a file (notice text, names, labels, rationale) is HTML-escaped before it reaches the page.

Layers (each can be switched in the layer control; a layer the project lacks is skipped and
named in :attr:`MapResult.skipped`):

* ``Scene (RGB)``: the scene's red/green/blue bands, downsampled to at most ``max_image_px``
  pixels a side, warped to Web Mercator (EPSG:3857, so Leaflet's image overlay lines up), with a
  2-98 percentile stretch per band and nodata transparent;
* ``Pre-labels``: the newest model's label per parcel, with its probabilities and confidence;
* ``Consensus``: the current consensus, with the votes, confidence and provenance (method,
  taxonomy version, round, model, review);
* ``Disagreement``: a choropleth of the combined disagreement score;
* ``Hotspots``: the significant Gi* hotspots;
* ``Notices``: notices linked to parcels (``notice_links``), one marker per linked parcel;
* ``POIs`` and ``Tile grid``.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geolabel.errors import InputFileError, LayerError, ReviewError

if TYPE_CHECKING:
    import folium

    from geolabel.review.hotspots import HotspotResult
    from geolabel.store import Project

__all__ = [
    "LAYER_NAMES",
    "MapResult",
    "build_map",
    "inline_assets",
    "project_map",
    "scene_overlay",
]

LAYER_NAMES: tuple[str, ...] = (
    "Scene (RGB)",
    "Pre-labels",
    "Consensus",
    "Disagreement",
    "Hotspots",
    "Notices",
    "POIs",
    "Tile grid",
)
"""Names of the map's layers, as the layer control shows them."""

_WEB = "EPSG:4326"
_MERCATOR = "EPSG:3857"
_REMOTE = re.compile(r"""<(?:script|link)\b[^>]*(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)
_RAMP = ("#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#b10026")
_MAX_TEXT = 600


@dataclass(frozen=True, slots=True)
class MapResult:
    """What :func:`project_map` wrote.

    Attributes:
        path: The HTML file.
        layers: Layers on the map, in order.
        skipped: Layers left out, each with the reason (``"Pre-labels: no predictions yet"``).
        n_bytes: Size of the file.
    """

    path: str
    layers: tuple[str, ...]
    skipped: tuple[str, ...]
    n_bytes: int


def _esc(value: object) -> str:
    """HTML-escape any value for a popup (None and NaN become an empty string)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return html.escape(str(value), quote=True)


def _table(rows: Iterable[tuple[str, object]]) -> str:
    """A small two-column HTML table; keys and values are escaped."""
    body = "".join(
        f"<tr><th style='text-align:left;padding-right:6px'>{_esc(k)}</th><td>{_esc(v)}</td></tr>"
        for k, v in rows
    )
    return f"<table style='font-size:12px'>{body}</table>"


def _fmt(value: object, digits: int = 2) -> str:
    """Format a number (or pass text through)."""
    if isinstance(value, float | np.floating):
        return "" if np.isnan(value) else f"{float(value):.{digits}f}"
    return "" if value is None else str(value)


def _resource(name: str) -> bytes:
    """Read a vendored asset from ``geolabel/review/resources``."""
    return (resources.files("geolabel.review") / "resources" / name).read_bytes()


def inline_assets() -> str:
    """Return Leaflet's CSS and JS as inline ``<style>``/``<script>`` elements.

    Returns:
        HTML for the page head; the CSS's image URLs point at data URIs.
    """
    css = _resource("leaflet.css").decode("utf-8")
    for image in ("layers.png", "layers-2x.png"):
        uri = "data:image/png;base64," + base64.b64encode(_resource(image)).decode("ascii")
        css = css.replace(f"url(images/{image})", f"url({uri})")
    js = _resource("leaflet.js").decode("utf-8").replace("</script", "<\\/script")
    return f"<style>{css}</style>\n<script>{js}</script>"


def _png_data_uri(rgba: np.ndarray) -> str:
    """Encode an (H, W, 4) uint8 array as a PNG data URI."""
    from PIL import Image

    buffer = io.BytesIO()
    # zlib level 6 without optimize: optimize's extra passes cost seconds for a few % of size
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG", compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _rgb_bands(band_names: tuple[str, ...], count: int) -> list[int]:
    """1-based band indexes of red, green, blue: by name, else the first three (or one)."""
    names = [n.lower() for n in band_names]
    if all(c in names for c in ("red", "green", "blue")):
        return [names.index(c) + 1 for c in ("red", "green", "blue")]
    return [1, 2, 3] if count >= 3 else [1, 1, 1]


def scene_overlay(
    path: str | Path, *, max_image_px: int = 1024, percentiles: tuple[float, float] = (2, 98)
) -> tuple[str, list[list[float]]]:
    """Render a scene as a web-map image: RGB, stretched, warped to Web Mercator.

    The scene is read at a decimated resolution (overviews when present), warped to
    EPSG:3857 with bilinear resampling (nodata kept transparent), and each band stretched
    linearly between its ``percentiles`` of valid pixels.

    Args:
        path: The GeoTIFF.
        max_image_px: Longest side of the image in pixels.
        percentiles: Low and high percentile of the stretch.

    Returns:
        The PNG data URI and its bounds ``[[south, west], [north, east]]`` in degrees.

    Raises:
        InputFileError: The scene cannot be read or has no CRS.
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.warp import calculate_default_transform, reproject, transform_bounds

    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise InputFileError(f"Scene {path} has no CRS; cannot place it on a map.")
            scale = max(src.width, src.height) / max_image_px
            width = max(1, round(src.width / max(scale, 1)))
            height = max(1, round(src.height / max(scale, 1)))
            bands = _rgb_bands(tuple(d or "" for d in src.descriptions), src.count)
            data = src.read(
                bands, out_shape=(3, height, width), resampling=Resampling.average, masked=True
            )
            src_transform = src.transform * src.transform.scale(
                src.width / width, src.height / height
            )
            src_crs = src.crs
            left, bottom, right, top = src.bounds
    except rasterio.errors.RasterioIOError as exc:
        raise InputFileError(f"Cannot read scene {path}: {exc}.") from exc
    valid = ~np.ma.getmaskarray(data).any(axis=0)
    dst_transform, dst_w, dst_h = calculate_default_transform(
        src_crs, _MERCATOR, width, height, left, bottom, right, top
    )
    dst_w, dst_h = int(dst_w or width), int(dst_h or height)
    out = np.zeros((4, dst_h, dst_w), dtype=np.float32)
    filled = np.ma.filled(data.astype(np.float32), np.nan)
    for b in range(3):
        reproject(
            filled[b],
            out[b],
            src_transform=src_transform,
            src_crs=src_crs,
            dst_transform=dst_transform,
            dst_crs=_MERCATOR,
            resampling=Resampling.bilinear,
            src_nodata=np.nan,
            dst_nodata=np.nan,
        )
    reproject(
        valid.astype(np.float32),
        out[3],
        src_transform=src_transform,
        src_crs=src_crs,
        dst_transform=dst_transform,
        dst_crs=_MERCATOR,
        resampling=Resampling.nearest,
        dst_nodata=0.0,
    )
    alpha = (out[3] > 0.5) & np.isfinite(out[:3]).all(axis=0)
    rgba = np.zeros((dst_h, dst_w, 4), dtype=np.uint8)
    for b in range(3):
        values = out[b][alpha]
        if values.size:
            lo, hi = np.percentile(values, percentiles)
            stretched = (np.nan_to_num(out[b]) - lo) / max(float(hi - lo), 1e-9)
            rgba[..., b] = np.clip(stretched * 255, 0, 255).astype(np.uint8)
    rgba[..., 3] = np.where(alpha, 255, 0).astype(np.uint8)
    mx0, my0 = dst_transform.c, dst_transform.f
    mx1, my1 = mx0 + dst_transform.a * dst_w, my0 + dst_transform.e * dst_h
    west, south, east, north = transform_bounds(
        _MERCATOR, _WEB, min(mx0, mx1), min(my0, my1), max(mx0, mx1), max(my0, my1)
    )
    return _png_data_uri(rgba), [[south, west], [north, east]]


def _to_web(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Reproject to WGS 84 for Leaflet."""
    return frame.to_crs(_WEB)


def _geojson_layer(
    frame: gpd.GeoDataFrame,
    name: str,
    style: Callable[[Mapping[str, Any]], dict[str, Any]],
    popups: list[str],
    *,
    show: bool = True,
    marker: folium.CircleMarker | None = None,
) -> folium.FeatureGroup:
    """One feature group holding a GeoJSON layer whose popups are pre-escaped HTML.

    The popup HTML travels as a GeoJSON property (JSON-encoded in the page) and is set as the
    popup's ``innerHTML`` by folium's ``GeoJsonPopup``: no jQuery and no JavaScript template
    literal (where ``${...}`` in a notice would run) is involved, unlike ``folium.Popup``.
    Points are drawn as ``marker`` (a ``CircleMarker`` template).
    """
    import folium

    group = folium.FeatureGroup(name=name, show=show)
    if frame.empty:  # an empty layer (no hotspot yet...) still shows in the layer control
        return group
    web = _to_web(frame[["geometry"]].copy())
    web["popup"] = popups
    for column in ("fill",):
        if column in frame.columns:
            web[column] = frame[column].to_numpy()
    folium.GeoJson(
        json.loads(web.to_json(drop_id=True)),
        style_function=style,
        popup=folium.GeoJsonPopup(fields=["popup"], labels=False, parse_html=False),
        name=name,
        marker=marker,
        control=False,
    ).add_to(group)
    return group


def _fill_style(opacity: float = 0.7) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """Style by the feature's ``fill`` property."""

    def style(feature: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "fillColor": feature["properties"].get("fill", "#999999"),
            "color": "#333333",
            "weight": 0.6,
            "fillOpacity": opacity,
        }

    return style


def _point_layer(
    points: gpd.GeoDataFrame,
    name: str,
    popups: list[str],
    *,
    colour: str,
    fill: str,
    radius: int,
) -> folium.FeatureGroup:
    """A layer of circle markers, hidden until ticked in the layer control."""
    import folium

    def style(_: Mapping[str, Any]) -> dict[str, Any]:
        return {"color": colour, "fillColor": fill, "weight": 1.5}

    marker = folium.CircleMarker(
        radius=radius, color=colour, fill=True, fill_color=fill, fill_opacity=0.9
    )
    return _geojson_layer(points, name, style, popups, show=False, marker=marker)


def _ramp(value: float) -> str:
    """Colour of a 0-1 value on a yellow-red ramp."""
    if not np.isfinite(value):
        return "#cccccc"
    return _RAMP[min(int(value * len(_RAMP)), len(_RAMP) - 1)]


def _legend(colours: Mapping[str, str], title: str) -> str:
    """Legend HTML (fixed bottom-right) from the taxonomy's colours; names escaped."""
    rows = "".join(
        f"<div><span style='display:inline-block;width:12px;height:12px;background:{_esc(c)};"
        f"margin-right:5px;border:1px solid #555'></span>{_esc(name)}</div>"
        for name, c in colours.items()
    )
    ramp = "".join(
        f"<span style='display:inline-block;width:14px;height:10px;background:{c}'></span>"
        for c in _RAMP
    )
    return (
        "<div id='geolabel-legend' style='position:fixed;bottom:24px;right:12px;z-index:1000;"
        "background:white;padding:8px;border:1px solid #888;font:12px sans-serif'>"
        f"<b>{_esc(title)}</b>{rows}<div style='margin-top:4px'>disagreement 0 {ramp} 1</div>"
        "</div>"
    )


def _votes_summary(labels: Iterable[str]) -> str:
    """``"residential 3, commercial 2"``."""
    return ", ".join(f"{k} {v}" for k, v in Counter(map(str, labels)).most_common())


def _probas_text(probas: object) -> str:
    """``"residential 0.62, commercial 0.30, ..."`` (top 4)."""
    if not isinstance(probas, dict) or not probas:
        return ""
    top = sorted(probas.items(), key=lambda kv: -float(kv[1]))[:4]
    return ", ".join(f"{k} {float(v):.2f}" for k, v in top)


def _truncate(text: object) -> str:
    value = "" if text is None else str(text)
    return value if len(value) <= _MAX_TEXT else value[:_MAX_TEXT] + "…"


def project_map(
    project: Project,
    output: str | Path,
    *,
    hotspots: HotspotResult | None = None,
    disagreement: pd.DataFrame | None = None,
    method: str = "ds",
    max_image_px: int = 1024,
    compute_hotspots: bool = True,
    permutations: int = 999,
) -> MapResult:
    """Write the project's map as one self-contained HTML file.

    Args:
        project: An open project.
        output: The HTML file to write.
        hotspots: Precomputed hotspots; computed when None and there are parcel votes (and
            ``compute_hotspots``).
        disagreement: Precomputed :func:`~geolabel.review.disagreement.project_disagreement`.
        method: Aggregator for the disagreement scores.
        max_image_px: Longest side of the scene image.
        compute_hotspots: Compute hotspots when not given.
        permutations: Permutations for computed hotspots.

    Returns:
        What was written, and which layers were skipped and why.

    Raises:
        LayerError: The project has no parcels layer.
        InputFileError: The output cannot be written.
        ReviewError: The rendered page would still reference the network.
    """
    import folium

    from geolabel.review.disagreement import project_disagreement
    from geolabel.review.hotspots import project_hotspots, project_parcels

    out_path = Path(output)
    parcels = project_parcels(project)
    taxonomy = project.current_taxonomy()
    colours = {k: v for k, v in taxonomy.colours.items() if k in taxonomy.parcel_class_ids}
    web_bounds = _to_web(parcels[["geometry"]]).total_bounds
    fmap = folium.Map(tiles=None, control_scale=True, prefer_canvas=False)
    fmap.default_js = []  # no CDN: Leaflet is inlined below, nothing else is used
    fmap.default_css = []
    root = fmap.get_root()
    if not isinstance(root, folium.Figure):  # pragma: no cover - folium always makes a Figure
        raise ReviewError("folium did not give the map a Figure root; update folium.")
    root.header.add_child(folium.Element(inline_assets()), name="leaflet_inline")
    fmap.fit_bounds([[web_bounds[1], web_bounds[0]], [web_bounds[3], web_bounds[2]]])
    layers: list[str] = []
    skipped: list[str] = []

    # Scene.
    try:
        from geolabel.raster.index import project_scenes

        scenes = project_scenes(project)
    except (LayerError, InputFileError) as exc:
        scenes = {}
        skipped.append(f"Scene (RGB): {exc}")
    if scenes:
        group = folium.FeatureGroup(name="Scene (RGB)", show=True)
        for info in scenes.values():
            uri, bounds = scene_overlay(info.path, max_image_px=max_image_px)
            folium.raster_layers.ImageOverlay(uri, bounds=bounds, opacity=1.0).add_to(group)
        group.add_to(fmap)
        layers.append("Scene (RGB)")
    elif not skipped:
        skipped.append("Scene (RGB): no scenes in the project")

    annotations = project.annotations(kind="parcel")
    votes_by_item = annotations.groupby("item")["label"].agg(list) if len(annotations) else None
    item_of = parcels["item"].astype(str)

    # Pre-labels.
    predictions = project.predictions()
    if predictions.empty:
        skipped.append("Pre-labels: no predictions yet (run geolabel prelabel)")
    else:
        newest = predictions.groupby("model_version")["created_at"].max().sort_values().index[-1]
        pred = predictions[predictions["model_version"] == newest].drop_duplicates("item")
        pred = pred.set_index("item").reindex(item_of)
        has = pred["label"].notna().to_numpy()
        frame = parcels[has].copy()
        rows = pred[has]
        frame["fill"] = [colours.get(str(lab), "#999999") for lab in rows["label"]]
        popups = [
            _table(
                [
                    ("parcel", item),
                    ("pre-label", lab),
                    ("confidence", _fmt(conf)),
                    ("probabilities", _probas_text(prob)),
                    ("model", newest),
                    ("taxonomy", f"{tname} v{tver}"),
                ]
            )
            for item, lab, conf, prob, tname, tver in zip(
                rows.index,
                rows["label"],
                rows["confidence"],
                rows["probas"],
                rows["taxonomy_name"],
                rows["taxonomy_version"],
                strict=True,
            )
        ]
        _geojson_layer(frame, "Pre-labels", _fill_style(), popups, show=False).add_to(fmap)
        layers.append("Pre-labels")

    # Consensus.
    consensus = project.current_consensus()
    if consensus.empty:
        skipped.append("Consensus: no consensus yet (run geolabel aggregate)")
    else:
        cons = consensus.drop_duplicates("item").set_index("item").reindex(item_of)
        has = cons["label"].notna().to_numpy()
        frame = parcels[has].copy()
        rows = cons[has]
        frame["fill"] = [colours.get(str(lab), "#999999") for lab in rows["label"]]
        popups = []
        for item, row in rows.iterrows():
            votes = votes_by_item.get(item, []) if votes_by_item is not None else []
            popups.append(
                _table(
                    [
                        ("parcel", item),
                        ("consensus", row["label"]),
                        ("confidence", _fmt(row["confidence"])),
                        ("votes", _votes_summary(votes)),
                        ("method", row["method"]),
                        ("taxonomy", f"{row['taxonomy_name']} v{row['taxonomy_version']}"),
                        ("round", row["round_id"] if pd.notna(row["round_id"]) else ""),
                        ("model prior", row["model_version"] or ""),
                        ("review", row["review_id"] or ""),
                        ("decided", row["created_at"]),
                    ]
                )
            )
        _geojson_layer(frame, "Consensus", _fill_style(), popups).add_to(fmap)
        layers.append("Consensus")

    # Disagreement and hotspots.
    scores = disagreement
    if scores is None and votes_by_item is not None:
        scores = project_disagreement(project, method=method)
    if scores is None or scores.empty:
        skipped.append("Disagreement: no parcel votes yet (import or simulate annotations)")
        skipped.append("Hotspots: no parcel votes yet")
    else:
        table = scores.assign(item=scores["item"].astype(str)).set_index("item").reindex(item_of)
        has = table["disagreement"].notna().to_numpy()
        frame = parcels[has].copy()
        rows = table[has]
        frame["fill"] = [_ramp(float(v)) for v in rows["disagreement"]]
        popups = []
        for item, row in rows.iterrows():
            votes = votes_by_item.get(item, []) if votes_by_item is not None else []
            popups.append(
                _table(
                    [
                        ("parcel", item),
                        ("disagreement", _fmt(row["disagreement"])),
                        ("votes", _votes_summary(votes)),
                        ("vote entropy", _fmt(row["vote_entropy"])),
                        ("1 - agreement", _fmt(row["observed_disagreement"])),
                        ("posterior entropy", _fmt(row["posterior_entropy"])),
                        ("consensus", row["consensus_label"]),
                        ("model", row["model_label"]),
                        ("model vs crowd", _fmt(row["model_crowd_disagreement"])),
                        ("top pair", row["top_pair"]),
                    ]
                )
            )
        _geojson_layer(frame, "Disagreement", _fill_style(0.8), popups, show=False).add_to(fmap)
        layers.append("Disagreement")
        result = hotspots
        if result is None and compute_hotspots:
            result = project_hotspots(project, disagreement=scores, permutations=permutations)
        if result is None:
            skipped.append("Hotspots: not computed (compute_hotspots=False)")
        elif result.polygons.empty:
            skipped.append(
                f"Hotspots: no significant hotspot (Gi*, {result.weights}, FDR {result.alpha})"
            )
        else:
            polys = result.polygons.copy()
            popups = [
                _table(
                    [
                        ("hotspot", row["hotspot_id"]),
                        ("parcels", row["n_items"]),
                        ("area (m²)", f"{row['area_m2']:.0f}"),
                        ("mean disagreement", _fmt(row["mean_disagreement"])),
                        ("confused pair", row["top_pair"]),
                        ("districts", row["districts"]),
                        ("items", row["items"]),
                    ]
                )
                for _, row in polys.iterrows()
            ]

            def hot_style(_: Mapping[str, Any]) -> dict[str, Any]:
                return {"color": "#6a00a8", "weight": 3, "fillColor": "#6a00a8", "fillOpacity": 0.2}

            _geojson_layer(polys, "Hotspots", hot_style, popups).add_to(fmap)
            layers.append("Hotspots")

    # Notices linked to parcels: one point per (notice, parcel) at the parcel.
    links = project.notice_links()
    if links.empty:
        skipped.append("Notices: no notice links (run geolabel notices extract on the project)")
    else:
        notices = project.notices()
        notices = notices.assign(notice_id=notices["notice_id"].astype(str)).set_index("notice_id")
        anchors = pd.Series(
            parcels.geometry.representative_point().to_numpy(), index=item_of.to_numpy()
        )
        anchors = anchors[~anchors.index.duplicated()]
        geoms: list[object] = []
        popups = []
        for (notice_id, item), link in links.groupby(["notice_id", "item"], sort=True):
            if str(item) not in anchors.index:
                continue
            key = str(notice_id)
            known = key in notices.index
            text = notices.at[key, "text"] if known else ""
            title = notices.at[key, "title"] if known and "title" in notices.columns else ""
            entities = "; ".join(
                f"{t} ({lab})" for t, lab in zip(link["text"], link["label"], strict=True)
            )
            geoms.append(anchors[str(item)])
            popups.append(
                _table(
                    [
                        ("notice", key),
                        ("title", title),
                        ("parcel", item),
                        ("entity", entities),
                        ("link", ", ".join(sorted(set(link["method"])))),
                        ("confidence", _fmt(float(link["confidence"].max()))),
                    ]
                )
                + f"<p style='max-width:320px;font-size:11px'>{_esc(_truncate(text))}</p>"
            )
        points = gpd.GeoDataFrame(geometry=geoms, crs=parcels.crs)
        _point_layer(points, "Notices", popups, colour="#1f4e79", fill="#1f4e79", radius=5).add_to(
            fmap
        )
        layers.append("Notices")

    # POIs.
    if not any(i.name == "pois" for i in project.layers()):
        skipped.append("POIs: no pois layer")
    else:
        pois = project.read_layer("pois")
        fields = [c for c in pois.columns if c != "geometry"]
        popups = [
            _table(list(zip(fields, row, strict=True)))
            for row in pois[fields].itertuples(index=False, name=None)
        ]
        points = gpd.GeoDataFrame(
            geometry=pois.geometry.representative_point().to_numpy(), crs=pois.crs
        )
        _point_layer(points, "POIs", popups, colour="#111111", fill="#ffffff", radius=4).add_to(
            fmap
        )
        layers.append("POIs")

    # Tile grid.
    if not any(i.name == "tiles" for i in project.layers()):
        skipped.append("Tile grid: no tiles layer (run geolabel tile)")
    else:
        tiles = project.read_layer("tiles")
        popups = [
            _table([(c, row[c]) for c in tiles.columns if c != "geometry"])
            for _, row in tiles.iterrows()
        ]

        def tile_style(_: Mapping[str, Any]) -> dict[str, Any]:
            return {"color": "#0066cc", "weight": 1, "fillOpacity": 0.0}

        _geojson_layer(tiles, "Tile grid", tile_style, popups, show=False).add_to(fmap)
        layers.append("Tile grid")

    root.html.add_child(folium.Element(_legend(colours, f"{taxonomy.name} v{taxonomy.version}")))
    folium.LayerControl(collapsed=False).add_to(fmap)
    page = root.render()
    remote = _REMOTE.search(page)
    if remote:
        raise ReviewError(
            f"The map would load {remote.group(0)!r} from the network; this is a bug in "
            "geolabel.review.maps (every asset must be inlined)."
        )
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise InputFileError(f"Cannot write the map to {out_path}: {exc}.") from exc
    return MapResult(
        path=str(out_path),
        layers=tuple(layers),
        skipped=tuple(skipped),
        n_bytes=out_path.stat().st_size,
    )


def build_map(project_path: str | Path, out_html: str | Path, *, permutations: int = 999) -> Path:
    """Open a project and write its map (a thin wrapper around :func:`project_map`).

    Args:
        project_path: The project file (``.gpkg``).
        out_html: The HTML file to write.
        permutations: Permutations for the hotspots.

    Returns:
        The path of the HTML file.

    Raises:
        StoreError: The project cannot be opened.
        LayerError: The project has no parcels layer.
        InputFileError: The output cannot be written.
    """
    from geolabel.store import Project

    with Project.open(project_path) as project:
        result = project_map(project, out_html, permutations=permutations)
    return Path(result.path)
