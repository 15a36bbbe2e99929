"""Reviewer accounts of the review web app: one secret token each, stored only as a SHA-256.

``geolabel reviewers add NAME`` calls :func:`add_reviewer`, which prints the token once; the
``reviewers`` table keeps its SHA-256 (a token is 32 random bytes, so a plain hash is enough:
there is nothing to brute-force). Every write of the web app calls :func:`authenticate`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import pandas as pd

from geolabel.errors import ReviewerAuthError, ReviewError
from geolabel.review.tables import ensure_review_tables, read_connection, table_exists

if TYPE_CHECKING:
    from geolabel.store import Project

__all__ = ["Reviewer", "add_reviewer", "authenticate", "hash_token", "reviewers", "revoke_reviewer"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Reviewer:
    """A signed-in reviewer.

    Attributes:
        reviewer_id: The reviewer's name (also their annotator id in ``reviews``).
        role: ``reviewer``, or ``admin`` (may also apply taxonomy proposals).
    """

    reviewer_id: str
    role: Literal["reviewer", "admin"]


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest stored for a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_reviewer(
    project: Project, name: str, *, role: Literal["reviewer", "admin"] = "reviewer"
) -> str:
    """Create a reviewer and return their new token (shown once; only its hash is stored).

    Args:
        project: An open project.
        name: Reviewer name (letters, digits, ``_.@-``; up to 64 characters).
        role: ``reviewer`` or ``admin``.

    Returns:
        The token to give to the reviewer.

    Raises:
        ReviewError: The name is malformed or taken, or the role unknown.
    """
    if not _NAME_RE.match(name):
        raise ReviewError(
            f"Reviewer name {name!r} is not valid: use 1-64 letters, digits, '_', '.', '@' or "
            "'-', starting with a letter or digit."
        )
    if role not in ("reviewer", "admin"):
        raise ReviewError(f"Role {role!r} is not known; use 'reviewer' or 'admin'.")
    token = secrets.token_urlsafe(32)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    with project.transaction() as con:
        ensure_review_tables(con)
        if con.execute("SELECT 1 FROM reviewers WHERE reviewer_id = ?", (name,)).fetchone():
            raise ReviewError(
                f"Reviewer {name!r} already exists in {project.path}; choose another name (a "
                "lost token cannot be shown again: add the person under a new name)."
            )
        con.execute(
            "INSERT INTO reviewers (reviewer_id, token_sha256, role, created_at) "
            "VALUES (?, ?, ?, ?)",
            (name, hash_token(token), role, now),
        )
    return token


def authenticate(project: Project, token: str | None) -> Reviewer:
    """Return the reviewer a token belongs to.

    Args:
        project: An open project.
        token: The token sent with the request.

    Returns:
        The reviewer.

    Raises:
        ReviewerAuthError: No token, or a token that is unknown or revoked.
    """
    if not token:
        raise ReviewerAuthError(
            "This action needs a reviewer token; get one with `geolabel reviewers add NAME`."
        )
    with read_connection(project) as con:
        row = (
            con.execute(
                "SELECT reviewer_id, role FROM reviewers WHERE token_sha256 = ? "
                "AND revoked_at IS NULL",
                (hash_token(token),),
            ).fetchone()
            if table_exists(con, "reviewers")
            else None
        )
    if row is None:
        raise ReviewerAuthError("The reviewer token is not valid (unknown or revoked).")
    return Reviewer(reviewer_id=str(row[0]), role="admin" if row[1] == "admin" else "reviewer")


def revoke_reviewer(project: Project, name: str) -> None:
    """Revoke a reviewer's token.

    Args:
        project: An open project.
        name: The reviewer.

    Raises:
        ReviewError: No such active reviewer.
    """
    now = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    with project.transaction() as con:
        ensure_review_tables(con)
        cursor = con.execute(
            "UPDATE reviewers SET revoked_at = ? WHERE reviewer_id = ? AND revoked_at IS NULL",
            (now, name),
        )
        if cursor.rowcount == 0:
            raise ReviewError(f"No active reviewer {name!r} in {project.path}.")


def reviewers(project: Project) -> pd.DataFrame:
    """Return reviewers (``reviewer``, ``role``, ``created_at``, ``revoked_at``), never tokens."""
    columns = ["reviewer", "role", "created_at", "revoked_at"]
    with read_connection(project) as con:
        if not table_exists(con, "reviewers"):
            return pd.DataFrame(columns=columns)
        rows = con.execute(
            "SELECT reviewer_id, role, created_at, revoked_at FROM reviewers ORDER BY fid"
        ).fetchall()
    return pd.DataFrame.from_records(rows, columns=columns)
