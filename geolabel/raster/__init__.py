"""geolabel.raster."""
