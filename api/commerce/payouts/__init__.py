"""Commerce: the earnings ledger (double entry, integer cents), bank accounts and payouts."""
