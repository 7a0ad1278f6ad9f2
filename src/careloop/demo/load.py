"""Loading a synthetic network into careloop the way a registry would: through capture.

Sites and users are added with the trust services, patients registered in
bulk (with their consent), and visits and PROMs imported as REDCap-shaped
CSV files per site with :func:`careloop.capture.records_io.import_records`,
so the form's validation, the consent rules and the audit trail all apply.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import pandas as pd

from careloop.capture import FieldType, Form, checkbox_column, forms_store
from careloop.capture.examples import example_file
from careloop.capture.records_io import import_records
from careloop.demo.network import SyntheticNetwork
from careloop.store.database import Registry
from careloop.trust import identity, patients
from careloop.trust.principal import Principal

VISIT_FORM = "ibd_visit"
PROM_FORM = "ibd_symptoms_prom"


@dataclass(frozen=True)
class LoadCounts:
    """What the loader wrote."""

    sites: int
    patients: int
    visits: int
    proms: int
    rejected: int


def records_csv(form: Form, rows: pd.DataFrame) -> bytes:
    """Rows of values as a CSV in REDCap's export shape for ``form``."""
    columns: list[str] = ["record_id", "event_date"]
    for f in form.fields:
        if f.type is FieldType.DESCRIPTIVE:
            continue
        if f.type is FieldType.CHECKBOX:
            columns.extend(checkbox_column(f.name, c.code) for c in f.choices)
        else:
            columns.append(f.name)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    checkboxes = {f.name: f for f in form.fields if f.type is FieldType.CHECKBOX}
    plain = [c for c in columns[2:] if "___" not in c]
    records: list[dict[str, Any]] = rows.to_dict("records")  # type: ignore[assignment]
    for record in records:
        values = [record["local_id"], record["event_date"].isoformat()]
        cells = {name: str(record.get(name, "") or "") for name in plain}
        for name, f in checkboxes.items():
            chosen = set(record.get(name) or [])
            for c in f.choices:
                cells[checkbox_column(name, c.code)] = "1" if c.code in chosen else "0"
        values.extend(cells.get(c, "") for c in columns[2:])
        writer.writerow(values)
    return out.getvalue().encode()


def load_network(
    registry: Registry,
    operator: Principal,
    network: SyntheticNetwork,
    *,
    on_step: Callable[[str], None] | None = None,
) -> LoadCounts:
    """Add the network's sites, forms, patients, visits and PROMs to the registry."""
    step = on_step or (lambda _msg: None)
    for site in network.sites:
        identity.add_site(
            registry,
            operator,
            code=site.code,
            name=site.name,
            country=site.country,
            time_zone=site.time_zone,
        )
    forms_store.import_forms(
        registry, operator, example_file("yaml"), fmt="yaml", name="ibd_registry.yaml"
    )
    visit_form = forms_store.get_form(registry, operator, VISIT_FORM).form
    prom_form = forms_store.get_form(registry, operator, PROM_FORM).form
    registered = visits = proms = rejected = 0
    for site in network.sites:
        people = network.patients[network.patients.site == site.code]
        patients.register_patients(
            registry,
            operator,
            site=site.code,
            patients=[
                patients.NewPatient(
                    local_id=str(r["local_id"]),
                    birth_date=r["birth_date"],
                    sex=str(r["sex"]),
                    consent_state=str(r["consent_state"]),
                    given_name=str(r["given_name"]),
                    family_name=str(r["family_name"]),
                )
                for r in cast(list[dict[str, Any]], people.to_dict("records"))
            ],
        )
        registered += len(people)
        for form, frame, name in (
            (visit_form, network.visits, VISIT_FORM),
            (prom_form, network.proms, PROM_FORM),
        ):
            rows = frame[frame.site == site.code]
            if rows.empty:
                continue
            report = import_records(
                registry,
                operator,
                name,
                records_csv(form, rows),
                site.code,
                mode="row-level",
                name=f"{site.code}-{name}.csv",
            )
            written = report.created + report.updated + report.unchanged
            rejected += report.rejected_rows
            if name == VISIT_FORM:
                visits += written
            else:
                proms += written
        step(f"site {site.code}: {len(people)} patients")
    return LoadCounts(len(network.sites), registered, visits, proms, rejected)
