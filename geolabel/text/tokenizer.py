"""The notice tokenizer: spaCy's English rules, adjusted where municipal notices break them.

spaCy's default English tokenizer splits text well for prose but trips on the forms notices
are made of. The adjustments, each tested in ``tests/test_text_tokenizer.py``:

========================================  =================================  ==================
text                                      default tokens                     notice tokens
========================================  =================================  ==================
``Main St/5th Ave``                       ``St/5th``                         ``St`` ``/`` ``5th``
``Oak Street-`` (line-end hyphen)         ``Street-``                        ``Street`` ``-``
``APN:123-456-789``                       ``APN:123`` ``-`` ``456`` …        ``APN`` ``:``
                                                                             ``123-456-789``
``APN#123456789``                         one token                          ``APN`` ``#`` ``1…``
``No.123-456-789``                        ``No.123`` ``-`` …                 ``No`` ``.`` ``1…``
``(123-456-789)`` (an APN)                ``123`` ``-`` ``456`` ``-`` ``789``  ``123-456-789``
``2025-03-03`` (an ISO date)              ``2025`` ``-`` ``03`` ``-`` ``03``   ``2025-03-03``
``Block 12,Lot 4`` (OCR lost the space)   ``12,Lot``                         ``12`` ``,`` ``Lot``
``9 a.m.–4 p.m.``                         ``a.m.–4``                         ``a.m.`` ``–`` ``4``
``7:00PM``                                ``7:00PM``                         ``7:00`` ``PM``
``BZA-25-001`` (a case number)            ``BZA-25`` ``-`` ``001``             ``BZA-25-001``
``Wed., March 5``                         ``We`` ``d.`` ``,`` …              ``Wed`` ``.`` ``,`` …
``Ridgeway Ltd.`` (end of a sentence)     ``Ltd.``                           ``Ltd`` ``.``
========================================  =================================  ==================

Groups of digits joined by hyphens (three groups or more: APNs, ISO dates) stay one token, so
a parcel id is a single token a pattern can test with one regular expression; two groups
(``1-5 June``, a phone number's ``012-4708``) are still split as before. Slashes between
digits are left alone, so ``03/03/2025`` and ``24/01234/FUL`` stay whole.

The tokenizer is registered as ``geolabel.notice_tokenizer.v1`` so a pipeline config can name
it (``[nlp.tokenizer] @tokenizers = "geolabel.notice_tokenizer.v1"``); its rules are saved with
a trained pipeline, so loading one does not need this module's code, only training does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from spacy.util import (
    compile_infix_regex,
    compile_prefix_regex,
    compile_suffix_regex,
    registry,
)

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokenizer import Tokenizer

__all__ = [
    "NOTICE_INFIXES",
    "NOTICE_SUFFIXES",
    "TOKEN_MATCH",
    "customize_tokenizer",
    "make_notice_tokenizer",
]

NOTICE_INFIXES: Final[tuple[str, ...]] = (
    # a slash after a word or an abbreviation: "St/5th", "Ave./Main", "and/or"
    r"(?<=[A-Za-z.])/(?=[A-Za-z0-9])",
    # a colon or hash between a lead-in word and a number: "APN:123", "APN#123"
    r"(?<=[A-Za-z])[:#](?=[0-9])",
    # a period between an abbreviation and a number: "No.123"
    r"(?<=[A-Za-z])\.(?=[0-9])",
    # a comma between a number and a word when OCR lost the space: "12,Lot"
    r"(?<=[0-9]),(?=[A-Za-z])",
    # a dash after an abbreviation or a word and before a number: "a.m.–4", "AM–4:00"
    r"(?<=\.)-(?=[0-9])",
    r"(?<=[A-Za-z.])[–—](?=[0-9])",
    r"(?<=[AaPp][Mm])-(?=[0-9])",
)
"""Infix rules added to spaCy's English infixes."""

NOTICE_SUFFIXES: Final[tuple[str, ...]] = (
    # a hyphen ending a word (line-end hyphenation, "Oak Street- and ...")
    r"(?<=[A-Za-z0-9.])-$",
    # am/pm glued to a clock time: "7:00PM", "7:00p.m."
    r"(?<=[0-9])(?:[AaPp]\.?[Mm]\.?)$",
)
"""Suffix rules added to spaCy's English suffixes."""

TOKEN_MATCH: Final[str] = r"^(?:\d+(?:-\d+){2,}[A-Za-z]?|[A-Z]{1,5}\d{0,4}-\d{2,}(?:-[A-Z0-9]+)+)$"
"""Strings kept as one token: three or more digit groups joined by hyphens (APNs, ISO dates)
and case or file numbers (``BZA-25-001``, ``PA-25-0012``)."""

_NOT_EXCEPTIONS: Final = frozenset(
    {"wed", "Wed", "WED", "St.", "Co.", "Inc.", "Ltd.", "Corp.", "Bros."}
)
"""spaCy exceptions dropped: "Wed" is Wednesday in a notice, not "we'd"; and the period of
abbreviations that end names ("Oak St.", "Acme Co.") is its own token, so a span can end
before it when it closes the sentence ("... by Ridgeway Ltd.")."""

_DEFAULT_DIGIT_INFIX: Final = r"(?<=[0-9])[+\-\*^](?=[0-9-])"
# spaCy's rule above splits every hyphen between digits. Ours splits only hyphens that are not
# part of a chain of three or more digit groups: not followed by "digits-digit" and not
# preceded by "digit-digits" (one fixed-width look-behind per group length, 1 to 5 digits).
_DIGIT_INFIX: Final = (
    r"(?<=[0-9])[+\*^](?=[0-9-])"
    r"|(?<=[0-9])"
    + "".join(rf"(?<![0-9]-[0-9]{{{n}}})" for n in range(1, 6))
    + r"-(?=[0-9-])(?![0-9]+-[0-9])"
)


def customize_tokenizer(nlp: Language) -> Tokenizer:
    """Build spaCy's English tokenizer for ``nlp`` with the notice adjustments.

    Args:
        nlp: The pipeline whose vocab and defaults (exceptions, prefixes...) are used.

    Returns:
        A new tokenizer; assign it to ``nlp.tokenizer``.
    """
    from spacy.tokenizer import Tokenizer

    defaults = nlp.Defaults
    prefixes = list(defaults.prefixes or ())
    suffixes = list(NOTICE_SUFFIXES) + list(defaults.suffixes or ())
    infixes = [
        _DIGIT_INFIX if rule == _DEFAULT_DIGIT_INFIX else rule for rule in defaults.infixes or ()
    ] + list(NOTICE_INFIXES)
    return Tokenizer(
        nlp.vocab,
        rules={
            k: v
            for k, v in (defaults.tokenizer_exceptions or {}).items()
            if k not in _NOT_EXCEPTIONS
        },
        prefix_search=compile_prefix_regex(prefixes).search,
        suffix_search=compile_suffix_regex(suffixes).search,
        infix_finditer=compile_infix_regex(infixes).finditer,
        token_match=re.compile(TOKEN_MATCH).match,
        url_match=defaults.url_match,
    )


@registry.tokenizers("geolabel.notice_tokenizer.v1")
def make_notice_tokenizer() -> Callable[[Language], Tokenizer]:
    """Return the registered tokenizer factory (for ``[nlp.tokenizer]`` in a config).

    Returns:
        A function that builds the notice tokenizer for an ``nlp`` object.
    """
    return customize_tokenizer
