"""Stores: settings, document schemas, the maggma/jobflow store facade, queries and imports."""
