"""Tiles at the speed of one read: geolabel's tile delivery against a full read and torchgeo.

Generates an 8192 × 8192 4-band uint8 COG (tiled 512, deflate, MINISBLACK; seeded) in a
temporary folder and, for the 256 px / 32 px overlap grid (1,369 tiles), measures in one run:

* the baseline: one full ``DatasetReader.read()`` with ``GDAL_NUM_THREADS=2`` (every block
  decompressed once, on both cores: the practical limit);
* geolabel: ``iter_tile_batches`` delivering every tile as ``(16, 4, 256, 256)`` arrays (and,
  as an extra, normalised ``float32`` batches, which is what torchgeo hands out);
* torchgeo, when importable: ``RasterDataset`` + ``GridGeoSampler`` on the same grid, in one
  process and through a ``DataLoader`` with 2 workers; the faster of the two is compared;
* the peak memory (``ru_maxrss`` of a child process) of mosaicking 8 classes over the scene;
* zonal statistics of 10,000 parcels with 8 classes, streamed strip by strip (as a mosaic feeds
  them) and from an 8-band float32 probability GeoTIFF.

Timings are the best of ``--repeat`` runs, baseline and geolabel alternating, so that other
work on the machine hurts both alike; the CPU time of both (all threads) is printed too, as a
figure that other load on the machine moves less. Targets: geolabel ≤ 1.25× the full read,
≥ 3× torchgeo's tiles/s, mosaic peak ≤ 1.5 GB. The last line is one JSON object.

Run: ``python benchmarks/tiling.py [--repeat 5] [--no-torchgeo]``. torchgeo is not a geolabel
dependency; to compare, install it beside geolabel (``pip install torchgeo --no-deps`` plus
the few light packages it imports).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from geolabel.raster.io import write_cog
from geolabel.raster.reader import BandStats, iter_tile_batches
from geolabel.raster.tiling import tile_scene

SIZE_PX = 8192
TILE = 256
OVERLAP = 32
CLASSES = 8
PARCELS_PER_SIDE = 100
TRANSFORM = Affine(0.5, 0.0, 500_000.0, 0.0, -0.5, 4_100_000.0)
CRS = "EPSG:32610"


def make_scene(path: Path) -> None:
    """A seeded image with smooth structure and sensor noise (compresses like imagery)."""
    rng = np.random.default_rng(0)
    y = np.arange(SIZE_PX, dtype=np.float32)[:, None]
    x = np.arange(SIZE_PX, dtype=np.float32)[None, :]
    arr = np.empty((4, SIZE_PX, SIZE_PX), np.uint8)
    for b in range(4):
        base = 100 + 40 * np.sin(x / (97 + 13 * b)) * np.cos(y / (131 + 7 * b))
        base += 30 * np.sin((x + y) / (41 + b))
        arr[b] = np.clip(base, 0, 230).astype(np.uint8) + rng.integers(
            0, 24, arr.shape[1:], np.uint8
        )
    write_cog(path, arr, transform=TRANSFORM, crs=CRS, blocksize=512)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # all threads of this process
    return usage.ru_utime + usage.ru_stime


def full_read(path: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one full read."""
    with rasterio.Env(GDAL_NUM_THREADS="2"), rasterio.open(path) as ds:
        t0, c0 = time.perf_counter(), _cpu()
        ds.read()
        return time.perf_counter() - t0, _cpu() - c0


def geolabel_read(grid, stats: BandStats | None = None) -> tuple[float, float]:
    """Wall and CPU seconds of delivering every tile."""
    t0, c0 = time.perf_counter(), _cpu()
    n = 0
    for batch in iter_tile_batches(grid, batch_size=16, normalise=stats):
        n += len(batch)
    elapsed, cpu = time.perf_counter() - t0, _cpu() - c0
    assert n == len(grid)
    return elapsed, cpu


def check_tiles(path: Path, grid) -> None:
    batch = next(iter_tile_batches(grid, grid.tiles[700:716], batch_size=16))
    with rasterio.open(path) as ds:
        for tile, pixels in zip(batch.tiles, batch.array, strict=True):
            assert np.array_equal(pixels, ds.read(window=tile.window)), tile


def torchgeo_times(folder: Path) -> dict[str, float] | None:
    try:
        import torch
        from torch.utils.data import DataLoader
        from torchgeo.datasets import RasterDataset, stack_samples
        from torchgeo.samplers import GridGeoSampler, Units
    except ImportError as exc:
        print(f"torchgeo comparison skipped: torchgeo is not importable ({exc})")
        return None
    torch.set_num_threads(2)

    class Scene(RasterDataset):  # type: ignore[misc]
        filename_glob = "scene.tif"

    out: dict[str, float] = {}
    # A DataLoader with workers first, on a dataset the parent never read (forked workers
    # sharing an open GDAL handle would corrupt each other's reads).
    ds = Scene(paths=str(folder))
    sampler = GridGeoSampler(ds, size=TILE, stride=TILE - OVERLAP, units=Units.PIXELS)
    assert len(sampler) == 1369, len(sampler)
    loader = DataLoader(ds, sampler=sampler, batch_size=16, num_workers=2, collate_fn=stack_samples)
    t0 = time.perf_counter()
    n = sum(b["image"].shape[0] for b in loader)
    out["dataloader_2_workers"] = time.perf_counter() - t0
    assert n == 1369
    ds = Scene(paths=str(folder))
    t0 = time.perf_counter()
    n = sum(1 for q in GridGeoSampler(ds, TILE, TILE - OVERLAP, units=Units.PIXELS) if ds[q])
    out["one_process"] = time.perf_counter() - t0
    return out


def _proc_status_kb(field: str) -> int:
    """A ``/proc/self/status`` figure in kB (``VmHWM``: peak resident memory of this process).

    Not ``ru_maxrss``: Linux carries that over from the parent across fork and exec, so a
    child started by a big parent would report the parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: best effort


def mosaic_child(scene: str, out_dir: str) -> None:
    """Mosaic 8 classes over the scene, in block order; print the peak RSS as JSON."""
    from geolabel.raster.mosaic import Mosaic

    grid = tile_scene(scene, size=TILE, overlap=OVERLAP)
    rss_before = _proc_status_kb("VmHWM")
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(CLASSES, TILE, TILE)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(axis=0, keepdims=True)
    t0 = time.perf_counter()
    with Mosaic(grid, [f"c{k}" for k in range(CLASSES)], workdir=out_dir) as mosaic:
        most = 0
        for tile in grid.tiles:
            mosaic.add(tile, probs)
            most = max(most, mosaic.open_strips)
        mosaic.write(Path(out_dir) / "classes.tif", Path(out_dir) / "confidence.tif")
    seconds = time.perf_counter() - t0
    peak = _proc_status_kb("VmHWM")
    print(
        json.dumps(
            {
                "peak_gb": peak / 1024**2,
                "before_gb": rss_before / 1024**2,
                "seconds": seconds,
                "max_open_strips": most,
            }
        )
    )


def parcels_grid():
    import geopandas as gpd
    from shapely.geometry import Polygon

    rng = np.random.default_rng(1)
    side = SIZE_PX * TRANSFORM.a / PARCELS_PER_SIDE
    x0, y1 = TRANSFORM.c, TRANSFORM.f
    polys, ids = [], []
    for i in range(PARCELS_PER_SIDE):
        for j in range(PARCELS_PER_SIDE):
            cx, cy = x0 + (j + 0.5) * side, y1 - (i + 0.5) * side
            h = side / 2 * rng.uniform(0.7, 0.95, 4)
            polys.append(
                Polygon(
                    [
                        (cx - h[0], cy - h[1]),
                        (cx + h[2], cy - h[0]),
                        (cx + h[1], cy + h[3]),
                        (cx - h[3], cy + h[2]),
                    ]
                )
            )
            ids.append(f"P{i:03d}{j:03d}")
    return gpd.GeoDataFrame({"parcel_id": ids}, geometry=polys, crs=CRS)


def zonal_times(folder: Path) -> dict[str, float]:
    from geolabel.raster.zonal import ZonalAccumulator, zonal_class_stats

    parcels = parcels_grid()
    names = [f"c{k}" for k in range(CLASSES)]
    rng = np.random.default_rng(2)
    raw = rng.random((CLASSES, 256, SIZE_PX), dtype=np.float32)
    strip = raw / raw.sum(axis=0, keepdims=True)
    t0 = time.perf_counter()
    acc = ZonalAccumulator(
        parcels, classes=names, transform=TRANSFORM, width=SIZE_PX, height=SIZE_PX, crs=CRS
    )
    for row in range(0, SIZE_PX, 256):
        acc.add_strip(row, strip)
    frame = acc.result()
    streamed = time.perf_counter() - t0
    assert len(frame) == 10_000 and (frame.pixel_count > 0).all()
    path = folder / "probabilities.tif"
    profile = {
        "driver": "GTiff",
        "width": SIZE_PX,
        "height": SIZE_PX,
        "count": CLASSES,
        "dtype": "float32",
        "crs": CRS,
        "transform": TRANSFORM,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "photometric": "MINISBLACK",
        "BIGTIFF": "YES",
    }
    with rasterio.open(path, "w", **profile) as ds:
        for row in range(0, SIZE_PX, 256):
            ds.write(strip, window=((row, row + 256), (0, SIZE_PX)))
    t0 = time.perf_counter()
    frame = zonal_class_stats(path, parcels, classes=names)
    from_file = time.perf_counter() - t0
    assert len(frame) == 10_000
    path.unlink()
    return {"streamed": streamed, "from_file": from_file}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each read; best kept")
    parser.add_argument("--no-torchgeo", action="store_true", help="skip the torchgeo runs")
    parser.add_argument("--mosaic-child", nargs=2, metavar=("SCENE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mosaic_child:
        mosaic_child(*args.mosaic_child)
        return

    with tempfile.TemporaryDirectory(prefix="geolabel-bench-") as tmp:
        folder = Path(tmp)
        scene = folder / "scene.tif"
        t0 = time.perf_counter()
        make_scene(scene)
        print(
            f"scene: {SIZE_PX} x {SIZE_PX} x 4 uint8 COG, {scene.stat().st_size / 1e6:.0f} MB,"
            f" generated in {time.perf_counter() - t0:.1f} s"
        )
        grid = tile_scene(scene, size=TILE, overlap=OVERLAP)
        print(f"grid: {len(grid)} tiles of {TILE} px, overlap {OVERLAP} px")
        check_tiles(scene, grid)
        stats = BandStats(
            "S001",
            (1, 2, 3, 4),
            (110.0,) * 4,
            (30.0,) * 4,
            (0.0,) * 4,
            (255.0,) * 4,
            (50.0,) * 4,
            (200.0,) * 4,
            1,
            1,
            0,
        )

        full, ours, ours_f32, cpu_full, cpu_ours = [], [], [], [], []
        for _ in range(args.repeat):
            wall, cpu = full_read(scene)
            full.append(wall)
            cpu_full.append(cpu)
            wall, cpu = geolabel_read(grid)
            ours.append(wall)
            cpu_ours.append(cpu)
            ours_f32.append(geolabel_read(grid, stats)[0])
        t_full, t_ours, t_f32 = min(full), min(ours), min(ours_f32)
        ratio = t_ours / t_full
        cpu_ratio = min(cpu_ours) / min(cpu_full)
        print(f"full read (GDAL_NUM_THREADS=2): {t_full:.3f} s  (runs: {_fmt(full)})")
        print(
            f"geolabel, {len(grid)} tiles as uint8 batches: {t_ours:.3f} s = {ratio:.2f}x the"
            f" full read  (target <= 1.25x; runs: {_fmt(ours)})"
        )
        print(
            f"CPU time (all threads; less sensitive to other load on the machine): full read"
            f" {min(cpu_full):.2f} s, geolabel {min(cpu_ours):.2f} s = {cpu_ratio:.2f}x"
        )
        print(
            f"geolabel, normalised float32 batches: {t_f32:.3f} s = {t_f32 / t_full:.2f}x"
            f"  (runs: {_fmt(ours_f32)})"
        )

        speedup = speedup_f32 = None
        tg = None if args.no_torchgeo else torchgeo_times(folder)
        t_tg = None
        if tg is not None:
            t_tg = min(tg.values())
            speedup = t_tg / t_ours
            speedup_f32 = t_tg / t_f32
            print(
                f"torchgeo RasterDataset + GridGeoSampler: one process {tg['one_process']:.2f} s,"
                f" DataLoader(2 workers) {tg['dataloader_2_workers']:.2f} s; best {t_tg:.2f} s"
            )
            print(
                f"geolabel speedup vs torchgeo: {speedup:.1f}x tiles/s (uint8),"
                f" {speedup_f32:.1f}x (float32)  (target >= 3x)"
            )

        child = subprocess.run(
            [sys.executable, __file__, "--mosaic-child", str(scene), tmp],
            capture_output=True,
            text=True,
            check=True,
        )
        mosaic = json.loads(child.stdout.strip().splitlines()[-1])
        print(
            f"mosaic of {CLASSES} classes: peak RSS {mosaic['peak_gb']:.2f} GB (process with"
            f" geolabel imported: {mosaic['before_gb']:.2f} GB), {mosaic['seconds']:.1f} s,"
            f" at most {mosaic['max_open_strips']} strips open  (target <= 1.5 GB)"
        )

        zonal = zonal_times(folder)
        print(
            f"zonal statistics, 10,000 parcels x {CLASSES} classes on {SIZE_PX}^2 px:"
            f" {zonal['streamed']:.2f} s streamed strip by strip,"
            f" {zonal['from_file']:.2f} s from an 8-band float32 GeoTIFF"
        )

    print(
        json.dumps(
            {
                "tiles": len(grid),
                "full_read_seconds": round(t_full, 3),
                "geolabel_seconds": round(t_ours, 3),
                "geolabel_over_full_read": round(ratio, 3),
                "geolabel_cpu_over_full_read_cpu": round(cpu_ratio, 3),
                "geolabel_float32_over_full_read": round(t_f32 / t_full, 3),
                "torchgeo_seconds": None if t_tg is None else round(t_tg, 3),
                "speedup_vs_torchgeo": None if speedup is None else round(speedup, 2),
                "speedup_vs_torchgeo_float32": None
                if speedup_f32 is None
                else round(speedup_f32, 2),
                "mosaic_peak_gb": round(mosaic["peak_gb"], 3),
                "mosaic_seconds": round(mosaic["seconds"], 2),
                "zonal_seconds_10k_parcels": round(zonal["streamed"], 3),
                "zonal_from_file_seconds_10k_parcels": round(zonal["from_file"], 3),
                "load_average_1min": round(os.getloadavg()[0], 2),
            }
        )
    )


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
