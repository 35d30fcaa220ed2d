"""The campaign report: what it shows (read from the store), its plots, the page and its template."""
