"""Core serving the people's web apps (apps/): static pages and the map library."""
