"""geolabel: land-use labels from satellite imagery, parcel maps and municipal notices."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from geolabel.query import open_project

__all__ = ["__version__", "open_project"]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """Import the public API on first use, so ``import geolabel`` stays light."""
    if name == "open_project":
        from geolabel.query import open_project

        return open_project
    raise AttributeError(f"module 'geolabel' has no attribute {name!r}")
