"""Tables of the feedback store (own metadata, own migrations, own database URL).

Times are epoch seconds (floats): the join writes tens of thousands of rows a second,
and plain numbers cost nothing to bind and make delays a subtraction. Labels and
predicted values are JSON text, so `1`, `1.0`, `true` and `"1"` stay apart.
"""

from __future__ import annotations

import sqlalchemy as sa

feedback_metadata = sa.MetaData()

REQUESTS = sa.Table(
    "feedback_requests",
    feedback_metadata,
    sa.Column("request_id", sa.String(128), primary_key=True),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("inputs", sa.Text, nullable=False),
    sa.Column("requested_at", sa.Float, nullable=False, index=True),
)
"""The inputs of every request retained, so a label can carry its features."""

PREDICTIONS = sa.Table(
    "feedback_predictions",
    feedback_metadata,
    sa.Column("request_id", sa.String(128), primary_key=True),
    sa.Column("variant", sa.String(16), primary_key=True),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("predicted", sa.Text, nullable=True),
    sa.Column("predicted_at", sa.Float, nullable=False, index=True),
)
"""What each serving variant answered (`predicted` is null for an error answer)."""

VERSIONS = sa.Table(
    "feedback_versions",
    feedback_metadata,
    sa.Column("model", sa.String(128), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("classes", sa.Text, nullable=True),
)
"""The classes of each classifier version seen (null for a regressor)."""

FEEDBACK = sa.Table(
    "feedback_records",
    feedback_metadata,
    sa.Column("feedback_id", sa.String(128), primary_key=True),
    sa.Column("request_id", sa.String(128), nullable=False, index=True),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("authority", sa.Integer, nullable=False),
    sa.Column("source", sa.String(128), nullable=False),
    sa.Column("given_at", sa.Float, nullable=False),
    sa.Column("received_at", sa.Float, nullable=False, index=True),
    sa.Column("state", sa.String(12), nullable=False, index=True),
    sa.Column("model", sa.String(128), nullable=True),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("variant", sa.String(16), nullable=True),
    sa.Column("strength", sa.String(8), nullable=True),
    sa.Column("label", sa.Text, nullable=True),
    sa.Column("refuted", sa.Text, nullable=True),
    sa.Column("reason", sa.String(500), nullable=True),
)
"""Every feedback record once (by `feedback_id`), and what it turned out to say.

state: pending (its prediction has not arrived) | joined | refused | expiring (the wait
ran out; its dead letter is being published) | unmatched."""

LABELS = sa.Table(
    "feedback_labels",
    feedback_metadata,
    sa.Column("request_id", sa.String(128), primary_key=True),
    sa.Column("variant", sa.String(16), primary_key=True),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("predicted", sa.Text, nullable=True),
    sa.Column("label", sa.Text, nullable=True),
    sa.Column("refuted", sa.Text, nullable=True),
    sa.Column("correct", sa.Boolean, nullable=True),
    sa.Column("abs_error", sa.Float, nullable=True),
    sa.Column("strength", sa.String(8), nullable=False),
    sa.Column("authority", sa.Integer, nullable=False),
    sa.Column("source", sa.String(128), nullable=False),
    sa.Column("feedback_id", sa.String(128), nullable=False),
    sa.Column("conflicting", sa.Boolean, nullable=False),
    sa.Column("predicted_at", sa.Float, nullable=False),
    sa.Column("labelled_at", sa.Float, nullable=False),
    sa.Column("inputs", sa.Text, nullable=True),
    sa.Index("ix_feedback_labels_model_predicted_at", "model", "predicted_at"),
)
"""The standing label of each (request, variant): the labelled examples retraining
reads, and what live quality is computed from. One row each, however often replayed."""

REVIEW_ITEMS = sa.Table(
    "feedback_review_items",
    feedback_metadata,
    sa.Column("request_id", sa.String(128), primary_key=True),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("variant", sa.String(16), nullable=False),
    sa.Column("reasons", sa.String(200), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("claimed_by", sa.String(128), nullable=True),
    sa.Column("lease_until", sa.Float, nullable=True),
    sa.Column("decided_by", sa.String(128), nullable=True),
    sa.Column("label", sa.Text, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("ix_feedback_review_items_model_status", "model", "status", "created_at"),
)
"""Predictions put before a human: open | claimed (under a lease) | labelled | skipped."""
