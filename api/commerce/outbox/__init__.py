"""Commerce: outbox."""
