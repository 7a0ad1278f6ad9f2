"""REDCap data dictionary CSV: read and write it exactly as REDCap does.

The columns are REDCap's own (:data:`REDCAP_COLUMNS`). REDCap's API writes
the same table with snake_case headers (``field_name``, ``form_name`` …);
those are read too. Dictionaries exported by older REDCap versions lack the
Field Annotation column, which is then taken as empty.

careloop keeps what REDCap has no column for — a field's standard code, OMOP
domain and unit — in the Field Annotation as ``@CARELOOP-CODE="LOINC|8302-2|Body
height"``, ``@CARELOOP-OMOP="Measurement"`` and ``@CARELOOP-UNIT="cm"``.
REDCap leaves unknown ``@`` words alone, so the file still imports into REDCap
and comes back to careloop without loss.

The action tag ``@CARELOOP-EVENT-DATE`` on a date or datetime field declares it
the form's event date: ``careloop records import`` then dates each response by
that field, as REDCap record exports carry no event date of their own. It stays
in the annotation text (so YAML and REDCap exports keep it as written); the
reader checks that it sits on one date field per form at most.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from pathlib import Path

from careloop.capture.forms import (
    CODE_SYSTEMS,
    OMOP_DOMAINS,
    Choice,
    CodeSystem,
    Dictionary,
    Field,
    FieldType,
    Form,
    OmopDomain,
    OtherFormField,
    StandardCode,
    check_forms,
    expression_or_problem,
    form_list,
    format_choices,
    link_other_forms,
    parse_choices,
    parse_field_type,
    parse_validation_type,
    raise_problems,
)
from careloop.capture.text_files import csv_rows, read_dictionary_source
from careloop.core.csv_safety import restore_row, safe_writer
from careloop.core.errors import ErrorDetail, InputError, ValidationFailed

__all__ = [
    "EVENT_DATE_TAG",
    "REDCAP_COLUMNS",
    "event_date_field",
    "read_redcap_dictionary",
    "write_redcap_dictionary",
]

REDCAP_COLUMNS: tuple[str, ...] = (
    "Variable / Field Name",
    "Form Name",
    "Section Header",
    "Field Type",
    "Field Label",
    "Choices, Calculations, OR Slider Labels",
    "Field Note",
    "Text Validation Type OR Show Slider Number",
    "Text Validation Min",
    "Text Validation Max",
    "Identifier?",
    "Branching Logic (Show field only if...)",
    "Required Field?",
    "Custom Alignment",
    "Question Number (surveys only)",
    "Matrix Group Name",
    "Matrix Ranking?",
    "Field Annotation",
)
"""REDCap's data dictionary headers, in REDCap's order."""

_API_COLUMNS = (
    "field_name",
    "form_name",
    "section_header",
    "field_type",
    "field_label",
    "select_choices_or_calculations",
    "field_note",
    "text_validation_type_or_show_slider_number",
    "text_validation_min",
    "text_validation_max",
    "identifier",
    "branching_logic",
    "required_field",
    "custom_alignment",
    "question_number",
    "matrix_group_name",
    "matrix_ranking",
    "field_annotation",
)
_KEYS = _API_COLUMNS  # internal names of the columns, in order
_OPTIONAL = {"field_annotation"}

_TAG = re.compile(r"\s*@CARELOOP-(CODE|OMOP|UNIT)=(?:\"([^\"]*)\"|'([^']*)')")

EVENT_DATE_TAG = "@CARELOOP-EVENT-DATE"
"""Field Annotation action tag: this date or datetime field is the form's event date."""
_EVENT_DATE = re.compile(r"(?<![\w@-])@CARELOOP-EVENT-DATE(?![\w-])")


def _event_date_problems(form: Form, locate: Callable[[str], str]) -> list[ErrorDetail]:
    tagged = [f for f in form.fields if _EVENT_DATE.search(f.annotation)]
    problems = [
        ErrorDetail(
            locate(f.name),
            f"{EVENT_DATE_TAG} marks the form's event date, so it belongs on a text field "
            "validated as a date or datetime (e.g. date_ymd), not on this "
            f"{f.type.value} field{f' ({f.validation})' if f.validation else ''}",
            f.name,
        )
        for f in tagged
        if not (f.type is FieldType.TEXT and (f.validation or "").startswith("date"))
    ]
    if len(tagged) > 1:
        problems.append(
            ErrorDetail(
                locate(tagged[1].name),
                f"{EVENT_DATE_TAG} is on {len(tagged)} fields of form {form.name!r} "
                f"({', '.join(f.name for f in tagged)}); a form has one event date, "
                "so keep it on one of them",
                tagged[1].name,
            )
        )
    return problems


def event_date_field(form: Form) -> str | None:
    """The field whose annotation holds :data:`EVENT_DATE_TAG`, if any.

    Raises:
        ValidationFailed: The tag is on a field that is not a date, or on more
            than one field (possible in a form read from YAML or FHIR, which
            this module's reader did not check).
    """
    problems = _event_date_problems(form, lambda name: f"{form.name}:{name}")
    if problems:
        raise ValidationFailed(
            f"Form {form.name!r} declares its event date wrongly.", details=problems
        )
    for f in form.fields:
        if _EVENT_DATE.search(f.annotation):
            return f.name
    return None


def _header_map(header: list[str], source: str, notes: list[ErrorDetail]) -> dict[str, int]:
    """Column key → index, or a ValidationFailed naming every wrong header.

    A column REDCap does not have (a team's own notes, an export tool's extra
    column) is ignored, with a note. REDCap reads a dictionary's columns by
    position (A to R), so a REDCap column whose heading was mangled — e.g. a
    spreadsheet tool's row number over column A — is read by its position when
    every other REDCap column stands where REDCap puts it.
    """
    wanted = {c.lower(): k for c, k in zip(REDCAP_COLUMNS, _KEYS, strict=True)}
    wanted.update({k: k for k in _API_COLUMNS})
    # REDCap has written this one with and without the suffix over the years.
    wanted["question number"] = "question_number"
    found: dict[str, int] = {}
    unknown: dict[int, str] = {}
    details: list[ErrorDetail] = []
    for i, raw in enumerate(header):
        name = raw.strip().lstrip("\ufeff")
        key = wanted.get(name.lower())
        if key is None:
            unknown[i] = name
        elif key in found:
            details.append(
                ErrorDetail(f"{source}:1:column {i + 1}", f"header {name!r} appears twice", name)
            )
        else:
            found[key] = i
    in_place = all(found[k] == _KEYS.index(k) for k in found)
    for key, label in zip(_KEYS, REDCAP_COLUMNS, strict=True):
        position = _KEYS.index(key)
        if key in found:
            continue
        if in_place and found and position in unknown:
            found[key] = position
            notes.append(
                ErrorDetail(
                    f"{source}:1:column {position + 1}",
                    f"column {position + 1} is headed {unknown.pop(position)!r}; it was read "
                    f"as {label!r}, the column REDCap has in that place",
                )
            )
        elif key not in _OPTIONAL:
            details.append(ErrorDetail(f"{source}:1", f"missing header {label!r}", label))
    if details:
        details[:0] = [
            ErrorDetail(
                f"{source}:1:column {i + 1}",
                f"unknown header {name!r}; a REDCap data dictionary has the columns: "
                + ", ".join(REDCAP_COLUMNS),
                name,
            )
            for i, name in unknown.items()
        ]
        if len(header) == 1 and ";" in header[0]:
            details.append(
                ErrorDetail(
                    f"{source}:1",
                    "the file seems to use ';' as separator; save it as comma-separated CSV",
                )
            )
        raise ValidationFailed(
            f"{source} is not a REDCap data dictionary: its header row is wrong.", details=details
        )
    for i, name in unknown.items():
        notes.append(
            ErrorDetail(
                f"{source}:1:column {i + 1}",
                f"column {name or '(no heading)'!r} is not a REDCap dictionary column; ignored",
                name,
            )
        )
    return found


def _split_annotation(text: str) -> tuple[str, dict[str, str]]:
    tags: dict[str, str] = {}

    def take(m: re.Match[str]) -> str:
        tags[m.group(1)] = m.group(2) if m.group(2) is not None else m.group(3)
        return ""

    rest = _TAG.sub(take, text)
    return rest.strip() if tags else text, tags


def read_redcap_dictionary(
    source: str | Path | bytes,
    *,
    name: str | None = None,
    other_fields: Mapping[str, OtherFormField] | None = None,
) -> Dictionary:
    """Read a REDCap data dictionary CSV.

    Long because it reads the dictionary in one pass, row by row, each with its own
    checks, so that every problem in the file is reported at once; each row's field is
    read by _read_field.

    Args:
        source: A path, the file's bytes, or its decoded text.
        name: How to call the file in error messages (default: the path's name).
        other_fields: Fields of forms outside this file (the registry's) that
            its logic and calculations may name.

    Returns:
        The dictionary; its forms in the order they first appear. Its
        ``notes`` say what was read differently from the letter of the file:
        non-REDCap columns ignored, ``sql`` and BioPortal fields kept as text,
        a Windows-1252 file decoded.

    Raises:
        ValidationFailed: Every problem found — wrong headers, unknown field or
            validation types, bad choice strings, syntax errors, duplicate
            names, references to missing fields — each located as
            ``file:row:field`` (the header is row 1).
    """
    label, text, decoded = read_dictionary_source(source, name=name, default="dictionary.csv")
    notes: list[ErrorDetail] = list(decoded)
    # Cells careloop escaped for spreadsheets on export come back as they were.
    rows = [restore_row(r) for r in csv_rows(text, name=label)]
    if not rows or not any(c.strip() for c in rows[0]):
        raise ValidationFailed(
            f"{label} is empty; expected a REDCap data dictionary with a header row."
        )
    columns = _header_map(rows[0], label, notes)
    problems: list[ErrorDetail] = []
    form_fields: dict[str, list[Field]] = {}
    form_order: list[str] = []
    row_of: dict[tuple[str, str], int] = {}
    first_row: dict[str, int] = {}
    last_form: str | None = None
    for number, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue

        def cell(key: str, row: list[str] = row) -> str:
            i = columns.get(key)
            return row[i] if i is not None and i < len(row) else ""

        field_name = cell("field_name").strip()
        form_name = cell("form_name").strip()
        here = f"{label}:{number}:{field_name or '?'}"
        if len(row) > len(rows[0]):
            problems.append(
                ErrorDetail(
                    here,
                    f"row has {len(row)} cells but the header has "
                    f"{len(rows[0])}; check for an unquoted comma",
                )
            )
        if not field_name:
            problems.append(ErrorDetail(here, "the Variable / Field Name is empty"))
            continue
        if not form_name:
            problems.append(ErrorDetail(here, "the Form Name is empty"))
            continue
        field = _read_field(cell, here, problems, notes)
        if field is None:
            continue
        if form_name != last_form and form_name in form_fields:
            problems.append(
                ErrorDetail(
                    here,
                    f"the fields of form {form_name!r} are not together; "
                    "REDCap needs each form's rows to be contiguous",
                    form_name,
                )
            )
        last_form = form_name
        first = first_row.get(field.name)
        if first is not None:
            problems.append(
                ErrorDetail(
                    here,
                    f"duplicate field name {field.name!r} (first on row {first}); names must "
                    "be unique across the whole dictionary",
                    field.name,
                )
            )
            continue
        first_row[field.name] = number
        if form_name not in form_fields:
            form_fields[form_name] = []
            form_order.append(form_name)
        form_fields[form_name].append(field)
        row_of[(form_name, field.name)] = number
    forms = [Form(name=n, fields=tuple(form_fields[n])) for n in form_order]

    def locate(form: str, field: str) -> str:
        return f"{label}:{row_of.get((form, field), '?')}:{field}"

    problems.extend(check_forms(forms, locate=locate, other_fields=other_fields))
    for form in forms:
        problems.extend(_event_date_problems(form, partial(locate, form.name)))
    raise_problems(sorted(_dedupe(problems), key=_row_number), source=label)
    if not forms:
        raise ValidationFailed(f"{label} has a header but no fields.")
    return Dictionary(link_other_forms(forms, other_fields=other_fields), notes=tuple(notes))


def _row_number(detail: ErrorDetail) -> int:
    parts = detail.location.split(":")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def _dedupe(problems: list[ErrorDetail]) -> list[ErrorDetail]:
    seen: set[tuple[str, str]] = set()
    out = []
    for p in problems:
        key = (p.location, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _read_field(
    get: Callable[[str], str], here: str, problems: list[ErrorDetail], notes: list[ErrorDetail]
) -> Field | None:
    """Read one REDCap dictionary row as a field, adding each problem to problems; None if any.

    Long because it reads the row's columns one after another, each with its own check,
    so that every problem in the row is reported at once.
    """
    before = len(problems)
    name = get("field_name").strip()
    choices_text = get("select_choices_or_calculations").strip()
    validation_text = get("text_validation_type_or_show_slider_number").strip()
    raw_type = get("field_type").strip().lower()
    ontology = ""
    if raw_type == "sql":
        # The query runs against REDCap's own database, which careloop does not
        # have; the answer REDCap stores is the chosen value, so keep it as text.
        notes.append(
            ErrorDetail(
                here,
                "a REDCap 'sql' field: its choices come from a query on the REDCap server, "
                "so careloop keeps it as a text field and drops the query",
                choices_text,
            )
        )
        raw_type, choices_text = "text", ""
    elif raw_type == "text" and choices_text.upper().startswith("BIOPORTAL:"):
        ontology = choices_text.split(":", 1)[1].strip()
        choices_text = ""
        notes.append(
            ErrorDetail(
                here,
                f"a BioPortal ontology field ({ontology}): careloop takes its answer as text "
                "without looking it up, and keeps the ontology for export",
                ontology,
            )
        )
    try:
        ftype = parse_field_type(raw_type)
    except InputError as exc:
        problems.append(ErrorDetail(here, exc.message, get("field_type")))
        return None
    choices: tuple[Choice, ...] = ()
    calculation = None
    slider_labels: tuple[str, ...] = ()
    slider_show = False
    validation = None
    if ftype in (FieldType.DROPDOWN, FieldType.RADIO, FieldType.CHECKBOX):
        try:
            choices = parse_choices(choices_text) if choices_text else ()
        except InputError as exc:
            problems.append(ErrorDetail(here, f"bad choices: {exc.message}", choices_text))
    elif ftype is FieldType.CALC:
        calculation = expression_or_problem(
            choices_text, where=here, problems=problems, what="calculation"
        )
    elif ftype is FieldType.SLIDER:
        slider_labels = tuple(p.strip() for p in choices_text.split("|")) if choices_text else ()
        slider_show = validation_text.lower() == "number"
        if validation_text and not slider_show:
            problems.append(
                ErrorDetail(
                    here,
                    f"a slider's validation column holds 'number' (show "
                    f"the number) or nothing, not {validation_text!r}",
                    validation_text,
                )
            )
        validation_text = ""
    elif choices_text and ftype not in (FieldType.YESNO, FieldType.TRUEFALSE):
        # REDCap keeps (and exports) whatever a field's choices cell held when its
        # type was changed, but a field of this type does not use it.
        notes.append(
            ErrorDetail(
                here,
                f"a {ftype.value} field does not use the choices column; its content was ignored",
                choices_text,
            )
        )
    if validation_text:
        try:
            validation = parse_validation_type(validation_text)
        except InputError as exc:
            problems.append(ErrorDetail(here, exc.message, validation_text))
    logic = expression_or_problem(
        get("branching_logic"), where=here, problems=problems, what="branching logic"
    )
    annotation, tags = _split_annotation(get("field_annotation"))
    code, domain, unit = _read_tags(tags, here, problems)
    flags = {}
    for key in ("identifier", "required_field", "matrix_ranking"):
        raw = get(key).strip().lower()
        if raw not in ("", "y", "n", "1", "0"):
            problems.append(
                ErrorDetail(here, f"{key.replace('_', ' ')} must be 'y' or empty, not {raw!r}", raw)
            )
        flags[key] = raw in ("y", "1")
    if len(problems) > before:
        return None
    return Field(
        name=name,
        type=ftype,
        label=get("field_label"),
        note=get("field_note"),
        section_header=get("section_header"),
        choices=choices,
        validation=validation,
        min_value=_bound(get("text_validation_min"), validation, "min", here, notes),
        max_value=_bound(get("text_validation_max"), validation, "max", here, notes),
        calculation=calculation,
        branching_logic=logic,
        required=flags["required_field"],
        identifier=flags["identifier"],
        slider_labels=slider_labels,
        slider_show_number=slider_show,
        alignment=get("custom_alignment").strip().upper(),
        question_number=get("question_number").strip(),
        matrix_group=get("matrix_group_name").strip(),
        matrix_ranking=flags["matrix_ranking"],
        annotation=annotation,
        code=code,
        omop_domain=domain,
        unit=unit,
        ontology=ontology,
    )


_SPREADSHEET_DATE = re.compile(
    r"^([0-9]{1,2})/([0-9]{1,2})/([0-9]{4}|[0-9]{2})(?: ([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?)?$"
)


def _bound(
    text: str, validation: str | None, which: str, here: str, notes: list[ErrorDetail]
) -> str | None:
    """A Text Validation Min/Max; a date a spreadsheet rewrote as M/D/YY is made ISO again.

    Excel shows ``2023-08-01 01:01`` as ``8/1/23 1:01`` and saves it so; REDCap
    reads such a dictionary (its own feature tests upload one), so careloop
    does too, with a note to check the date.
    """
    value = text.strip()
    m = _SPREADSHEET_DATE.match(value)
    if not value or m is None or not (validation or "").startswith("date"):
        return value or None
    month, day, year = int(m.group(1)), int(m.group(2)), m.group(3)
    if len(year) == 2:  # Excel's window: 00-29 are 2000s, 30-99 1900s
        year = f"{20 if int(year) < 30 else 19}{year}"
    iso = f"{year}-{month:02d}-{day:02d}"
    if (validation or "").startswith("datetime"):
        clock = f"{int(m.group(4) or 0):02d}:{m.group(5) or '00'}"
        if (validation or "").startswith("datetime_seconds"):
            clock += f":{m.group(6) or '00'}"
        iso += f" {clock}"
    notes.append(
        ErrorDetail(
            here,
            f"{which} {value!r} looks like a date a spreadsheet rewrote as month/day/year; "
            f"it was read as {iso!r} (check it)",
            value,
        )
    )
    return iso


def _read_tags(
    tags: dict[str, str], here: str, problems: list[ErrorDetail]
) -> tuple[StandardCode | None, OmopDomain | None, str | None]:
    code = None
    if "CODE" in tags:
        parts = tags["CODE"].split("|")
        if len(parts) < 2 or parts[0] not in CODE_SYSTEMS or not parts[1]:
            problems.append(
                ErrorDetail(
                    here,
                    "@CARELOOP-CODE must be 'SYSTEM|code|display' with "
                    f"SYSTEM one of {', '.join(CODE_SYSTEMS)}",
                    tags["CODE"],
                )
            )
        else:
            system: CodeSystem = parts[0]  # type: ignore[assignment]
            code = StandardCode(system, parts[1], "|".join(parts[2:]))
    domain = None
    if "OMOP" in tags:
        if tags["OMOP"] not in OMOP_DOMAINS:
            problems.append(
                ErrorDetail(
                    here, f"@CARELOOP-OMOP must be one of {', '.join(OMOP_DOMAINS)}", tags["OMOP"]
                )
            )
        else:
            domain = tags["OMOP"]
    return code, domain, tags.get("UNIT") or None  # type: ignore[return-value]


def _tag(name: str, value: str) -> str:
    quote = "'" if '"' in value else '"'
    return f"@CARELOOP-{name}={quote}{value}{quote}"


def _annotation_out(field: Field, careloop_tags: bool) -> str:
    parts = [field.annotation] if field.annotation else []
    if careloop_tags:
        if field.code is not None:
            code = f"{field.code.system}|{field.code.code}"
            if field.code.display:
                code += f"|{field.code.display}"
            parts.append(_tag("CODE", code))
        if field.omop_domain:
            parts.append(_tag("OMOP", field.omop_domain))
        if field.unit:
            parts.append(_tag("UNIT", field.unit))
    return " ".join(parts)


def _row(form: Form, field: Field, careloop_tags: bool) -> list[str]:
    if field.type is FieldType.CALC and field.calculation is not None:
        choices = field.calculation.source
    elif field.type is FieldType.SLIDER:
        choices = " | ".join(field.slider_labels)
    elif field.ontology:
        choices = f"BIOPORTAL:{field.ontology}"
    else:
        choices = format_choices(field.choices)
    validation = field.validation or ""
    if field.type is FieldType.SLIDER:
        validation = "number" if field.slider_show_number else ""
    return [
        field.name,
        form.name,
        field.section_header,
        field.type.value,
        field.label,
        choices,
        field.note,
        validation,
        field.min_value or "",
        field.max_value or "",
        "y" if field.identifier else "",
        field.branching_logic.source if field.branching_logic is not None else "",
        "y" if field.required else "",
        field.alignment,
        field.question_number,
        field.matrix_group,
        "y" if field.matrix_ranking else "",
        _annotation_out(field, careloop_tags),
    ]


_ACTION_TAG_START = re.compile(r"@[A-Z][A-Z0-9_-]*(?=$|[\s=(])")
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")
_SPREADSHEET_RISK = re.compile(
    r"\||\b(?:HYPERLINK|WEBSERVICE|IMPORT[A-Z]*|IMAGE|FILTERXML|CALL|REGISTER(?:\.ID)?|EXEC|"
    r"RTD|DDE|INFO|CELL)\s*\(",
    re.IGNORECASE,
)


def _action_tags_only(text: str) -> bool:
    """Whether a Field Annotation is REDCap action tags a spreadsheet cannot misuse.

    REDCap needs action tags (``@READONLY``, ``@CARELOOP-CODE="LOINC|…"``) to
    start with ``@`` exactly as written, so they are exempt from the formula
    escape; a cell that outside its quoted values uses DDE (``|``) or calls a
    function that reaches out (HYPERLINK, WEBSERVICE, IMPORT…) is escaped
    anyway. Only admins author dictionaries.
    """
    if _ACTION_TAG_START.match(text) is None:
        return False
    return _SPREADSHEET_RISK.search(_QUOTED.sub('""', text)) is None


def write_redcap_dictionary(
    forms: Dictionary | Form | Iterable[Form], *, careloop_tags: bool = True
) -> str:
    """Write forms as a REDCap data dictionary CSV (text, ``\\n`` line ends).

    Args:
        forms: A dictionary, one form, or several.
        careloop_tags: Keep codes, OMOP domains and units as ``@CARELOOP-…``
            words in the Field Annotation (REDCap ignores them).
    """
    forms_given = form_list(forms)
    out = io.StringIO()
    # Spreadsheet-safe; careloop's dictionary import removes the escape again.
    annotation = REDCAP_COLUMNS.index("Field Annotation")
    writer = safe_writer(
        out,
        lineterminator="\n",
        keep=lambda i, v: i == annotation and isinstance(v, str) and _action_tags_only(v),
    )
    writer.writerow(REDCAP_COLUMNS)
    for form in forms_given:
        for field in form.fields:
            writer.writerow(_row(form, field, careloop_tags))
    return out.getvalue()
