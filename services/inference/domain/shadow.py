"""Whether a shadow version's answer agrees with the answer production gave."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from services.inference.domain.answers import Classified, Output, Regressed
from shared.signature import label_text


def outputs_agree(served: Output, shadow: Output, *, tolerance: float) -> bool:
    """Same label for classifiers; values within a relative `tolerance` for regressors."""
    if isinstance(served, Classified) and isinstance(shadow, Classified):
        return label_text(served.label) == label_text(shadow.label)
    if isinstance(served, Regressed) and isinstance(shadow, Regressed):
        return math.isclose(served.value, shadow.value, rel_tol=tolerance, abs_tol=1e-12)
    return False


@dataclass
class AgreementTally:
    """Running agree/total counts of shadow answers against production, per model."""

    agreed: dict[str, int] = field(default_factory=dict)
    compared: dict[str, int] = field(default_factory=dict)

    def record(self, model: str, *, agreed: bool) -> None:
        self.compared[model] = self.compared.get(model, 0) + 1
        if agreed:
            self.agreed[model] = self.agreed.get(model, 0) + 1

    def rate(self, model: str) -> float | None:
        """Share of compared answers that agreed; None before the first comparison."""
        total = self.compared.get(model, 0)
        return self.agreed.get(model, 0) / total if total else None
