"""Pre-labeling runs on real imagery of other band counts, dtypes, CRSs and nodata, unchanged.

Each scene of ``../shared/real`` gets a project with a 4 × 4 grid of parcels over it, a few of
them labeled from the scene's own pixels (brighter or darker than the median), a briefly trained
model, and a pre-label run. Bands, dtype and normalisation must come from the data.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from pyproj import CRS
from shapely.geometry import box

from geolabel.prelabel.model import ModelConfig, load_checkpoint
from geolabel.prelabel.pipeline import prelabel_project, train_project
from geolabel.prelabel.train import TrainConfig
from geolabel.project import init_project
from geolabel.raster.io import open_scene_info
from geolabel.store import Project
from tests.conftest import REAL

TINY = TrainConfig(
    model=ModelConfig(encoder_depth=3, decoder_channels=(16, 8, 8)),
    tile_size=128,
    batch_size=4,
    steps_per_epoch=2,
    max_epochs=1,
    min_epochs=1,
    num_threads=1,
)

CASES = {
    "pan_uint16_wgs84": REAL / "spacenet3_vegas_roads" / "road_mask_input.tif",
    "rgb_uint8_nodata": REAL / "landsat7_rasterio" / "RGB.byte.tif",
}


def _project_on(scene: Path, tmp: Path) -> Path:
    info = open_scene_info(scene)
    footprint = gpd.GeoSeries([box(*info.bounds)], crs=info.crs)
    crs = footprint.estimate_utm_crs() if CRS.from_user_input(info.crs).is_geographic else info.crs
    x0, y0, x1, y1 = footprint.to_crs(crs).total_bounds
    dx, dy = (x1 - x0) / 4, (y1 - y0) / 4
    cells = [
        box(x0 + i * dx, y0 + j * dy, x0 + (i + 1) * dx, y0 + (j + 1) * dy)
        for j in range(4)
        for i in range(4)
    ]
    parcels = gpd.GeoDataFrame(
        {"parcel_id": [f"R{k:02d}" for k in range(16)]}, geometry=cells, crs=crs
    )
    parcels.to_file(tmp / "parcels.gpkg", layer="parcels")
    project = tmp / "real.gpkg"
    init_project(project, scenes=[scene], parcels=tmp / "parcels.gpkg", crs=str(crs))
    # Labels from the scene's own pixels: the central parcels, brighter or darker than median.
    with rasterio.open(scene) as ds:
        image = ds.read(1).astype(float)
        means = []
        for geom in parcels.to_crs(ds.crs).geometry:
            window = rasterio.windows.from_bounds(*geom.bounds, transform=ds.transform)
            r0, c0 = max(int(window.row_off), 0), max(int(window.col_off), 0)
            block = image[r0 : r0 + int(window.height), c0 : c0 + int(window.width)]
            means.append(block[block > 0].mean() if (block > 0).any() else 0.0)
    means = np.asarray(means)
    labeled = [5, 6, 9, 10, 0, 15]
    cut = np.median(means[labeled])
    rows = [
        {"item": f"R{k:02d}", "annotator": "expert-1",
         "label": "commercial" if means[k] >= cut else "residential"}
        for k in labeled
    ]  # fmt: skip
    pd.DataFrame(rows).to_csv(tmp / "labels.csv", index=False)
    with Project.open(project) as p:
        p.import_annotations_csv(tmp / "labels.csv", allowed_labels=p.current_taxonomy().class_ids)
    return project


@pytest.mark.parametrize("case", sorted(CASES))
def test_prelabel_real_scene(case, tmp_path):
    scene = CASES[case]
    if not scene.exists():
        pytest.skip(f"{scene} is not here (../shared/real is outside the repository)")
    info = open_scene_info(scene)
    project = _project_on(scene, tmp_path)
    trained = train_project(project, config=TINY)
    _, card = load_checkpoint(trained.model_dir)
    assert card.bands == tuple(range(1, info.count + 1)) and card.dtype == info.dtype
    with rasterio.open(scene) as ds:
        pixels = ds.read()
        nodata = ds.nodata
    # A pixel is nodata when every band is (geolabel's rule); statistics come from the rest.
    valid = (
        ~(pixels == nodata).all(axis=0) if nodata is not None else np.ones(pixels.shape[1:], bool)
    )
    assert card.mean[0] == pytest.approx(pixels[0][valid].mean(), rel=1e-3)
    report = prelabel_project(project, num_threads=1)
    s = card.input_scale
    with rasterio.open(report.class_maps[0]) as ds:  # at the model's resolution
        classes = ds.read(1)
        assert ds.crs == rasterio.crs.CRS.from_user_input(info.crs)
        assert ds.res == pytest.approx((info.res[0] * s, info.res[1] * s))
    assert classes.shape == (info.height // s, info.width // s)
    cells = valid[: classes.shape[0] * s, : classes.shape[1] * s]
    cells = cells.reshape(classes.shape[0], s, classes.shape[1], s).mean(axis=(1, 3)) > 0.5
    covered = classes != 255
    assert covered[cells].all()  # every valid cell has a class
    assert not covered[~cells].any()  # nodata (the Landsat collar): no class
    with Project.open(project) as p:
        stored = p.predictions(report.model_version)
    assert len(stored) == report.n_parcels >= 6
    assert set(stored["label"]) <= set(card.classes)
