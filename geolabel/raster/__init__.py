"""geolabel.raster: tile grids, block-order tile reading, mosaicking, polygons and zonal stats.

The pieces, in the order the pre-label loop uses them::

    grid = tile_scene("scene.tif", size=256, overlap=32)          # or project_tile_grids(project)
    stats = compute_band_stats(grid)                               # or project_band_stats(project)
    with Mosaic(grid, classes) as mosaic:
        for batch in iter_tile_batches(grid, batch_size=16, normalise=stats):
            mosaic.add_batch(batch.tiles, predict(batch.array), valid=batch.valid)
        mosaic.write("classes.tif", "confidence.tif")
    per_parcel = zonal_class_stats(probabilities, parcels, classes=classes, ...)
"""

from geolabel.raster.index import (
    project_band_stats,
    project_scenes,
    project_tile_grids,
    tile_project,
)
from geolabel.raster.io import CogStripWriter, RasterInfo, open_scene_info, write_cog
from geolabel.raster.mosaic import Mosaic, MosaicResult, blend_window
from geolabel.raster.polygonize import polygonize_class_map
from geolabel.raster.reader import (
    BandStats,
    TileBatch,
    compute_band_stats,
    iter_tile_batches,
    read_strips,
)
from geolabel.raster.tiling import Tile, TileGrid, tile_index, tile_scene, tile_windows
from geolabel.raster.zonal import ZonalAccumulator, zonal_class_stats

__all__ = [
    "BandStats",
    "CogStripWriter",
    "Mosaic",
    "MosaicResult",
    "RasterInfo",
    "Tile",
    "TileBatch",
    "TileGrid",
    "ZonalAccumulator",
    "blend_window",
    "compute_band_stats",
    "iter_tile_batches",
    "open_scene_info",
    "polygonize_class_map",
    "project_band_stats",
    "project_scenes",
    "project_tile_grids",
    "read_strips",
    "tile_index",
    "tile_project",
    "tile_scene",
    "tile_windows",
    "write_cog",
    "zonal_class_stats",
]
