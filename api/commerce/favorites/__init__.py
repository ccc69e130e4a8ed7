"""Favourites: the chefs and dishes a customer saved (seed §3.4)."""
