"""Learning half of EPDI: potential maps, fragments, datasets, models, selection, profiles."""
