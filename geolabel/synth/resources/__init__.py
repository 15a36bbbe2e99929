"""Files shipped with the sample generator: the taxonomies it copies into a sample."""
