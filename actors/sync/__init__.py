"""Synchronization: the pure core (model, scan planning, ignores, reconcile, transition planning) and its filesystem shell."""
