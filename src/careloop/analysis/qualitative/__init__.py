r"""Qualitative analysis: documents, codebooks, coded segments, agreement, REFI-QDA.

- :class:`QualitativeProject` with :class:`Document` (speaker :class:`Turn`\ s
  and metadata), a hierarchical :class:`Codebook` of :class:`Code`\ s,
  :class:`CodedSegment`\ s per coder and :class:`Theme`\ s with :class:`Quote`\ s.
- :func:`code_frequencies`, :func:`co_occurrence`, :func:`quotes_for`,
  :func:`agreement_by_code`, :func:`theme_report`.
- :func:`cohen_kappa`, :func:`krippendorff_alpha` — inter-rater agreement.
- :func:`write_qdpx`, :func:`read_qdpx` — REFI-QDA project exchange;
  :func:`project_to_dict`, :func:`project_from_dict` — careloop's JSON form.
"""

from careloop.analysis.qualitative.agreement import (
    AlphaResult,
    KappaResult,
    agreement_words,
    cohen_kappa,
    krippendorff_alpha,
)
from careloop.analysis.qualitative.coding import (
    agreement_by_code,
    co_occurrence,
    code_frequencies,
    coding_table,
    quotes_for,
    theme_report,
)
from careloop.analysis.qualitative.project import (
    Code,
    Codebook,
    CodedSegment,
    Document,
    QualitativeProject,
    Quote,
    Theme,
    Turn,
    codebook_from_rows,
)
from careloop.analysis.qualitative.project_json import project_from_dict, project_to_dict
from careloop.analysis.qualitative.refi_qda import project_to_qde, read_qdpx, write_qdpx

__all__ = [
    "AlphaResult",
    "Code",
    "Codebook",
    "CodedSegment",
    "Document",
    "KappaResult",
    "QualitativeProject",
    "Quote",
    "Theme",
    "Turn",
    "agreement_by_code",
    "agreement_words",
    "co_occurrence",
    "code_frequencies",
    "codebook_from_rows",
    "coding_table",
    "cohen_kappa",
    "krippendorff_alpha",
    "project_from_dict",
    "project_to_dict",
    "project_to_qde",
    "quotes_for",
    "read_qdpx",
    "theme_report",
    "write_qdpx",
]
