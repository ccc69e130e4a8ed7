"""Commerce: reviews."""
