"""Reading FHIR input: Bundles, NDJSON (Bulk Data) files and directories of them.

Every resource comes out with its place (``file:line`` for NDJSON,
``file:entry[i]`` for Bundles) so an error can point at it, and every file
with its SHA-256 for provenance. Validation is fhir.resources' R4B models on
the parsed dict (``model_validate``, pydantic's fast path), one resource at a
time, so a bad resource is reported alone rather than as a bad Bundle.

A Bulk Data export folder is read as the export tools leave it: the
``manifest.json``, the export log (``log.ndjson``, written by the SMART
bulk-data-client), the server's error reports (OperationOutcome resources,
in ``error/`` or ``outcome/`` or beside the data) and the deletions
(``deleted/``) are not patient data. They are skipped, each with a note in
:attr:`ReadResult.skipped`, instead of failing the import.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import from_json

from careloop.core.errors import ErrorDetail, InputError
from careloop.core.limits import (
    DEFAULT_MAX_INPUT_BYTES,
    MAX_NESTING,
    read_file,
    too_deep,
    too_large,
)
from careloop.trust.provenance import InputRecord

BUNDLE_TYPES = ("transaction", "collection", "searchset", "batch")
SUFFIXES = (".json", ".ndjson", ".ndjson.gz", ".jsonl")


@dataclass(frozen=True)
class SourceResource:
    """One resource as read, with where it came from."""

    resource: dict[str, Any]
    location: str
    """``file:line`` (NDJSON) or ``file:entry[i]`` (Bundle)."""
    full_url: str | None = None
    """The Bundle entry's fullUrl, which references may use."""


@dataclass(frozen=True)
class Skipped:
    """Something read and left out of an import, counted, with the reason."""

    what: str
    """A resource type (``ImagingStudy``), an element (``Observation.referenceRange``) or a file."""
    count: int
    """How many (resources, elements, lines or files)."""
    reason: str
    """Why, in plain words."""

    def as_dict(self) -> dict[str, Any]:
        return {"what": self.what, "count": self.count, "reason": self.reason}


@dataclass
class ReadResult:
    """What a path held."""

    resources: list[SourceResource]
    inputs: list[InputRecord]
    errors: list[ErrorDetail]
    skipped: list[Skipped] = field(default_factory=list)
    """Files, folders and resources of a Bulk Data export that are not patient data."""


EXPORT_LOG = "log.ndjson"
"""The SMART bulk-data-client's export log: events of the export, not FHIR resources."""
OUTCOME_FOLDERS = ("error", "outcome")
"""Where Bulk Data clients put the server's OperationOutcome files."""
DELETED_FOLDER = "deleted"
"""Where Bulk Data clients put the Bundles of resources deleted since ``_since``."""


def input_files(path: Path) -> list[Path]:
    """The files of ``path``: itself, or the FHIR files of a directory (sorted).

    A directory's Bulk Data ``error/``, ``outcome/`` and ``deleted/`` folders
    are listed too (their files are read to be skipped with a note).
    """
    if not path.exists():
        raise InputError(f"{path} does not exist.")
    if path.is_file():
        return [path]
    # A Bulk Data manifest describes the files beside it; it is not a resource.
    files = sorted(
        p
        for p in path.iterdir()
        if p.is_file() and p.name.endswith(SUFFIXES) and p.name != "manifest.json"
    )
    if not any(p.name != EXPORT_LOG for p in files):
        raise InputError(f"{path} holds no FHIR files ({', '.join(SUFFIXES)}): nothing to import.")
    for folder in (*OUTCOME_FOLDERS, DELETED_FOLDER):
        if (path / folder).is_dir():
            files.extend(sorted(p for p in (path / folder).iterdir() if p.name.endswith(SUFFIXES)))
    return files


def read_path(path: Path, *, max_bytes: int = DEFAULT_MAX_INPUT_BYTES) -> ReadResult:
    """Read every resource of a file or directory (without validating them).

    What a Bulk Data export holds besides patient data goes to ``skipped``
    (see the module docstring); so do other folders of a directory, which are
    not read. No file may hold more than ``max_bytes`` (once unzipped).

    Raises:
        InputTooLarge: A file is larger than ``max_bytes``, or unzips to more.
    """
    path = Path(path)
    result = ReadResult([], [], [])
    for file in input_files(path):
        data = read_file(file, max_bytes=max_bytes)
        digest = hashlib.sha256(data).hexdigest()
        if file.name.endswith(".gz"):
            data = _gunzip(file, data, max_bytes)
        inside = file.parent != path and not path.is_file()
        name = f"{file.parent.name}/{file.name}" if inside else file.name
        before = len(result.resources)
        if file.name == EXPORT_LOG:
            lines = sum(1 for line in data.splitlines() if line.strip())
            result.skipped.append(
                Skipped(name, lines, "the export log of a Bulk Data client: not FHIR resources")
            )
        elif inside and file.parent.name == DELETED_FOLDER:
            lines = sum(1 for line in data.splitlines() if line.strip())
            result.skipped.append(
                Skipped(
                    name,
                    lines,
                    "resources the server deleted: careloop does not delete records on import",
                )
            )
        elif file.name.endswith((".ndjson", ".ndjson.gz", ".jsonl")):
            _read_ndjson(name, data, result)
        else:
            _read_json(name, data, result)
        _set_aside_outcomes(result, before, name)
        if inside and len(result.resources) > before:
            # An error folder holds reports, never data to import, whatever its resources.
            result.skipped.append(
                Skipped(
                    name,
                    len(result.resources) - before,
                    "resources in the export's error folder: not read as patient data",
                )
            )
            del result.resources[before:]
        result.inputs.append(InputRecord(str(file), digest, len(result.resources) - before))
    if path.is_dir():
        known = {*OUTCOME_FOLDERS, DELETED_FOLDER}
        for folder in sorted(p for p in path.iterdir() if p.is_dir() and p.name not in known):
            count = sum(1 for p in folder.rglob("*") if p.is_file())
            result.skipped.append(
                Skipped(
                    f"{folder.name}/",
                    count,
                    "a folder careloop does not read (it reads the FHIR files of the "
                    "directory itself and a Bulk Data export's error/ and deleted/ folders)",
                )
            )
    return result


def _gunzip(file: Path, data: bytes, max_bytes: int) -> bytes:
    """The unzipped bytes, stopping one byte past ``max_bytes`` (a zip bomb ends there)."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as unzipped:
            out = unzipped.read(max_bytes + 1)
    except (OSError, EOFError) as exc:
        raise InputError(f"{file} is not a readable gzip file: {exc}.") from None
    if len(out) > max_bytes:
        raise too_large(f"{file} (unzipped)", max_bytes, "CARELOOP_MAX_INPUT_MB")
    return out


def _too_deep(where: str, value: Any) -> ErrorDetail | None:
    path = too_deep(value)
    if path is None:
        return None
    return ErrorDetail(f"{where}: {path}", f"nested more than {MAX_NESTING} levels deep")


def _set_aside_outcomes(result: ReadResult, start: int, name: str) -> None:
    """Move the OperationOutcomes read from one file out of the resources, into a note.

    They are the server's reports of problems with the export, not patient
    data; the note repeats what they say so that the problem is seen.
    """
    read = result.resources[start:]
    outcomes = [r.resource for r in read if r.resource.get("resourceType") == "OperationOutcome"]
    if not outcomes:
        return
    result.resources[start:] = [
        r for r in read if r.resource.get("resourceType") != "OperationOutcome"
    ]
    said: list[str] = []
    for outcome in outcomes:
        for issue in outcome.get("issue") or []:
            if not isinstance(issue, dict):
                continue
            text = issue.get("diagnostics") or (issue.get("details") or {}).get("text")
            line = f"{issue.get('severity', 'issue')}: {text or issue.get('code', '')}"
            if line not in said:
                said.append(line)
    summary = "; ".join(said[:3]) + (f" (and {len(said) - 3} more)" if len(said) > 3 else "")
    result.skipped.append(
        Skipped(
            f"{name}: OperationOutcome",
            len(outcomes),
            "the server's report of a problem with the export, not patient data"
            + (f"; it says {summary}" if summary else ""),
        )
    )


def _read_ndjson(name: str, data: bytes, result: ReadResult) -> None:
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            # pydantic-core's parser: about 3x faster than json.loads on FHIR lines.
            resource = from_json(line)
        except ValueError:
            result.errors.append(_json_error(where, line))
            continue
        if not isinstance(resource, dict):
            result.errors.append(ErrorDetail(where, "each line must be one JSON object"))
            continue
        deep = _too_deep(where, resource)
        if deep is not None:
            result.errors.append(deep)
            continue
        result.resources.append(SourceResource(resource, where))


def _json_error(where: str, data: bytes, *, with_line: bool = False) -> ErrorDetail:
    """Where and why ``data`` is not JSON, in the standard library's words."""
    try:
        value = json.loads(data)
    except json.JSONDecodeError as exc:
        place = f"{where}:{exc.lineno}:{exc.colno}" if with_line else f"{where}:{exc.colno}"
        return ErrorDetail(place, f"not valid JSON: {exc.msg}")
    except UnicodeDecodeError:
        return ErrorDetail(where, "not UTF-8 text")
    except RecursionError:
        return ErrorDetail(where, f"nested more than {MAX_NESTING} levels deep")
    # pydantic-core refused what the standard library reads: it nests too deep for it.
    return _too_deep(where, value) or ErrorDetail(where, "not valid JSON")


def _read_json(name: str, data: bytes, result: ReadResult) -> None:
    try:
        document = from_json(data)
    except ValueError:
        result.errors.append(_json_error(name, data, with_line=True))
        return
    if not isinstance(document, dict):
        result.errors.append(ErrorDetail(name, "a JSON file must hold one resource or a Bundle"))
        return
    deep = _too_deep(name, document)
    if deep is not None:
        result.errors.append(deep)
        return
    if document.get("resourceType") != "Bundle":
        result.resources.append(SourceResource(document, name))
        return
    kind = document.get("type")
    if kind not in BUNDLE_TYPES:
        result.errors.append(
            ErrorDetail(
                f"{name}: Bundle.type",
                f"careloop imports Bundles of type {', '.join(BUNDLE_TYPES)}",
                kind,
            )
        )
        return
    entries = document.get("entry") or []
    if not isinstance(entries, list):
        result.errors.append(ErrorDetail(f"{name}: Bundle.entry", "must be a list"))
        return
    for index, entry in enumerate(entries):
        where = f"{name}:entry[{index}]"
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            result.errors.append(ErrorDetail(f"{where}", "the entry has no resource"))
            continue
        method = (entry.get("request") or {}).get("method")
        if method not in (None, "POST", "PUT"):
            result.errors.append(
                ErrorDetail(
                    f"{where}.request.method",
                    "careloop imports POST and PUT entries only",
                    method,
                )
            )
            continue
        result.resources.append(SourceResource(resource, where, entry.get("fullUrl")))


@functools.cache
def model_class(resource_type: str) -> Any:
    """The fhir.resources R4B model of ``resource_type`` (ValueError when unknown)."""
    from fhir.resources.R4B import get_fhir_model_class

    return get_fhir_model_class(resource_type)


def fhir_path(resource_type: str, loc: tuple[Any, ...]) -> str:
    """A pydantic error location as a FHIR path: ``Patient.name[0].family``."""
    path = resource_type
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def validate(item: SourceResource) -> list[ErrorDetail]:
    """fhir.resources' validation of one resource, as located errors."""
    resource = item.resource
    kind = resource.get("resourceType")
    if not isinstance(kind, str):
        return [ErrorDetail(f"{item.location}: resourceType", "missing: say what resource this is")]
    try:
        model = model_class(kind)
    except (ValueError, KeyError):
        return [ErrorDetail(f"{item.location}: resourceType", "not a FHIR R4 resource type", kind)]
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        return [
            ErrorDetail(
                f"{item.location}: {fhir_path(kind, tuple(e['loc']))}",
                str(e["msg"]),
                _safe_value(e.get("input")),
            )
            for e in exc.errors()[:20]
        ]
    return []


def _safe_value(value: Any) -> Any:
    """Echo scalars back (short), never whole objects."""
    if isinstance(value, str | int | float | bool):
        return value if not isinstance(value, str) else value[:80]
    return None


def resource_counts(items: list[SourceResource]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        kind = str(item.resource.get("resourceType"))
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))


def iter_ndjson(path: Path) -> Iterator[Mapping[str, Any]]:
    """The resources of an NDJSON file (for tests and tools)."""
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)
