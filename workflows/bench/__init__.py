"""Benchmarks of the workflow side: DFT CINEB starts, campaigns through Slurm."""
