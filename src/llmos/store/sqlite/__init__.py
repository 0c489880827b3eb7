"""SQLite (WAL) backend of the ResourceStore, for embedded mode."""
