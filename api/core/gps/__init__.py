"""GPS ingest: device fixes in (HTTP batch, courier socket), validated, published, indexed."""
