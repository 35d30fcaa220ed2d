"""Flows: the barrier check, campaigns and their specs, dataset generation, retraining, local runs."""
