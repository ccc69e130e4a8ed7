"""Commerce: notifications."""
