"""The validator of one form version: every field error of a response at once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping

from careloop.capture.expressions import Expression, format_number
from careloop.capture.forms import Field, FieldType, Form, checkbox_column
from careloop.capture.validation.values import (
    FieldError,
    HiddenPolicy,
    StoredValue,
    ValidationResult,
    _as_text,
    _Reject,
    _resolve,
    _shown,
    _Spec,
    _spec,
)


class FormValidator:
    """A form compiled for validating many responses quickly.

    Build one per form (or let :func:`validate_response` cache it on the form)
    and call :meth:`validate` for each response.
    """

    def __init__(self, form: Form) -> None:
        self.form = form
        self._specs = {
            f.name: _spec(f)
            for f in form.fields
            if f.type
            not in (FieldType.CHECKBOX, FieldType.CALC, FieldType.DESCRIPTIVE, FieldType.FILE)
        }
        self._files = frozenset(f.name for f in form.fields if f.type is FieldType.FILE)
        self._checkboxes = {f.name: f for f in form.fields if f.type is FieldType.CHECKBOX}
        self._checkbox_columns: dict[str, tuple[str, str]] = {}
        for f in self._checkboxes.values():
            for c in f.choices:
                self._checkbox_columns[checkbox_column(f.name, c.code)] = (f.name, c.code)
        self._names = frozenset(form.field_names)
        # Fields of other forms each field's branching logic reads.
        self._outside = {
            f.name: frozenset(f.branching_logic.referenced_fields() - self._names)
            for f in form.fields
            if f.branching_logic is not None and f.branching_logic.referenced_fields() - self._names
        }
        # Logic careloop cannot evaluate within one response (events, smart variables …).
        self._undecidable = frozenset(
            f.name
            for f in form.fields
            if f.branching_logic is not None and not f.branching_logic.evaluable
        )
        self._outside_all = frozenset(
            name
            for f in form.fields
            for expr in (f.branching_logic, f.calculation)
            if expr is not None
            for name in expr.referenced_fields() - self._names
        )
        self._calcs = frozenset(f.name for f in form.fields if f.type is FieldType.CALC)
        # A file field stores nothing here, so careloop cannot require it.
        self._required = tuple(f.name for f in form.fields if f.required and f.stores_value)
        self._descriptive = frozenset(
            f.name for f in form.fields if f.type is FieldType.DESCRIPTIVE
        )
        # The walk below evaluates logic in form order. That is exact when every
        # expression looks only at earlier fields (the usual case); otherwise
        # repeat until the hidden set stops changing.
        self._steps: list[tuple[Field, Expression | None, Expression | None]] = [
            (f, f.branching_logic, f.calculation) for f in form.fields
        ]
        position = {f.name: i for i, f in enumerate(form.fields)}
        self._iterate = False
        for i, f in enumerate(form.fields):
            for expr in (f.branching_logic, f.calculation):
                if expr is None:
                    continue
                for name in expr.referenced_fields():
                    j = position.get(name)
                    if j is not None and j >= i:
                        target = form.fields[j]
                        if target.branching_logic is not None or target.type is FieldType.CALC:
                            self._iterate = True

    def validate(
        self,
        values: Mapping[str, object],
        *,
        now: dt.datetime | None = None,
        hidden: HiddenPolicy = "clear",
        context: Mapping[str, object] | None = None,
    ) -> ValidationResult:
        """Validate one response (see :func:`validate_response`).

        Long because its steps (parse each value, gather checkbox codes, evaluate
        logic and calculations, clear hidden fields, check required ones) share one
        response's working state, and all errors are reported together.
        """
        now = now or dt.datetime.now()
        errors: list[FieldError] = []
        clean: dict[str, StoredValue | frozenset[str]] = {}
        given: dict[str, object] = {}
        bad: set[str] = set()
        boxes: dict[str, set[str]] = {}
        ignored: list[str] = []
        for name, raw in values.items():
            spec = self._specs.get(name)
            if spec is not None:
                text = raw.strip() if type(raw) is str else _as_text(raw) if raw is not None else ""
                if text == "":
                    continue
                given[name] = raw
                try:
                    stored = spec.parse(text)
                    if spec.key is not None and (spec.low is not None or spec.high is not None):
                        self._check_range(spec, stored, now)
                except _Reject as exc:
                    errors.append(FieldError(name, raw, exc.rule, exc.message))
                    bad.add(name)
                    continue
                clean[name] = stored
            elif name in self._checkboxes:
                self._read_checkbox(name, raw, boxes, errors, bad)
                if boxes.get(name):
                    given[name] = raw
            elif name in self._checkbox_columns:
                field_name, code = self._checkbox_columns[name]
                text = _as_text(raw) if raw is not None else ""
                if text in ("1", "checked", "Checked"):
                    boxes.setdefault(field_name, set()).add(code)
                    given[field_name] = boxes[field_name]
                elif text not in ("", "0", "unchecked", "Unchecked"):
                    errors.append(
                        FieldError(
                            field_name,
                            raw,
                            "type",
                            f"column {name} must be 1 (checked), 0 or empty",
                        )
                    )
                    bad.add(field_name)
            elif name in self._calcs:
                continue  # calculated here; a given value (e.g. from an export) is ignored
            elif name in self._files:
                if raw not in (None, ""):
                    ignored.append(name)
            elif name in self._descriptive:
                if raw not in (None, ""):
                    errors.append(
                        FieldError(
                            name,
                            raw,
                            "no_value",
                            "a descriptive field holds no value; leave it empty",
                        )
                    )
            else:
                errors.append(
                    FieldError(
                        name, raw, "unknown_field", f"form {self.form.name!r} has no field {name!r}"
                    )
                )
        for name, codes in boxes.items():
            if codes and name not in bad:
                order = self._checkboxes[name].choice_codes
                clean[name] = tuple(c for c in order if c in codes)

        known = frozenset(context) if context else frozenset()
        env, hidden_now = self._walk(clean, frozenset(), now, context, known)
        if self._iterate:
            for _ in range(len(self.form.fields)):
                env_next, hidden_next = self._walk(clean, hidden_now, now, context, known)
                settled = hidden_next == hidden_now
                env, hidden_now = env_next, hidden_next
                if settled:
                    break
        # Shown because their logic needs another form's answer that was not given.
        undecided = {name for name, outside in self._outside.items() if outside - known}
        undecided |= self._undecidable

        if hidden == "clear" and bad & hidden_now:
            # A hidden field's value is dropped, so whether it was valid does not matter.
            errors = [e for e in errors if e.field not in hidden_now]
        cleared: list[str] = []
        for name in given:
            if name in hidden_now:
                if hidden == "flag":
                    logic = self.form.field(name).branching_logic
                    errors.append(
                        FieldError(
                            name,
                            given[name],
                            "hidden",
                            "a value was given but the "
                            f"field is hidden by its branching logic "
                            f"({logic.source if logic else ''}); leave it empty",
                        )
                    )
                else:
                    cleared.append(name)
        exempt = hidden_now | bad | undecided
        for name in self._required:
            if name not in exempt:
                v = env.get(name)
                if v is None or v == "" or v == ():
                    errors.append(
                        FieldError(
                            name,
                            None,
                            "required",
                            "this field is required when shown; give a value",
                        )
                    )
        if len(errors) > 1:
            rank = {n: i for i, n in enumerate(self.form.field_names)}
            errors.sort(key=lambda e: rank.get(e.field, len(rank)))
        out: dict[str, StoredValue] = {}
        for k, v in env.items():
            if isinstance(v, frozenset):
                continue
            out[k] = v  # type: ignore[assignment]
        return ValidationResult(
            out,
            tuple(errors),
            hidden_now,
            tuple(cleared),
            tuple(ignored),
            tuple(sorted(self._outside_all - known)),
        )

    def _walk(
        self,
        clean: Mapping[str, StoredValue | frozenset[str]],
        hidden_before: frozenset[str],
        now: dt.datetime,
        context: Mapping[str, object] | None,
        known: frozenset[str],
    ) -> tuple[dict[str, object], frozenset[str]]:
        env: dict[str, object] = dict(context) if context else {}
        for name, v in clean.items():
            if name not in hidden_before:
                env[name] = frozenset(v) if isinstance(v, tuple) else v
        hidden: set[str] = set()
        for field, logic, calc in self._steps:
            name = field.name
            if (
                logic is not None
                and name not in self._undecidable
                and not self._outside.get(name, known) - known
                and not _shown(logic.compiled(env, now))
            ):
                hidden.add(name)
                env.pop(name, None)
                continue
            if calc is not None:
                result = calc.compiled(env, now) if calc.evaluable else None
                if result is None or result == "":
                    env.pop(name, None)
                elif isinstance(result, float):
                    env[name] = format_number(result)
                elif isinstance(result, bool):
                    env[name] = "1" if result else "0"
                else:
                    env[name] = result
        for name in self._checkboxes:
            ticked = env.get(name)
            if isinstance(ticked, frozenset):
                order = self._checkboxes[name].choice_codes
                env[name] = tuple(c for c in order if c in ticked)
        if context:
            for k in context:
                if k not in self._names:
                    env.pop(k, None)
        return env, frozenset(hidden)

    def _read_checkbox(
        self,
        name: str,
        raw: object,
        boxes: dict[str, set[str]],
        errors: list[FieldError],
        bad: set[str],
    ) -> None:
        field = self._checkboxes[name]
        if raw is None or raw == "":
            return
        if isinstance(raw, str):
            items = [p.strip() for p in raw.split(",") if p.strip()]
        elif isinstance(raw, Collection):
            items = [_as_text(p) for p in raw]
        else:
            items = [_as_text(raw)]
        wrong = [c for c in items if c not in field.choice_codes]
        if wrong:
            listed = ", ".join(f"{c.code} ({c.label})" for c in field.choices)
            errors.append(
                FieldError(
                    name,
                    raw,
                    "choice",
                    f"{', '.join(map(repr, wrong))} not among the options: {listed}",
                )
            )
            bad.add(name)
            return
        boxes.setdefault(name, set()).update(items)

    @staticmethod
    def _check_range(spec: _Spec, stored: str, now: dt.datetime) -> None:
        assert spec.key is not None
        value = spec.key(stored)
        low, high = spec.low, spec.high
        if low is not None:
            bound = low.value if low.value is not None else _resolve(low, now, spec.validation)
            if value < bound:  # type: ignore[operator]
                raise _Reject("min", f"must be at least {low.text}")
        if high is not None:
            bound = high.value if high.value is not None else _resolve(high, now, spec.validation)
            if value > bound:  # type: ignore[operator]
                raise _Reject("max", f"must be at most {high.text}")


def validate_response(
    form: Form,
    values: Mapping[str, object],
    *,
    now: dt.datetime | None = None,
    hidden: HiddenPolicy = "clear",
    context: Mapping[str, object] | None = None,
) -> ValidationResult:
    """Validate one response to ``form`` and compute its calculated fields.

    Args:
        form: The form the response was entered against.
        values: Field name → value. Text is the normal case; numbers, dates,
            datetimes and booleans are accepted too. A checkbox takes a list
            of codes (or ``"1,3"``), or REDCap's columns ``field___code``
            with ``1``/``0``. Values of calc fields are ignored and computed.
        now: The moment ``today``/``now`` in ranges and logic stand for.
        hidden: What to do with a value given for a field its branching logic
            hides: ``"clear"`` drops it (listed in ``cleared``), ``"flag"``
            reports it as an error.
        context: Values of fields on other forms that this form's logic reads
            (REDCap logic may look across the instruments of a record).

    Returns:
        Clean values, errors (all of them, in form order), hidden fields.
    """
    validator = form._cache.get("validator")
    if validator is None:
        validator = FormValidator(form)
        form._cache["validator"] = validator
    assert isinstance(validator, FormValidator)
    return validator.validate(values, now=now, hidden=hidden, context=context)
