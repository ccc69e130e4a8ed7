"""Commerce: menus."""
