"""Package data: the host table."""
