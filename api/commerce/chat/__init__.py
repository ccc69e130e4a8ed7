"""Chat per order: its customer, chef and courier, and staff (seed §8)."""
