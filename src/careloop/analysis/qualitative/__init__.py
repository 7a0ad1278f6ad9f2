"""Qualitative analysis: documents, codebooks, coded segments, agreement, REFI-QDA.

- :func:`cohen_kappa`, :func:`krippendorff_alpha` — inter-rater agreement.
"""

from careloop.analysis.qualitative.agreement import (
    AlphaResult,
    KappaResult,
    cohen_kappa,
    krippendorff_alpha,
)

__all__ = [
    "AlphaResult",
    "KappaResult",
    "cohen_kappa",
    "krippendorff_alpha",
]
