"""geolabel.crowd."""
