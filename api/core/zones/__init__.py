"""Service zones: CRUD for fleet managers and the in-memory cache ingest checks fixes against."""
