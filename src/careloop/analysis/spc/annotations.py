"""What a learning community did and when: plain data to mark on a chart.

An :class:`Annotation` is a PDSA cycle, the deployment of a knowledge object
or a note, at a place on a chart's x axis. It is data, kept with the measure
or the knowledge object it belongs to; :mod:`careloop.charts.spc` draws it as
a labelled vertical line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from careloop.core.errors import InputError

__all__ = ["ANNOTATION_KINDS", "Annotation", "AnnotationKind"]

AnnotationKind: TypeAlias = Literal["pdsa", "deployment", "note"]
"""What happened: a PDSA cycle, a knowledge object put into practice, or a note."""

ANNOTATION_KINDS: tuple[str, ...] = ("pdsa", "deployment", "note")
"""Every :data:`AnnotationKind`, in the order a legend lists them."""


@dataclass(frozen=True)
class Annotation:
    """Something that happened at ``x``, drawn as a labelled vertical line."""

    x: Any
    """Where: a value on the chart's x axis (number, date or category)."""
    label: str
    """What: a short label, e.g. ``"PDSA 2: reminder cards"``."""
    kind: AnnotationKind = "note"
    """``"pdsa"`` (a PDSA cycle), ``"deployment"`` (a knowledge object put into
    practice) or ``"note"``; sets the line's colour and dash."""

    def __post_init__(self) -> None:
        if self.kind not in ANNOTATION_KINDS:
            raise InputError(
                f"Annotation kind must be one of {', '.join(ANNOTATION_KINDS)}; got {self.kind!r}."
            )
