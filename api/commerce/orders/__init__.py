"""Commerce: orders."""
