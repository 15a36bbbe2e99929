"""Municipal notices: a spaCy pipeline (rules + trained NER) and links from entities to parcels.

Modules: :mod:`~geolabel.text.tokenizer` (tokenizer adjustments), :mod:`~geolabel.text.patterns`
(span-ruler patterns), :mod:`~geolabel.text.pipeline` (building and loading pipelines, the
precedence between rules and model), :mod:`~geolabel.text.data` (readers),
:mod:`~geolabel.text.train` (training), :mod:`~geolabel.text.evaluate` (span scores),
:mod:`~geolabel.text.linking` (gazetteer and linking), :mod:`~geolabel.text.extract`
(extraction, outputs, per-parcel impacts), :mod:`~geolabel.text.crowd` (consensus spans and
agreement). spaCy is imported by these modules, not by this package's ``__init__``.
"""

__all__: list[str] = []
