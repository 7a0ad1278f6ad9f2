"""Marks that ignore the deprecations Ibis 12 triggers in DuckDB 2 and pandas 3.

Tests that call ``.execute()`` on Ibis expressions themselves use these; the
library wraps its own calls in ``careloop.warehouse.quiet_engine_warnings``.
"""

import pytest

from careloop.warehouse.connection import ENGINE_WARNING_MESSAGES

ENGINE_WARNINGS = [
    pytest.mark.filterwarnings(f"ignore:{message}:DeprecationWarning")
    for message in ENGINE_WARNING_MESSAGES
]
