"""Structures: hosts, doped supercells, the Li site graph, its symmetry classes, stored surfaces."""
