"""The curated public API of careloop.interop."""

import careloop.interop as interop


def _isort_key(name: str) -> tuple[int, str]:
    # Constants, then classes, then functions (ruff's RUF022 order).
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_the_public_api_is_sorted_and_importable():
    assert interop.__all__ == sorted(interop.__all__, key=_isort_key)
    for name in interop.__all__:
        assert getattr(interop, name) is not None
