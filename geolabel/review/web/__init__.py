"""The expert review web app (``geolabel serve``): :func:`geolabel.review.web.app.create_app`."""

from __future__ import annotations

__all__: list[str] = []
