"""Commerce: cart."""
