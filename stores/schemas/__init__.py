"""Pydantic documents of the platform's collections."""
