"""One repair run end to end: configuration, the method registry, models, the run folder, distribution, precision."""
