"""Pure serving logic: routing, cascades, result caching, batching and metrics (no I/O)."""
