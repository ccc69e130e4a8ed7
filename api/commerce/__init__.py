"""Commerce domains (accounts, chefs, menus, cart, orders, payments, reviews, admin); the
service's parts are assembled in `api.commerce.parts` (imported only by a process serving
commerce: the package itself imports nothing, so the CLI and core load none of it)."""
