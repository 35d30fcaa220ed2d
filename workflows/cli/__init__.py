"""The ``epdi`` command line."""
