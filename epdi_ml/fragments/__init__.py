"""Potential maps and fragments: the map on the density isosurface, crops, colour scales, augmentation."""
