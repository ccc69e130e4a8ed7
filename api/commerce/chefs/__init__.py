"""Commerce: chefs."""
