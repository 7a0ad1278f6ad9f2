"""Turning data into knowledge: pure statistical functions.

Data frames in, documented frozen result objects out. Nothing here touches a
database, the web or the CLI (an import-linter contract checks it).
"""

from careloop.analysis.effects import Effect

__all__ = ["Effect"]
