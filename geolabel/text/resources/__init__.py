"""Files shipped with the notice pipeline: span-ruler patterns and the training config."""
