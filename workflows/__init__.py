"""Structures, site graphs, engines, jobflow Makers and Flows, the campaign loop and the CLI."""
