"""Pre-labeling land use with a segmentation model, pooled per parcel with calibrated confidence."""
