"""Drift analysis: online drift statistics on the streams, and alerts analysts can trust."""
