"""Load a directory of OMOP CDM CSV files into the warehouse, all or nothing.

Tolerant of what varies between OMOP exports: column order, upper- or
lower-case file and column names (``PERSON.csv``), gzip (``.csv.gz``),
tab-delimited Athena vocabulary files (with ``YYYYMMDD`` dates), CDM 5.3
column names, and tables that are simply absent. Strict about what matters:
a value that is not of its column's CDM type, an empty required column, an
unknown column or a missing required one fails the whole load with a
:class:`~careloop.core.errors.ValidationFailed` whose details name the file,
line, column, value and expected type; the warehouse is left as it was.

Speed: DuckDB's own CSV reader parses and type-checks every file in one pass
(typed ``read_csv`` with ``store_rejects``); on DuckDB it writes straight into
staging tables, on PostgreSQL the typed rows stream in through
``COPY … FROM STDIN``. The staging tables replace the targets in one
transaction (:meth:`Warehouse.replacing`).

Integers are read as text and checked to be whole numbers that fit 64 bits
before the cast, because DuckDB's integer parser silently rounds ``1.5`` to
2; a whole decimal such as ``192671.0`` (Eunomia writes some ids so) is
accepted as 192671. (Reading them as ``DECIMAL(38,9)`` and comparing with
``trunc`` did the same but made a load some 15 times slower.)
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
import uuid
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from careloop.core.errors import ErrorDetail, InputError, ValidationFailed
from careloop.warehouse.connection import TableSwap, Warehouse, copy_arrow_to_postgres
from careloop.warehouse.omop_schema import (
    CDM53_RENAMES,
    COMPAT_DEFAULTS,
    TABLES,
    OmopColumn,
    OmopTable,
)
from careloop.warehouse.sources import (
    ASSEMBLED_TABLES,
    assemble,
    store_name,
    store_schemas,
    store_tables,
)

MAX_DETAILS = 20
"""At most this many problems are listed in one error."""

_SUFFIXES = (".csv.gz", ".tsv.gz", ".txt.gz", ".csv", ".tsv", ".txt")
_READ_TYPES = {
    "integer": "VARCHAR",
    "float": "DOUBLE",
    "date": "DATE",
    "datetime": "TIMESTAMP",
    "string": "VARCHAR",
}
_TARGET_TYPES = {
    "integer": "BIGINT",
    "float": "DOUBLE",
    "date": "DATE",
    "datetime": "TIMESTAMP",
    "string": "VARCHAR",
}
_EXPECTED = {
    "integer": "a whole number",
    "float": "a number",
    "date": "a date (YYYY-MM-DD)",
    "datetime": "a date-time (YYYY-MM-DD HH:MM:SS)",
    "string": "text",
}
_ERROR_TAG = "careloop-csv"
_WHOLE = re.compile(r"\s*[+-]?[0-9]+(\.0*)?\s*")
"""A whole number as text (``192671.0`` included), in Python and DuckDB (RE2) syntax."""
_COMPACT_DATE = re.compile(r"\d{8}")


@dataclass(frozen=True)
class InputFile:
    """One CSV file that was loaded."""

    path: str
    """Absolute path of the file."""
    table: str
    """OMOP table it was loaded into."""
    sha256: str
    """SHA-256 of the file's bytes, hex."""
    size_bytes: int
    """Size of the file."""
    rows: int
    """Data rows read from the file (all of them were loaded)."""
    renamed_columns: Mapping[str, str] = field(default_factory=dict)
    """CDM 5.3 columns renamed to their 5.4 names: ``{old: new}``."""


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_omop_csv` loaded, for the user and for provenance."""

    warehouse_url: str
    """The warehouse written to (password hidden)."""
    directory: str
    """The directory read."""
    started_at: datetime
    """When the load started (UTC)."""
    finished_at: datetime
    """When the load committed (UTC)."""
    tables: Mapping[str, int]
    """Rows loaded per OMOP table (each replaces the table's previous contents)."""
    inputs: tuple[InputFile, ...]
    """Every file loaded, with its SHA-256 and row count."""
    rejected: int
    """Rows rejected. Always 0: a load with a bad row fails as a whole."""
    ignored_files: tuple[str, ...]
    """Files in the directory that are not OMOP CDM 5.4 tables (e.g. 5.3's ``cohort_attribute``)."""
    absent_tables: tuple[str, ...]
    """OMOP tables with no file; their contents were left as they were."""

    @property
    def rows_in(self) -> int:
        """Total rows loaded."""
        return sum(self.tables.values())

    @property
    def seconds(self) -> float:
        """Wall-clock duration of the load."""
        return (self.finished_at - self.started_at).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for provenance records and ``--format json``)."""
        return {
            "warehouse_url": self.warehouse_url,
            "directory": self.directory,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "tables": dict(self.tables),
            "inputs": [
                {
                    "path": f.path,
                    "table": f.table,
                    "sha256": f.sha256,
                    "size_bytes": f.size_bytes,
                    "rows": f.rows,
                    "renamed_columns": dict(f.renamed_columns),
                }
                for f in self.inputs
            ],
            "rows_in": self.rows_in,
            "rejected": self.rejected,
            "ignored_files": list(self.ignored_files),
            "absent_tables": list(self.absent_tables),
        }


@dataclass(frozen=True)
class _CsvPlan:
    """How one file maps onto its table, worked out from its header."""

    path: Path
    table: OmopTable
    header: tuple[str, ...]  # the file's columns, mapped to 5.4 names, in file order
    raw_header: tuple[str, ...]
    delimiter: str
    quoted: bool
    compact_dates: bool
    renamed: Mapping[str, str]
    has_rows: bool


def load_omop_csv(
    warehouse: Warehouse,
    directory: str | Path,
    *,
    required_tables: Collection[str] = ("person",),
    only_tables: Collection[str] | None = None,
) -> LoadReport:
    """Load the OMOP CSV files in ``directory`` into ``warehouse``.

    Each file named after an OMOP CDM table (``person.csv``, ``PERSON.csv``,
    ``person.csv.gz``…) replaces that table's contents; tables without a file
    are left as they were (created empty if missing). Everything is validated
    and loaded in one transaction: on any error nothing changes.

    Args:
        warehouse: The warehouse to load into (read-write).
        directory: Folder holding the CSV files.
        required_tables: Tables whose file must be present.
        only_tables: Load only these tables (default: every OMOP file found).

    Returns:
        A :class:`LoadReport` with row counts and the SHA-256 of every input.

    Raises:
        InputError: ``directory`` is not a readable folder.
        ValidationFailed: a file is missing, has wrong columns or a bad
            value; ``details`` name each problem's file, line and column.
    """
    started = datetime.now(UTC)
    folder = Path(directory).expanduser().resolve()
    if not folder.is_dir():
        raise InputError(f"{folder} is not a directory of OMOP CSV files.")
    files, ignored = _find_files(folder, only_tables)
    plans = _checked_plans(folder, files, required_tables)

    warehouse.create_schema()
    inputs: list[InputFile] = []
    counts: dict[str, int] = {}
    # Person-level tables (and sites, metadata) go to the "omop" source's store and the
    # CDM tables are assembled from every source; the rest are written in place.
    stores = store_tables(warehouse)
    kept = [p.table.name for p in plans if p.table.name in ASSEMBLED_TABLES]
    stores["omop"] |= set(kept)
    public = sorted({t for tables in stores.values() for t in tables} | {"observation_period"})
    targets = {
        p.table.name: store_name("omop", p.table.name) if p.table.name in kept else p.table.name
        for p in plans
    }
    names = [*targets.values(), *(public if kept else [])]
    with warehouse.replacing(names, schemas=store_schemas("omop", kept)) as swap:
        for plan in plans:
            rows = _load_file(warehouse, swap, plan, targets[plan.table.name])
            counts[plan.table.name] = rows
            inputs.append(_input_file(plan, rows))
        if "concept" in targets:
            # Concepts the file does not hold stay: careloop's local concepts and the
            # standard ones a refresh registered.
            before = warehouse.table("concept")
            swap.insert(
                "concept", before.anti_join(warehouse.table(swap.stage("concept")), "concept_id")
            )
        if kept:
            assemble(warehouse, swap, public, stores)
    return LoadReport(
        warehouse_url=warehouse.url,
        directory=str(folder),
        started_at=started,
        finished_at=datetime.now(UTC),
        tables=MappingProxyType(counts),
        inputs=tuple(inputs),
        rejected=0,
        ignored_files=tuple(ignored),
        absent_tables=tuple(t for t in TABLES if t not in counts),
    )


def _checked_plans(
    folder: Path, files: Mapping[str, Path], required_tables: Collection[str]
) -> list[_CsvPlan]:
    """Plan the load of each file, refusing missing required files and bad columns."""
    missing = [t for t in required_tables if t not in files]
    if missing:
        raise ValidationFailed(
            f"{folder} lacks required OMOP table files: {', '.join(missing)}.",
            details=[
                ErrorDetail(f"{t}.csv", f"file missing; the {t} table is required") for t in missing
            ],
        )
    plans, problems = [], []
    for table_name, path in sorted(files.items()):
        plan, issues = _plan(path, TABLES[table_name])
        problems.extend(issues)
        if plan is not None:
            plans.append(plan)
    if problems:
        raise ValidationFailed(
            f"OMOP CSV files in {folder} have {len(problems)} column problem(s); "
            "nothing was loaded.",
            details=problems[:MAX_DETAILS],
        )
    return plans


def _input_file(plan: _CsvPlan, rows: int) -> InputFile:
    """What the load's report says about one file it loaded."""
    return InputFile(
        path=str(plan.path),
        table=plan.table.name,
        sha256=_sha256(plan.path),
        size_bytes=plan.path.stat().st_size,
        rows=rows,
        renamed_columns=MappingProxyType(dict(plan.renamed)),
    )


# -- finding and reading headers ------------------------------------------------------


def _find_files(
    folder: Path, only_tables: Collection[str] | None
) -> tuple[dict[str, Path], list[str]]:
    files: dict[str, Path] = {}
    ignored: list[str] = []
    clashes: list[ErrorDetail] = []
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            continue
        lower = path.name.lower()
        suffix = next((s for s in _SUFFIXES if lower.endswith(s)), None)
        if suffix is None:
            continue
        table = lower[: -len(suffix)]
        if table not in TABLES or (only_tables is not None and table not in only_tables):
            ignored.append(path.name)
            continue
        if table in files:
            clashes.append(
                ErrorDetail(
                    path.name,
                    f"two files for table {table}: {files[table].name} and {path.name}; keep one",
                )
            )
            continue
        files[table] = path
    if clashes:
        raise ValidationFailed(f"Ambiguous OMOP CSV files in {folder}.", details=clashes)
    return files, ignored


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _plan(path: Path, table: OmopTable) -> tuple[_CsvPlan | None, list[ErrorDetail]]:
    name = path.name
    try:
        with _open_text(path) as handle:
            first = handle.readline()
            second = handle.readline()
    except (OSError, UnicodeDecodeError) as exc:
        return None, [ErrorDetail(name, f"cannot read the file as UTF-8 text: {exc}")]
    if not first.strip():
        return None, [ErrorDetail(f"{name}:1", "the file is empty; expected a header line")]
    delimiter = "\t" if "\t" in first and "," not in first else ","
    quoted = delimiter == ","
    raw = next(csv.reader([first], delimiter=delimiter))
    raw_header = tuple(h.strip() for h in raw)
    renames = CDM53_RENAMES.get(table.name, {})
    mapped: list[str] = []
    renamed: dict[str, str] = {}
    problems: list[ErrorDetail] = []
    known = set(table.column_names)
    for col in raw_header:
        lower = col.lower()
        if lower in renames:
            renamed[lower] = renames[lower]
            lower = renames[lower]
        if lower not in known:
            problems.append(
                ErrorDetail(
                    f"{name}:1:{col}",
                    f"unknown column {col!r} for OMOP table {table.name}; expected columns: "
                    + ", ".join(table.column_names),
                    col,
                )
            )
        elif lower in mapped:
            problems.append(ErrorDetail(f"{name}:1:{col}", f"column {col!r} appears twice", col))
        mapped.append(lower)
    has_rows = bool(second.strip())
    for spec in table.columns:
        if spec.required and spec.name not in mapped and has_rows:
            if (table.name, spec.name) in COMPAT_DEFAULTS:
                continue
            problems.append(
                ErrorDetail(
                    f"{name}:1",
                    f"required column {spec.name!r} of OMOP table {table.name} is missing",
                )
            )
    compact = False
    if has_rows and not problems:
        values = next(csv.reader([second], delimiter=delimiter), [])
        for col_name, value in zip(mapped, values, strict=False):
            if table.column(col_name).cdm_type == "date" and value.strip():
                compact = bool(_COMPACT_DATE.fullmatch(value.strip()))
                break
    if problems:
        return None, problems
    plan = _CsvPlan(
        path=path,
        table=table,
        header=tuple(mapped),
        raw_header=raw_header,
        delimiter=delimiter,
        quoted=quoted,
        compact_dates=compact,
        renamed=renamed,
        has_rows=has_rows,
    )
    return plan, []


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -- the typed read ---------------------------------------------------------------------


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _read_csv_sql(plan: _CsvPlan, rejects: str) -> str:
    types = ", ".join(
        f"{_sql_string(col)}: {_sql_string(_READ_TYPES[plan.table.column(col).cdm_type])}"
        for col in plan.header
    )
    options = [
        "header = true",
        "auto_detect = false",
        f"delim = {_sql_string(plan.delimiter)}",
        f"columns = {{{types}}}",
        "allow_quoted_nulls = false",
        "store_rejects = true",
        f"rejects_table = {_sql_string(rejects)}",
        f"rejects_scan = {_sql_string(rejects + '_scan')}",
        "max_line_size = 10000000",
    ]
    if plan.quoted:
        options += ["quote = '\"'", "escape = '\"'"]
    else:
        options += ["quote = ''", "escape = ''"]
    if plan.compact_dates:
        options.append("dateformat = '%Y%m%d'")
    return f"read_csv({_sql_string(str(plan.path))}, {', '.join(options)})"


def _column_sql(plan: _CsvPlan, col: OmopColumn) -> str:
    target = _TARGET_TYPES[col.cdm_type]
    ident = '"' + col.name + '"'
    if col.name not in plan.header:
        default = COMPAT_DEFAULTS.get((plan.table.name, col.name))
        value = "NULL" if default is None else str(default)
        return f"CAST({value} AS {target}) AS {ident}"
    tag = f"{_ERROR_TAG}|{col.name}|"
    checks: list[str] = []
    if col.required:
        checks.append(f"WHEN {ident} IS NULL THEN error({_sql_string(tag + 'null|')})")
    if col.cdm_type == "integer":
        checks.append(
            f"WHEN {ident} IS NOT NULL AND (NOT regexp_full_match({ident}, "
            f"{_sql_string(_WHOLE.pattern)}) OR TRY_CAST({ident} AS BIGINT) IS NULL) "
            f"THEN error({_sql_string(tag + 'integer|')} || {ident})"
        )
    if not checks:
        return f"CAST({ident} AS {target}) AS {ident}"
    return f"CASE {' '.join(checks)} ELSE CAST({ident} AS {target}) END AS {ident}"


def _select_sql(plan: _CsvPlan, rejects: str) -> str:
    columns = ", ".join(_column_sql(plan, col) for col in plan.table.columns)
    return f"SELECT {columns} FROM {_read_csv_sql(plan, rejects)}"  # noqa: S608 - quoted identifiers, no user values


def _load_file(warehouse: Warehouse, swap: TableSwap, plan: _CsvPlan, target: str) -> int:
    import duckdb

    rejects = f"careloop_rejects_{uuid.uuid4().hex[:10]}"
    select = _select_sql(plan, rejects)
    if warehouse.engine == "duckdb":
        scan = warehouse._native
        stage = '"' + swap.stage(target) + '"'
        try:
            scan.execute(f"INSERT INTO {stage} {select}").fetchall()
        except duckdb.Error as exc:
            raise _value_error(plan, exc) from None
        _raise_rejects(scan, plan, rejects)
        rows = scan.execute(f"SELECT count(*) FROM {stage}").fetchall()[0][0]  # noqa: S608 - quoted identifiers, no user values
        _drop_rejects(scan, rejects)
        return int(rows)
    # Other engines: parse and type-check in a scratch DuckDB, stream the rows in.
    scan = duckdb.connect()
    try:
        try:
            reader = scan.sql(select).to_arrow_reader(50_000)
            counted = _CountingReader(reader)
            if warehouse.engine == "postgres":
                copy_arrow_to_postgres(warehouse._native, swap.stage(target), counted)
            else:
                counted.rows = swap.insert(target, reader.read_all())
        except duckdb.Error as exc:
            raise _value_error(plan, exc) from None
        _raise_rejects(scan, plan, rejects)
        return counted.rows
    finally:
        scan.close()


class _CountingReader:
    """Wraps an Arrow batch reader and counts the rows that pass through."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader
        self.schema = reader.schema
        self.rows = 0

    def __iter__(self) -> Iterator[Any]:
        for batch in self._reader:
            self.rows += batch.num_rows
            yield batch


def _drop_rejects(con: Any, rejects: str) -> None:
    con.execute(f'DROP TABLE IF EXISTS "{rejects}"').fetchall()
    con.execute(f'DROP TABLE IF EXISTS "{rejects}_scan"').fetchall()


# -- turning engine errors into located problems ------------------------------------


def _raise_rejects(con: Any, plan: _CsvPlan, rejects: str) -> None:
    rows = con.execute(
        f"SELECT line, column_idx, column_name, error_type, csv_line, error_message "  # noqa: S608 - quoted identifiers, no user values
        f'FROM "{rejects}" ORDER BY line LIMIT {MAX_DETAILS}'
    ).fetchall()
    if not rows:
        return
    total = con.execute(f'SELECT count(*) FROM "{rejects}"').fetchall()[0][0]  # noqa: S608 - quoted identifiers, no user values
    details = [_reject_detail(plan, *row) for row in rows]
    raise ValidationFailed(
        f"{plan.path.name}: {total} row(s) with bad values; nothing was loaded.",
        details=details,
    )


def _reject_detail(
    plan: _CsvPlan,
    line: int,
    column_idx: int | None,
    column_name: str | None,
    error_type: str,
    csv_line: str | None,
    message: str,
) -> ErrorDetail:
    name = plan.path.name
    if error_type == "CAST" and column_name:
        col = plan.table.column(column_name)
        raw_name = plan.raw_header[plan.header.index(column_name)]
        value = _field(plan, csv_line, column_idx)
        return ErrorDetail(
            f"{name}:{line}:{raw_name}",
            f"line {line}, column {raw_name}: {value!r} is not {_EXPECTED[col.cdm_type]} "
            f"({plan.table.name}.{col.name} is a CDM {col.cdm_type})",
            value,
        )
    return ErrorDetail(
        f"{name}:{line}",
        f"line {line}: {error_type.lower()}: {message}",
        csv_line,
    )


def _field(plan: _CsvPlan, csv_line: str | None, column_idx: int | None) -> str | None:
    if csv_line is None or column_idx is None:
        return None
    values = next(csv.reader([csv_line], delimiter=plan.delimiter, quoting=_quoting(plan)), [])
    index = column_idx - 1
    return values[index] if 0 <= index < len(values) else None


def _value_error(plan: _CsvPlan, exc: Exception) -> ValidationFailed | InputError:
    text = str(exc)
    match = re.search(rf"{_ERROR_TAG}\|([^|]+)\|([a-z]+)\|([^\n]*)", text)
    if match is None:
        return InputError(f"{plan.path.name}: cannot read the file: {text.splitlines()[0]}")
    column, kind, value = match.group(1), match.group(2), match.group(3)
    col = plan.table.column(column)
    raw_name = plan.raw_header[plan.header.index(column)]
    line, raw_value = _locate(plan, column, kind, value)
    where = f"{plan.path.name}:{line}:{raw_name}" if line else f"{plan.path.name}:{raw_name}"
    if kind == "null":
        message = (
            f"line {line}, column {raw_name}: empty, but {plan.table.name}.{col.name} is "
            f"required (expected {_EXPECTED[col.cdm_type]})"
        )
    else:
        message = (
            f"line {line}, column {raw_name}: {raw_value!r} is not {_EXPECTED[col.cdm_type]} "
            f"({plan.table.name}.{col.name} is a CDM integer)"
        )
    return ValidationFailed(
        f"{plan.path.name}: bad value in column {raw_name}; nothing was loaded.",
        details=[ErrorDetail(where, message, raw_value)],
    )


def _locate(plan: _CsvPlan, column: str, kind: str, value: str) -> tuple[int | None, str | None]:
    """Find the first line with the problem DuckDB reported (error path only)."""
    index = plan.header.index(column)
    with _open_text(plan.path) as handle:
        reader = csv.reader(handle, delimiter=plan.delimiter, quoting=_quoting(plan))
        next(reader, None)
        for row in reader:
            if index >= len(row):
                continue
            cell = row[index].strip()
            if kind == "null" and cell == "":
                return reader.line_num, row[index]
            if kind == "integer" and cell and not _is_whole(cell):
                return reader.line_num, row[index]
    return None, value


def _quoting(plan: _CsvPlan) -> Literal[0, 3]:
    # Tab-delimited Athena files are not quoted: a '"' there is part of the text.
    return csv.QUOTE_MINIMAL if plan.quoted else csv.QUOTE_NONE


def _is_whole(cell: str) -> bool:
    if not _WHOLE.fullmatch(cell):
        return False
    return -(2**63) <= int(cell.strip().split(".")[0]) < 2**63
