"""Route optimisation over HTTP, solved in a separate process."""
