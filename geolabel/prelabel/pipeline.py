"""Train on a project's labeled parcels and pre-label every parcel, with provenance in the store.

``train_project``: the current label of each parcel (the starter annotations by majority, or the
stored consensus) is burned into a mask on the scene grid; roads come from the pixels outside
every parcel; the model trains with a spatial split (see :mod:`geolabel.prelabel.train`); then
the calibration of the pooled parcel probabilities is checked on the validation parcels
(reliability table, ECE) and a temperature is kept only if it lowers the held-out negative
log-likelihood; the checkpoint (weights and model card) is written to
``<project>_models/<model_version>/``.

``prelabel_project``: the model's taxonomy must match the project's current one and its bands
the scene's; every scene is predicted tile by tile, mosaicked to COGs and pooled per parcel. The
outputs go to ``<project>_prelabels/<model_version>/``:

- ``<scene>_classes.tif``, ``<scene>_confidence.tif``: class map and confidence COGs, at the
  model's resolution (the scene's pixels × ``input_scale``: 2 m for the sample);
- ``parcels.csv``: per parcel the pre-label, confidence, margin, entropy, pixel count and class
  probabilities;
- ``tiles.csv``: per tile the mean confidence and mean entropy (for active learning), its
  valid share, most common class and class shares; the same rows go to the project's
  ``tile_uncertainty`` layer (tile footprints, one set of rows per model version);
- ``parcel_embeddings.npz``, ``tile_embeddings.npz``: pooled encoder features per parcel and
  per tile (``ids`` and ``embedding``; :func:`geolabel.prelabel.embeddings.load_embeddings`);
- ``prelabel.json``: the run's report.

The parcel pre-labels are stored in the project as predictions of that model version. With
``scheduler=`` the scenes are predicted as Dask tasks, one per scene, on a LocalCluster or an
existing cluster (:mod:`geolabel.prelabel.distributed`), with the same outputs.

Training reads the scene into memory (the sample's 1024 × 1024 × 4 scene is 8 MB); one scene per
project is trained on.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio

from geolabel.errors import GeolabelError, InputFileError, LayerError, StoreError
from geolabel.prelabel.embeddings import save_embeddings
from geolabel.prelabel.masks import IGNORE_INDEX, burn_labels, burn_parcel_ids
from geolabel.prelabel.metrics import Calibration, calibrate
from geolabel.prelabel.model import (
    CARD_FILE,
    ModelCard,
    ModelMismatchError,
    check_model_config,
    hash_ids,
    load_card,
    load_checkpoint,
    save_checkpoint,
)
from geolabel.prelabel.predict import (
    Precision,
    SceneOutputs,
    TilePredictor,
    grid_plan,
    parcel_prelabels,
    predict_scene,
)
from geolabel.prelabel.train import (
    TrainConfig,
    downsample_image,
    downsample_mask,
    normalise,
    predict_array,
    train_segmentation,
)
from geolabel.raster.index import project_band_stats, project_scenes, project_tile_grids
from geolabel.raster.io import RasterInfo
from geolabel.raster.tiling import TileGrid, tile_index
from geolabel.raster.zonal import zonal_class_stats
from geolabel.store import Project

__all__ = [
    "TILE_LAYER",
    "LabelSource",
    "PrelabelReport",
    "TrainReport",
    "auto_input_scale",
    "latest_model",
    "models_dir",
    "pixel_size_m",
    "prelabel_project",
    "prelabels_dir",
    "train_project",
    "training_labels",
]

LabelSource = Literal["starter", "consensus"]
TILE_LAYER = "tile_uncertainty"
"""Project layer of per-tile uncertainty, one set of rows per model version."""


@dataclass(frozen=True)
class TrainReport:
    """What ``geolabel train`` did.

    Attributes:
        model_dir: The checkpoint directory.
        model_version: Version of the model (hash of its weights).
        labels: Label source trained on.
        n_training_parcels: Labeled parcels (training and validation sides).
        label_counts: Labeled parcels per class.
        n_val_parcels: Parcels on the validation side.
        epochs: Epochs run.
        best_epoch: Epoch whose weights were kept.
        val_miou: Validation mIoU (pixels).
        val_pixel_accuracy: Validation pixel accuracy.
        val_iou: Validation IoU per class (None: class absent from validation).
        calibration: Parcel-level calibration on the validation parcels.
        threads: Torch threads in the last epoch.
        seconds: Wall time.
    """

    model_dir: str
    model_version: str
    labels: str
    n_training_parcels: int
    label_counts: dict[str, int]
    n_val_parcels: int
    epochs: int
    best_epoch: int
    val_miou: float
    val_pixel_accuracy: float
    val_iou: dict[str, float | None]
    calibration: Calibration
    threads: int
    seconds: float


@dataclass(frozen=True)
class PrelabelReport:
    """What ``geolabel prelabel`` did.

    Attributes:
        model_version: The model that predicted.
        model_dir: Its checkpoint directory.
        out_dir: Folder of the outputs (see the module docstring).
        n_parcels: Parcels pre-labeled.
        n_added: Predictions added to the store (0 when this model already pre-labeled them).
        n_tiles: Tiles predicted.
        class_maps: Class-map COGs, one per scene.
        confidence_maps: Confidence COGs, one per scene.
        parcels_csv: Per-parcel pre-labels.
        tiles_csv: Per-tile uncertainty.
        parcel_embeddings: ``.npz`` of per-parcel embeddings.
        tile_embeddings: ``.npz`` of per-tile embeddings.
        label_counts: Parcels per pre-label.
        mean_confidence: Mean parcel confidence.
        temperature: Parcel-level calibration temperature applied.
        precision: Inference precision.
        threads: Torch threads.
        seconds: Wall time.
    """

    model_version: str
    model_dir: str
    out_dir: str
    n_parcels: int
    n_added: int
    n_tiles: int
    class_maps: tuple[str, ...]
    confidence_maps: tuple[str, ...]
    parcels_csv: str
    tiles_csv: str
    parcel_embeddings: str
    tile_embeddings: str
    label_counts: dict[str, int]
    mean_confidence: float
    temperature: float
    precision: str
    threads: int
    seconds: float
    notes: tuple[str, ...] = field(default_factory=tuple)


def models_dir(project_path: str | os.PathLike[str]) -> Path:
    """Folder of a project's checkpoints: ``<project>_models`` beside the project file."""
    p = Path(project_path)
    return p.with_name(f"{p.stem}_models")


def prelabels_dir(project_path: str | os.PathLike[str], model_version: str) -> Path:
    """Folder of one model's pre-label outputs: ``<project>_prelabels/<model_version>``."""
    p = Path(project_path)
    return p.with_name(f"{p.stem}_prelabels") / model_version


def latest_model(project_path: str | os.PathLike[str]) -> Path:
    """The newest checkpoint of a project (by the card's ``created_at``, then file time).

    Raises:
        InputFileError: The project has no trained model yet.
    """
    root = models_dir(project_path)
    cards = sorted(root.glob(f"*/{CARD_FILE}")) if root.is_dir() else []
    if not cards:
        raise InputFileError(
            f"Project {project_path} has no trained model yet (nothing in {root}). Train one"
            " with `geolabel train PROJECT`, or pass --model DIR."
        )

    def key(path: Path) -> tuple[str, float]:
        try:
            created = str(json.loads(path.read_text()).get("created_at", ""))
        except (OSError, json.JSONDecodeError):
            created = ""
        return created, path.stat().st_mtime

    return max(cards, key=key).parent


def training_labels(project: Project, source: LabelSource = "starter") -> dict[str, str]:
    """The current label of each labeled parcel.

    ``starter``: every stored annotation of a parcel, majority vote (ties: first label in sorted
    order). ``consensus``: the latest consensus row of each parcel.

    Raises:
        StoreError: No labels are stored for the source asked, or the source is unknown.
    """
    if source not in ("starter", "consensus"):
        raise StoreError(f"Unknown label source {source!r}; use 'starter' or 'consensus'.")
    items = project.items("parcel")["item"].astype(str)
    if source == "consensus":
        cons = project.current_consensus()
        cons = cons[cons["item"].astype(str).isin(set(items))]
        if cons.empty:
            raise StoreError(
                f"{project.path} has no consensus labels yet. Aggregate votes first"
                " (`geolabel aggregate`), or train on the starter set with --labels starter."
            )
        return dict(zip(cons["item"].astype(str), cons["label"].astype(str), strict=True))
    ann = project.annotations()
    ann = ann[ann["item"].astype(str).isin(set(items))]
    if ann.empty:
        raise StoreError(
            f"{project.path} has no parcel annotations. Import a starter set first:"
            " `geolabel import PROJECT labels.csv`."
        )
    counts = ann.groupby(["item", "label"]).size().reset_index(name="n")
    counts = counts.sort_values(["item", "n", "label"], ascending=[True, False, True])
    top = counts.drop_duplicates("item")
    return dict(zip(top["item"].astype(str), top["label"].astype(str), strict=True))


def _scenes(project: Project) -> dict[str, RasterInfo]:
    try:
        scenes = project_scenes(project)
    except LayerError:
        scenes = {}
    if not scenes:
        raise StoreError(
            f"Project {project.path} has no scenes to train on or predict. Make the project with"
            " a scene: `geolabel init PROJECT --scene SCENE.tif ...`."
        )
    return scenes


def _read_scene(
    info: RasterInfo, bands: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, rasterio.Affine]:
    """Pixels of the bands, the valid mask (False where every band is nodata) and the transform."""
    with rasterio.open(info.path) as ds:
        image = ds.read(list(bands))
        transform = ds.transform
    valid = np.ones(image.shape[1:], dtype=bool)
    if info.nodata is not None:
        nodata = float(info.nodata)
        invalid = np.isnan(image) if np.isnan(nodata) else image == nodata
        valid = ~invalid.all(axis=0)
    if image.dtype.kind == "f":
        valid &= np.isfinite(image).all(axis=0)
    return image, valid, transform


def pixel_size_m(info: RasterInfo) -> float:
    """A scene's pixel size in metres (degrees converted at the scene's centre latitude)."""
    from pyproj import CRS

    crs = CRS.from_user_input(info.crs)
    size = float(abs(info.res[0]))
    if crs.is_geographic:
        lat = (info.bounds[1] + info.bounds[3]) / 2.0
        return size * 111_320.0 * max(np.cos(np.radians(lat)), 1e-6)
    factor = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    return size * float(factor or 1.0)


def auto_input_scale(info: RasterInfo, target_m: float = 2.0, largest: int = 8) -> int:
    """The power of two (1 … ``largest``) that brings pixels closest to ``target_m`` from below.

    The default model sees about 2 m pixels: houses, roofs, car parks and containers are still
    a few pixels wide, and four times fewer pixels than at 1 m make training fit the time budget.
    A 0.5 m scene gets 4, a 0.3 m scene 4, a 30 m scene 1.
    """
    scale = 1
    size = pixel_size_m(info)
    while scale * 2 <= largest and size * scale * 2 <= target_m * 1.001:
        scale *= 2
    return scale


def _band_statistics(
    project: Project, scene_id: str, bands: tuple[int, ...], image: np.ndarray, valid: np.ndarray
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std per band: the project's stored statistics, or the scene's valid pixels."""
    try:
        stored = project_band_stats(project).get(scene_id)
    except StoreError:
        stored = None
    if stored is not None and tuple(stored.bands) == bands:
        mean, std = stored.mean, stored.std
    else:
        flat = image.reshape(image.shape[0], -1)[:, valid.ravel()].astype(np.float64)
        if flat.shape[1] == 0:
            raise GeolabelError("The scene has no valid pixel (every pixel is nodata).")
        mean = tuple(float(v) for v in flat.mean(axis=1))
        std = tuple(float(v) for v in flat.std(axis=1))
    return tuple(mean), tuple(s if s > 0 else 1.0 for s in std)


def train_project(
    project_path: str | os.PathLike[str],
    *,
    out_dir: str | os.PathLike[str] | None = None,
    labels: LabelSource = "starter",
    config: TrainConfig | None = None,
    input_scale: int | None = None,
    progress: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainReport:
    """Train a pre-label model on a project's labeled parcels and save a checkpoint.

    Args:
        project_path: The project GeoPackage.
        out_dir: Checkpoint directory; ``<project>_models/<model_version>`` when None.
        labels: ``starter`` (stored annotations) or ``consensus``.
        config: Training settings (``tile_size`` in scene pixels).
        input_scale: The model sees the scene averaged over ``input_scale`` × ``input_scale``
            pixels; probabilities are upsampled back to the scene grid. None picks the power of
            two that brings pixels closest to 2 m (:func:`auto_input_scale`; 4 for the
            sample's 0.5 m pixels), but no more than keeps crops 64 px wide.
        progress: Called after every epoch.

    Returns:
        The training report.

    Raises:
        StoreError: No labels or no scenes, or more than one scene.
        GeolabelError: Unknown encoder or bad settings.
        LabelError: Stored labels that are not classes of the current taxonomy.
    """
    t0 = time.perf_counter()
    config = config or TrainConfig()
    check_model_config(config.model)
    with Project.open(project_path) as project:
        taxonomy = project.current_taxonomy()
        scenes = _scenes(project)
        label_map = training_labels(project, labels)
        parcels = project.read_layer("parcels")
        if len(scenes) != 1:
            raise StoreError(
                f"The project has {len(scenes)} scenes; training on more than one scene at a"
                " time is not supported yet. Make a project per scene."
            )
        scene_id, info = next(iter(scenes.items()))
        if input_scale is None:  # auto, keeping crops of at least 64 px
            scale = min(auto_input_scale(info), max(1, config.tile_size // 64))
        else:
            scale = int(input_scale)
        step = 2**config.model.encoder_depth
        if scale < 1 or config.tile_size % (scale * step):
            raise GeolabelError(
                f"tile_size {config.tile_size} must be a multiple of input_scale × 2^encoder_depth"
                f" ({max(scale, 1) * step}); input_scale must be at least 1."
            )
        bands = tuple(range(1, info.count + 1))
        image, valid, transform = _read_scene(info, bands)
        mean, std = _band_statistics(project, scene_id, bands, image, valid)
    classes = list(taxonomy.class_ids)
    outside = "road" if "road" in classes else None
    parcels = parcels.to_crs(info.crs)
    ordinals = burn_parcel_ids(parcels, transform=transform, shape=image.shape[1:])
    mask = burn_labels(
        parcels,
        label_map,
        classes=classes,
        transform=transform,
        shape=image.shape[1:],
        outside_class=outside,
        parcel_ids=ordinals,
    )
    mask[~valid] = IGNORE_INDEX
    small = normalise(downsample_image(image.astype(np.float32), scale), mean, std)
    small_valid = downsample_image(valid[None].astype(np.float32), scale)[0] > 0.5
    small[:, ~small_valid] = 0.0
    small_mask = downsample_mask(mask, scale)
    small_ids = downsample_mask(ordinals, scale)
    # Crops and split blocks at the model's resolution, shrunk to fit a small scene.
    fit = min(small.shape[1:]) // step * step
    tile = min(config.tile_size // scale, fit)
    if tile < step:
        raise GeolabelError(
            f"Scene {info.path} is too small for the model: {small.shape[2]} × {small.shape[1]} px"
            f" at input scale {scale}, less than {step} px. Use a lower input_scale."
        )
    block = min(config.block_px // scale, max(min(small.shape[1:]) // 2, 1))
    cfg = replace(config, tile_size=tile, block_px=max(block, 1))
    result = train_segmentation(
        small,
        small_mask,
        n_classes=len(classes),
        config=cfg,
        groups=small_ids,
        progress=progress,
    )

    # Calibration on the validation parcels: pooled probabilities against their labels, at
    # the model's resolution as in prediction.
    probs = predict_array(result.model, small, tile=tile, batch_size=cfg.batch_size)
    probs[:, ~small_valid] = np.nan
    coarse = transform @ rasterio.Affine.scale(scale)
    zonal = zonal_class_stats(probs, parcels, classes=classes, transform=coarse, crs=info.crs)
    parcel_cls = list(taxonomy.parcel_class_ids)
    pre = parcel_prelabels(zonal, classes, parcel_cls)
    pids = parcels["parcel_id"].astype(str).to_numpy()
    val_ordinals = np.unique(small_ids[(result.val_mask != IGNORE_INDEX) & (small_ids > 0)])
    val_ids = {pids[k - 1] for k in val_ordinals} & set(label_map)
    sel = pre[pre["item"].isin(val_ids)]
    keep = [c for c in classes if c in set(parcel_cls)]
    y = np.array([keep.index(label_map[i]) if label_map[i] in keep else -1 for i in sel["item"]])
    p = sel[[f"p_{c}" for c in keep]].to_numpy()
    calibration = calibrate(p[y >= 0], y[y >= 0])
    card = ModelCard(
        model_version="",
        classes=tuple(classes),
        taxonomy_name=taxonomy.name,
        taxonomy_version=str(taxonomy.version),
        taxonomy_sha256=taxonomy.sha256,
        bands=bands,
        band_names=info.band_names,
        mean=mean,
        std=std,
        config={k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg.model).items()},
        tile_size=tile * scale,
        epochs=len(result.history),
        training_items_sha256=hash_ids(list(label_map)),
        n_training_items=len(label_map),
        val_metrics={
            "miou": result.val_scores.miou,
            "pixel_accuracy": result.val_scores.pixel_accuracy,
            "iou": dict(zip(classes, result.val_scores.iou, strict=False)),
            "best_epoch": result.best_epoch,
            "history": result.history,
            "calibration": asdict(calibration),
        },
        temperature=calibration.temperature,
        input_scale=scale,
        seed=config.seed,
        train_config=_plain_config(cfg),
        dtype=info.dtype,
        label_source=labels,
    )
    target = Path(out_dir) if out_dir else models_dir(project_path) / f".training-{os.getpid()}"
    written = save_checkpoint(target, result.model, card)
    if out_dir is None:
        final = target.parent / written.model_version
        if final.exists():
            shutil.rmtree(final)
        target.rename(final)
        target = final
    counts: dict[str, int] = {}
    for v in label_map.values():
        counts[v] = counts.get(v, 0) + 1
    return TrainReport(
        model_dir=str(target),
        model_version=written.model_version,
        labels=labels,
        n_training_parcels=len(label_map),
        label_counts=dict(sorted(counts.items())),
        n_val_parcels=len(sel),
        epochs=len(result.history),
        best_epoch=result.best_epoch,
        val_miou=result.val_scores.miou,
        val_pixel_accuracy=result.val_scores.pixel_accuracy,
        val_iou=dict(zip(classes, result.val_scores.iou, strict=False)),
        calibration=calibration,
        threads=int(result.history[-1]["threads"]) if result.history else 1,
        seconds=time.perf_counter() - t0,
    )


def _plain_config(cfg: TrainConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in asdict(cfg).items():
        if isinstance(v, dict):
            out[k] = {a: list(b) if isinstance(b, tuple) else b for a, b in v.items()}
        else:
            out[k] = list(v) if isinstance(v, tuple) else v
    return out


def prelabel_project(
    project_path: str | os.PathLike[str],
    model_dir: str | os.PathLike[str] | None = None,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 32,
    precision: Precision = "fp32",
    num_threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    scheduler: str | None = None,
) -> PrelabelReport:
    """Pre-label every parcel of a project with a trained model and store the predictions.

    Args:
        project_path: The project GeoPackage.
        model_dir: Checkpoint directory; the project's newest model when None.
        out_dir: Output folder; ``<project>_prelabels/<model_version>`` when None.
        batch_size: Tiles per forward pass.
        precision: ``fp32`` or ``bf16``.
        num_threads: Torch threads (default: tuned by timing batches, see
            :class:`~geolabel.prelabel.threads.ThreadTuner`).
        progress: Called with (tiles done, tiles in all) after every batch (after every
            scene on a Dask cluster).
        scheduler: Run the scenes on Dask: ``"local"`` (a LocalCluster of one single-threaded
            process per core) or a scheduler address; None runs them here, one after the
            other. The outputs are the same either way (see
            :mod:`geolabel.prelabel.distributed`).

    Returns:
        The report (also written as ``prelabel.json`` in the output folder).

    Raises:
        InputFileError: No model, or a missing or corrupt model directory.
        ModelMismatchError: The model was trained on another taxonomy version, or on imagery
            with other bands.
        StoreError: The project has no scenes.
        ClusterError: The Dask scheduler cannot be reached.
    """
    t0 = time.perf_counter()
    chosen = Path(model_dir) if model_dir is not None else latest_model(project_path)
    # On a cluster the workers load the weights; here only the card is needed.
    card = load_card(chosen)
    notes: list[str] = []
    with Project.open(project_path) as project:
        taxonomy = project.current_taxonomy()
        card.check_taxonomy(taxonomy.name, taxonomy.version, taxonomy.sha256)
        scenes = _scenes(project)
        parcels = project.read_layer("parcels")
        project_crs = project.crs
        try:
            stored = project_tile_grids(project)
        except StoreError:
            stored = {}
    for sid, info in scenes.items():
        if info.count != len(card.bands):
            raise ModelMismatchError(
                f"Model {card.model_version} takes {len(card.bands)} band(s)"
                f" ({', '.join(card.band_names)}) but scene {sid} ({info.path}) has {info.count}."
                " Train a model on this imagery: `geolabel train PROJECT`."
            )
    plans = {sid: grid_plan(stored.get(sid), info, sid, card) for sid, info in scenes.items()}
    target = Path(out_dir) if out_dir else prelabels_dir(project_path, card.model_version)
    if scheduler is None:
        model, card = load_checkpoint(chosen)
        predictor = TilePredictor(
            model, card, precision=precision, num_threads=num_threads, features=True
        )
        grids = {
            sid: plan if isinstance(plan, TileGrid) else plan.build() for sid, plan in plans.items()
        }
        outputs = _predict_locally(predictor, grids, parcels, target, batch_size, progress)
        threads = predictor.threads
    else:
        from geolabel.cluster import dask_client
        from geolabel.prelabel.distributed import predict_scenes

        with dask_client(scheduler) as client:
            n_workers = len(client.nthreads())
            outputs, threads, built = predict_scenes(
                client,
                chosen,
                list(plans.values()),
                parcels,
                target,
                batch_size=batch_size,
                precision=precision,
                num_threads=num_threads,
                progress=progress,
            )
        grids = dict(zip(plans, built, strict=True))
        notes.append(
            f"Ran on Dask ({scheduler}): {len(grids)} scene task(s), {n_workers} worker(s)."
        )
    zonal = pd.concat([o.zonal for o in outputs], ignore_index=True)
    zonal = zonal.sort_values("pixel_count", ascending=False, kind="stable")
    zonal = zonal.drop_duplicates("parcel_id")
    pre = parcel_prelabels(
        zonal, card.classes, taxonomy.parcel_class_ids, temperature=card.temperature
    )
    missing = len(parcels) - len(pre)
    if missing:
        notes.append(f"{missing} parcel(s) have no pixel in any scene and were not pre-labeled.")
    parcel_cls = [c for c in card.classes if c in set(taxonomy.parcel_class_ids)]
    parcels_csv = target / "parcels.csv"
    pre.assign(model_version=card.model_version).to_csv(parcels_csv, index=False)
    tiles = pd.concat([o.tiles for o in outputs], ignore_index=True)
    tiles.insert(0, "model_version", card.model_version)
    tiles_csv = target / "tiles.csv"
    tiles.to_csv(tiles_csv, index=False)
    parcel_emb = _merge_embeddings(
        [(o.parcel_ids, o.parcel_embedding) for o in outputs], set(pre["item"])
    )
    parcel_npz = save_embeddings(target / "parcel_embeddings.npz", *parcel_emb)
    tile_npz = save_embeddings(
        target / "tile_embeddings.npz",
        [i for o in outputs for i in o.tile_ids],
        np.concatenate([o.tile_embedding for o in outputs if len(o.tile_ids)]),
    )
    probas = [
        {c: round(float(v), 6) for c, v in zip(parcel_cls, row, strict=True)}
        for row in pre[[f"p_{c}" for c in parcel_cls]].to_numpy()
    ]
    stored_pre = pre[["item", "label", "confidence"]].copy()
    stored_pre["probas"] = pd.Series(probas, index=pre.index, dtype=object)
    footprints = tile_index(list(grids.values()), project_crs)
    layer = footprints[["tile_id", "geometry"]].merge(tiles, on="tile_id")
    with Project.open(project_path) as project:
        added = project.add_predictions(
            stored_pre,
            model_version=card.model_version,
            taxonomy_version=str(taxonomy.version),
            taxonomy_name=taxonomy.name,
            allowed_labels=taxonomy.class_ids,
        )
        _write_tile_layer(project, gpd.GeoDataFrame(layer, crs=footprints.crs), card.model_version)
    report = PrelabelReport(
        model_version=card.model_version,
        model_dir=str(chosen),
        out_dir=str(target),
        n_parcels=len(pre),
        n_added=added,
        n_tiles=len(tiles),
        class_maps=tuple(str(o.class_map) for o in outputs),
        confidence_maps=tuple(str(o.confidence_map) for o in outputs),
        parcels_csv=str(parcels_csv),
        tiles_csv=str(tiles_csv),
        parcel_embeddings=str(parcel_npz),
        tile_embeddings=str(tile_npz),
        label_counts={str(k): int(v) for k, v in pre["label"].value_counts().items()},
        mean_confidence=float(pre["confidence"].mean()) if len(pre) else float("nan"),
        temperature=card.temperature,
        precision=precision,
        threads=threads,
        seconds=time.perf_counter() - t0,
        notes=tuple(notes),
    )
    (target / "prelabel.json").write_text(json.dumps(asdict(report), indent=1) + "\n")
    return report


def _predict_locally(
    predictor: TilePredictor,
    grids: dict[str, TileGrid],
    parcels: gpd.GeoDataFrame,
    target: Path,
    batch_size: int,
    progress: Callable[[int, int], None] | None,
) -> list[SceneOutputs]:
    """Predict the scenes one after the other in this process."""
    total = sum(len(g) for g in grids.values())
    done_before = 0
    outputs = []
    for g in grids.values():
        offset = done_before

        def tick(done: int, offset: int = offset) -> None:
            if progress is not None:
                progress(offset + done, total)

        outputs.append(
            predict_scene(
                predictor,
                g,
                parcels.to_crs(g.scene.crs),
                target,
                batch_size=batch_size,
                progress=tick,
            )
        )
        done_before += len(g)
    return outputs


def _merge_embeddings(
    parts: list[tuple[list[str], np.ndarray]], keep: set[str]
) -> tuple[list[str], np.ndarray]:
    """One row per parcel (the first scene that saw it), restricted to ``keep``."""
    ids: list[str] = []
    rows: list[np.ndarray] = []
    seen: set[str] = set()
    for part_ids, vectors in parts:
        for i, v in zip(part_ids, vectors, strict=True):
            if i in keep and i not in seen:
                seen.add(i)
                ids.append(i)
                rows.append(v)
    width = next((v.shape[1] for _, v in parts if v.ndim == 2 and v.shape[1]), 0)
    return ids, np.stack(rows) if rows else np.zeros((0, width), dtype=np.float32)


def _write_tile_layer(project: Project, layer: gpd.GeoDataFrame, model_version: str) -> None:
    """Replace this model version's rows of the tile-uncertainty layer, keep the others."""
    try:
        old = project.read_layer(TILE_LAYER)
        old = old[old["model_version"] != model_version]
    except LayerError:
        old = None
    merged = layer if old is None or old.empty else pd.concat([old, layer], ignore_index=True)
    project.write_layer(gpd.GeoDataFrame(merged, crs=layer.crs), TILE_LAYER, overwrite=True)
