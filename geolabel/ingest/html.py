"""Text out of saved notice pages: a real HTML parser, boilerplate (menus, footers...) dropped."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from bs4 import BeautifulSoup, NavigableString, Tag

__all__ = ["PageText", "extract_page", "html_to_text"]

_DROP_TAGS: Final = (
    "script",
    "style",
    "noscript",
    "template",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "iframe",
    "svg",
    "button",
    "select",
    "input",
    "head",
)
_BOILERPLATE: Final = re.compile(
    r"(^|[-_ ])(nav|navbar|menu|footer|header|sidebar|breadcrumbs?|cookies?|banner|share|social|"
    r"skip|subscribe|related|advert|ads|promo|masthead|toolbar|pager|pagination)($|[-_ ])",
    re.IGNORECASE,
)
_BLOCKS: Final = frozenset(
    (
        "p",
        "div",
        "section",
        "article",
        "main",
        "li",
        "ul",
        "ol",
        "pre",
        "blockquote",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "table",
        "tr",
        "dl",
        "dt",
        "dd",
        "address",
        "figure",
        "figcaption",
        "body",
        "html",
    )
)
_SPACE: Final = re.compile(r"[ \t\r\n\f\v\u00a0]+")


@dataclass(frozen=True, slots=True)
class PageText:
    """What a notice page holds once markup and boilerplate are gone.

    Attributes:
        title: The first ``<h1>`` of the content (else the ``<title>``), or None.
        text: The content's text: one paragraph per block element, separated by a blank
            line; ``<br>`` kept as a line break.
        published: The ``datetime`` of the first ``<time>`` in the content, else a
            ``<meta>`` publication date, else None.
        meta: ``<meta name|property=... content=...>`` pairs, names lower-cased.
    """

    title: str | None
    text: str
    published: str | None
    meta: dict[str, str] = field(default_factory=dict)


def _is_boilerplate(tag: Tag) -> bool:
    if tag.name in _DROP_TAGS:
        return True
    if str(tag.get("role", "")).lower() in ("navigation", "banner", "contentinfo", "search"):
        return True
    if tag.get("hidden") is not None or tag.get("aria-hidden") == "true":
        return True
    classes: Any = tag.get("class") or []
    names = [*(classes if isinstance(classes, list) else [str(classes)]), str(tag.get("id", ""))]
    return any(_BOILERPLATE.search(str(n)) for n in names if n)


def _drop_boilerplate(root: Tag) -> None:
    for tag in list(root.find_all(True)):
        if not getattr(tag, "decomposed", False) and _is_boilerplate(tag):
            tag.decompose()


def _first_content(root: Tag, name: str) -> Tag | None:
    """First ``name`` tag of ``root`` not inside boilerplate (an article's own header counts)."""
    for tag in root.find_all(name):
        parent = tag.parent
        inside = False
        while parent is not None and parent is not root:
            if _is_boilerplate(parent) and not (
                parent.name == "header" and parent.find_parent("article") is not None
            ):
                inside = True
                break
            parent = parent.parent
        if not inside:
            return tag
    return None


def _blocks(node: Tag) -> list[str]:
    """Text of ``node`` as paragraphs: block children start new paragraphs, ``<br>`` a line."""
    paragraphs: list[str] = []
    current: list[str] = []

    def flush() -> None:
        joined = "".join(current)
        lines = [_SPACE.sub(" ", line).strip() for line in joined.split("\n")]
        text = "\n".join(line for line in lines if line)
        if text:
            paragraphs.append(text)
        current.clear()

    def walk(tag: Tag) -> None:
        for child in tag.children:
            if isinstance(child, NavigableString):
                if type(child) is NavigableString:  # not comments, CDATA, doctypes
                    current.append(str(child).replace("\n", " "))
            elif isinstance(child, Tag):
                if child.name == "br":
                    current.append("\n")
                elif child.name in _BLOCKS:
                    flush()
                    walk(child)
                    flush()
                else:
                    walk(child)

    walk(node)
    flush()
    return paragraphs


def html_to_text(markup: str) -> str:
    """Return the readable text of an HTML fragment (feed summaries, portal fields).

    Args:
        markup: HTML (or plain text, returned tidied).

    Returns:
        Paragraphs separated by a blank line.
    """
    soup = BeautifulSoup(markup, "html.parser")
    _drop_boilerplate(soup)
    return "\n\n".join(_blocks(soup))


def extract_page(markup: str) -> PageText:
    """Extract a notice page: its title, text, publication date and meta tags.

    The content is the first ``<article>``, else ``<main>`` (or ``role="main"``), else the
    ``<body>``. Scripts, styles, navigation, headers, footers, asides, forms and elements
    whose class or id says menu, breadcrumb, cookie, share, sidebar... are dropped first.
    The title ``<h1>`` and the ``<time>`` element are taken out of the text.

    Args:
        markup: The page's HTML.

    Returns:
        The page's parts.
    """
    soup = BeautifulSoup(markup, "html.parser")
    meta: dict[str, str] = {}
    for tag in soup.find_all("meta"):
        name = tag.get("name") or tag.get("property") or tag.get("itemprop")
        content = tag.get("content")
        if name and content is not None:
            meta[str(name).strip().lower()] = str(content).strip()
    page_title = soup.title.get_text(" ", strip=True) if soup.title else None
    body = soup.body or soup
    found = body.find("article") or body.find("main") or body.find(True, attrs={"role": "main"})
    root = found if isinstance(found, Tag) else body
    title: str | None = None
    heading = _first_content(root, "h1")
    if heading is not None:
        title = _SPACE.sub(" ", heading.get_text(" ")).strip() or None
        heading.decompose()
    published: str | None = None
    time_tag = _first_content(root, "time")
    if time_tag is not None:
        published = str(time_tag.get("datetime") or time_tag.get_text(" ", strip=True)) or None
        time_tag.decompose()
    _drop_boilerplate(root)
    if published is None:
        for key in ("article:published_time", "dc.date", "date", "published", "pubdate"):
            if meta.get(key):
                published = meta[key]
                break
    text = "\n\n".join(_blocks(root))
    return PageText(title=title or page_title or None, text=text, published=published, meta=meta)
