"""Limits on what careloop reads, so that no one input can stall or exhaust it.

- Files: at most ``max_input_mb`` megabytes are read from one input file
  (:func:`read_file`); an endless or huge input is refused with the limit
  and the setting that raises it, before it fills the memory.
- Nesting: JSON and YAML inputs may nest lists and mappings at most
  :data:`MAX_NESTING` levels deep. Real forms, FHIR resources and CDS Hooks
  calls nest a few dozen levels at most; a deeper document is refused with
  where it got too deep, instead of exhausting Python's recursion limit in
  a parser or a validator (an uncaught ``RecursionError``).
- YAML aliases (``*name`` repeating what ``&name`` anchored) may add at
  most :data:`YAML_ALIAS_BUDGET` values to a document (:class:`SafeLoader`).
  A few aliases for a repeated list of choices are fine; a "billion laughs"
  (aliases of aliases, each level multiplying the last) is refused as soon
  as its expansion passes the budget, and recursive aliases are refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode

from careloop.core.errors import ErrorDetail, InputTooLarge, ValidationFailed

MB = 1024 * 1024
DEFAULT_MAX_INPUT_BYTES = 1024 * MB
"""The default of the ``max_input_mb`` setting, for callers given no settings."""
MAX_NESTING = 100
"""Deepest nesting of lists and mappings accepted in JSON and YAML inputs."""
YAML_ALIAS_BUDGET = 10_000
"""Most values YAML aliases may add to one document (beyond what is written out)."""
MAX_ROW_ID = 2**63 - 1
"""The largest id a database row can have (a signed 64-bit integer)."""


def megabytes(size: int) -> str:
    """A byte count in megabytes, for messages."""
    return f"{size / MB:,.0f} MB" if size >= MB else f"{size:,} bytes"


def read_file(path: Path, *, max_bytes: int, setting: str = "CARELOOP_MAX_INPUT_MB") -> bytes:
    """The bytes of ``path``, refusing a file larger than ``max_bytes``.

    A regular file is refused from its size before anything is read; a pipe,
    a device or a file that grows while read stops at ``max_bytes`` + 1.

    Raises:
        InputTooLarge: The file is larger than ``max_bytes``; the message
            says the limit and that ``setting`` raises it.
        ValidationFailed: The file cannot be read.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            if path.is_file() and path.stat().st_size > max_bytes:
                raise too_large(str(path), max_bytes, setting)
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ValidationFailed(
            f"Cannot read {path}: {exc.strerror or exc}.",
            details=[ErrorDetail(str(path), "check the path and that the file is readable")],
        ) from None
    if len(data) > max_bytes:
        raise too_large(str(path), max_bytes, setting)
    return data


def too_large(what: str, max_bytes: int, setting: str) -> InputTooLarge:
    """The error for an input beyond ``max_bytes``."""
    limit = megabytes(max_bytes)
    return InputTooLarge(
        f"{what} is larger than {limit}, the most careloop reads at once. Split it into "
        f"smaller files, or raise the limit with the setting {setting} (in megabytes).",
        details=[ErrorDetail(what, f"larger than {limit} ({setting})")],
    )


# ---------------------------------------------------------------- nesting


def nesting_error(where: str, path: str) -> ValidationFailed:
    """The error for a document nested deeper than :data:`MAX_NESTING` at ``path``."""
    return ValidationFailed(
        f"{where} nests lists or objects more than {MAX_NESTING} levels deep; careloop reads "
        "documents nested up to that depth (real forms and FHIR resources nest far less).",
        details=[ErrorDetail(f"{where}:{path}", f"nested more than {MAX_NESTING} levels deep")],
    )


def too_deep(value: Any, limit: int = MAX_NESTING) -> str | None:
    """The JSON path where ``value`` nests deeper than ``limit`` levels, or None.

    Walks without recursion, so it cannot itself run out of stack.
    """
    stack: list[tuple[Any, int, str]] = [(value, 0, "$")]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, dict):
            children: Iterator[tuple[Any, str]] = ((v, f"{path}.{k}") for k, v in item.items())
        elif isinstance(item, list | tuple):
            children = ((v, f"{path}[{i}]") for i, v in enumerate(item))
        else:
            continue
        if depth >= limit:
            return path
        stack.extend((child, depth + 1, child_path) for child, child_path in children)
    return None


def loads_json(
    data: str | bytes, *, where: str, parse_constant: Callable[[str], Any] | None = None
) -> Any:
    """Parse JSON text, refusing documents nested deeper than :data:`MAX_NESTING`.

    ``parse_constant`` is as for :func:`json.loads` (e.g. to refuse ``NaN``).

    Raises:
        json.JSONDecodeError: Not JSON (as :func:`json.loads`).
        ValidationFailed: Nested too deep (located at the JSON path).
    """
    try:
        value = json.loads(data, parse_constant=parse_constant)
    except RecursionError:
        raise nesting_error(where, "$") from None
    path = too_deep(value)
    if path is not None:
        raise nesting_error(where, path)
    return value


# ---------------------------------------------------------------- YAML


class YamlLimitExceeded(ComposerError):
    """A YAML document beyond careloop's limits (too deep, aliases expand too far)."""


class SafeLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader within careloop's limits on nesting and aliases.

    While the document is composed, each node's expanded size (the values it
    stands for once aliases are repeated) is counted; an alias adds its
    anchor's expanded size. Only numbers are added, so even a billion laughs
    is counted without being expanded, and refused at the first alias that
    passes :data:`YAML_ALIAS_BUDGET`.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._sizes: dict[int, int] = {}
        self._added = 0
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self._depth >= MAX_NESTING:
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise YamlLimitExceeded(
                None,
                None,
                f"lists or mappings nested more than {MAX_NESTING} levels deep",
                event.start_mark,
            )
        aliased = self.check_event(AliasEvent)
        mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if node is None:
            return None
        if aliased:
            size = self._sizes.get(id(node))
            if size is None:
                raise YamlLimitExceeded(
                    None, None, "an alias refers to a list or mapping that contains it", mark
                )
            self._added += size
            if self._added > YAML_ALIAS_BUDGET:
                raise YamlLimitExceeded(
                    None,
                    None,
                    f"aliases (*name) would repeat more than {YAML_ALIAS_BUDGET:,} values; "
                    "write the values out or use fewer aliases",
                    mark,
                )
            return node
        if isinstance(node, SequenceNode):
            size = 1 + sum(self._sizes.get(id(child), 1) for child in node.value)
        elif isinstance(node, MappingNode):
            size = 1 + sum(
                self._sizes.get(id(k), 1) + self._sizes.get(id(v), 1) for k, v in node.value
            )
        else:
            size = 1
        self._sizes[id(node)] = size
        return node


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` within careloop's limits (see :class:`SafeLoader`).

    Raises:
        yaml.YAMLError: Not YAML, or beyond the limits (:class:`YamlLimitExceeded`,
            located by its ``problem_mark``).
    """
    loader = SafeLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
