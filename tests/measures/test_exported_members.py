"""The public API of careloop.measures is what __all__ says, sorted (after httpx)."""

from __future__ import annotations

import careloop.measures as measures


def test_every_exported_name_exists_and_the_list_is_sorted():
    assert all(hasattr(measures, name) for name in measures.__all__)
    screaming = [n for n in measures.__all__ if n.isupper()]
    assert measures.__all__[: len(screaming)] == sorted(screaming)


def test_public_names_are_exactly_the_exported_ones():
    public = {
        name
        for name, value in vars(measures).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("careloop.")
    }
    assert public == set(measures.__all__) - {
        "ENTRY_POINT_GROUP",
        "MEASURES_DIR_ENV",
        "RESULT_COLUMNS",
        "RESULT_TABLE",
        "RUN_TABLE",
    }
