"""Benchmarks of the learning side: the paper's protocol, selection, MLIP vs DFT labels, the GPU check."""
