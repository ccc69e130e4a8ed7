"""Commerce: delivery."""
