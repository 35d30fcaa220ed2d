"""Energies and what they mean: labels, the barrier vocabulary, paths, profiles, the hop table, flags."""
