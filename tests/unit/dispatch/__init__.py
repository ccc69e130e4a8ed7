"""Unit tests of the pure dispatch core (costs, matching)."""
