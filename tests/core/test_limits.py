"""careloop's limits on inputs: file sizes, nesting depth, YAML aliases.

The "billion laughs" below is the classic one (nine levels of nine aliases,
10^9 strings once expanded) in 342 bytes; the issue's was 418 bytes and
froze the server for 31 s while its memory grew from 461 MB to 3.2 GB.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
import yaml

from careloop.core.errors import InputTooLarge, ValidationFailed
from careloop.core.limits import (
    MAX_NESTING,
    YAML_ALIAS_BUDGET,
    YamlLimitExceeded,
    loads_json,
    read_file,
    safe_load,
    too_deep,
)


def billion_laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        this, last = chr(97 + i), chr(96 + i)
        lines.append(f"{this}: &{this} [" + ",".join([f"*{last}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def billion_laughs_in_a_form(levels: int = 8) -> str:
    """A forms dictionary whose description is a billion laughs (423 bytes at 8 levels).

    Valid YAML with only known keys, so a reader without an alias budget goes
    on to walk the expanded description: 9^8 strings, about 13 s and 600 MB.
    """
    parts = ['&a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        this, last = chr(97 + i), chr(96 + i)
        parts.append(f"&{this} [" + ",".join([f"*{last}"] * 9) + "]")
    return (
        "format: careloop.forms/1\nforms:\n  - name: x\n    title: x\n    description: ["
        + ",\n      ".join(parts)
        + "]\n    fields: []\n"
    )


def test_a_billion_laughs_is_refused_at_once_without_expanding_it() -> None:
    text = billion_laughs()
    assert len(text) < 420
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(YamlLimitExceeded, match="aliases") as caught:
        safe_load(text)
    took = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert took < 1
    assert peak < 5 * 1024 * 1024
    assert caught.value.problem_mark is not None
    assert caught.value.problem_mark.line == 4  # the level whose aliases pass the budget


def test_a_few_aliases_within_the_budget_still_read() -> None:
    text = "yes_no: &yes_no [{code: '1', label: 'Yes'}, {code: '0', label: 'No'}]\n" + "".join(
        f"q{i}: *yes_no\n" for i in range(100)
    )
    data = safe_load(text)
    assert data["q99"] == [{"code": "1", "label": "Yes"}, {"code": "0", "label": "No"}]
    # What plain PyYAML reads, the bounded loader reads the same.
    assert data == yaml.safe_load(text)


def test_aliases_adding_more_values_than_the_budget_are_refused() -> None:
    block = "[" + ",".join(str(i) for i in range(999)) + "]"
    fits = f"x: &x {block}\n" + "".join(f"y{i}: *x\n" for i in range(YAML_ALIAS_BUDGET // 1000))
    assert len(safe_load(fits)) == 1 + YAML_ALIAS_BUDGET // 1000
    with pytest.raises(YamlLimitExceeded):
        safe_load(fits + "one_more: *x\n")


def test_a_recursive_alias_is_refused() -> None:
    with pytest.raises(YamlLimitExceeded, match="contains it"):
        safe_load("a: &a [1, *a]\n")


def test_yaml_nested_deeper_than_the_limit_is_refused_with_its_line() -> None:
    assert safe_load("[" * (MAX_NESTING - 1) + "]" * (MAX_NESTING - 1)) is not None
    deep = "x:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(MAX_NESTING + 5))
    with pytest.raises(YamlLimitExceeded, match="nested more than") as caught:
        safe_load(deep)
    assert caught.value.problem_mark is not None
    # Without the limit PyYAML's composer recurses until Python gives up.
    with pytest.raises(RecursionError):
        yaml.safe_load("[" * 1500 + "]" * 1500)
    with pytest.raises(YamlLimitExceeded):
        safe_load("[" * 5000 + "]" * 5000)


def test_json_nested_too_deep_is_refused_with_its_path() -> None:
    assert loads_json("[" * MAX_NESTING + "]" * MAX_NESTING, where="ok.json") == json.loads(
        "[" * MAX_NESTING + "]" * MAX_NESTING
    )
    deep = '{"item":' * (MAX_NESTING + 1) + "1" + "}" * (MAX_NESTING + 1)
    with pytest.raises(ValidationFailed) as caught:
        loads_json(deep, where="q.json")
    (detail,) = caught.value.details
    assert detail.location.startswith("q.json:$.item.item.item")
    # Deeper than Python's own JSON parser goes: still a located refusal, not RecursionError.
    with pytest.raises(ValidationFailed, match="levels deep"):
        loads_json("[" * 100_000 + "]" * 100_000, where="deep.json")


def test_too_deep_walks_without_recursion() -> None:
    value: list[object] = []
    inner = value
    for _ in range(50_000):  # far past the recursion limit
        nested: list[object] = []
        inner.append(nested)
        inner = nested
    assert too_deep(value) == "$" + "[0]" * MAX_NESTING
    assert too_deep({"a": [1, {"b": 2}]}) is None


def test_a_file_larger_than_the_limit_is_refused_by_its_size(tmp_path: Path) -> None:
    path = tmp_path / "records.csv"
    path.write_bytes(b"x" * 2048)
    assert read_file(path, max_bytes=2048) == b"x" * 2048
    with pytest.raises(InputTooLarge) as caught:
        read_file(path, max_bytes=1024)
    assert "CARELOOP_MAX_INPUT_MB" in caught.value.message
    assert caught.value.http_status == 413


def test_an_endless_input_stops_at_the_limit() -> None:
    tracemalloc.start()
    with pytest.raises(InputTooLarge, match="larger than 1 MB"):
        read_file(Path("/dev/zero"), max_bytes=1024 * 1024)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 4 * 1024 * 1024


def test_a_pipe_larger_than_the_limit_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "stream.csv"
    os.mkfifo(fifo)

    def write() -> None:  # more than the limit; the reader stops first
        with contextlib.suppress(BrokenPipeError), fifo.open("wb") as out:
            for _ in range(64):
                out.write(b"y" * 65536)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        with pytest.raises(InputTooLarge):
            read_file(fifo, max_bytes=1024 * 1024)
    finally:
        writer.join(10)


def test_a_missing_file_is_a_located_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match="Cannot read"):
        read_file(tmp_path / "nope.csv", max_bytes=10)
