"""Commerce: accounts."""
