"""Feedback labelling: joins feedback to predictions and keeps the labels retraining uses."""
