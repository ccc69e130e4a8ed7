"""Search over dishes and chefs: PostgreSQL full text, trigrams for typos, filters, distance."""
