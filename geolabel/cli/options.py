"""Shared pieces of the CLI: error handling at the edge, consoles and common options."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from geolabel.errors import GeolabelError

__all__ = ["JsonOption", "console", "err_console", "handle_errors", "print_json", "set_verbosity"]

P = ParamSpec("P")
R = TypeVar("R")

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one line of JSON instead of a table.")
]


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn geolabel errors into a one-line message and exit code 1, without a traceback.

    Anything else is a bug and keeps its traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except GeolabelError as exc:
            err_console.print(f"[bold red]Error:[/] {escape(str(exc))}")
            raise typer.Exit(code=1) from None

    return wrapper


def print_json(record: Any) -> None:
    """Print a typed record (dataclass) or plain data as one line of JSON."""
    data = asdict(record) if is_dataclass(record) and not isinstance(record, type) else record
    typer.echo(json.dumps(data, sort_keys=True, default=str))


def set_verbosity(verbose: int, quiet: int) -> None:
    """Map ``-v``/``-q`` counts to a logging level (WARNING by default)."""
    level = max(10, min(50, 30 - 10 * verbose + 10 * quiet))
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
