"""Inference workers: consume `requests`, route, validate, predict in batches, answer."""
