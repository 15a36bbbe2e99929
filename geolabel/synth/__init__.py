"""geolabel.synth."""
