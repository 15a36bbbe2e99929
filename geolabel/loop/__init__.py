"""The hybrid loop: active learning, routing by difficulty, collection, audits, the cost knob.

Import the parts from their modules (``geolabel.loop.rounds.run_round``,
``geolabel.loop.demo.run_demo``...); this package imports nothing heavy on its own.
"""
