"""geolabel: land-use labels from satellite imagery, parcel maps and municipal notices."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
