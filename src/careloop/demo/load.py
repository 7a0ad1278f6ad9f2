"""Loading a synthetic network into careloop the way a registry would: through capture.

Sites and users are added with the trust services, patients registered in
bulk (with their consent), and visits and PROMs imported as REDCap-shaped
CSV files per site with :func:`careloop.capture.records_io.import_records`,
so the form's validation, the consent rules and the audit trail all apply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import pandas as pd

from careloop.capture import FieldType, Form, checkbox_column, forms_store
from careloop.capture.records_io import import_records
from careloop.content.ibd import PACKAGE as IBD
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
    """Rows of values as a CSV in REDCap's export shape for ``form``.

    ``rows`` has ``local_id``, ``event_date`` (dates) and a column of text per
    field (missing: empty or NA); a checkbox field's column holds lists of codes.
    """
    rows = rows.reset_index(drop=True)
    blank = pd.Series("", index=rows.index, dtype=object)
    out: dict[str, Any] = {
        "record_id": rows["local_id"].astype(str),
        "event_date": pd.to_datetime(rows["event_date"]).dt.strftime("%Y-%m-%d"),
    }
    for f in form.fields:
        if f.type is FieldType.DESCRIPTIVE:
            continue
        if f.type is FieldType.CHECKBOX:
            chosen = (
                rows[f.name].explode().dropna().astype(str)
                if f.name in rows
                else pd.Series(dtype=str)
            )
            for c in f.choices:
                ticked = rows.index.isin(chosen.index[chosen == c.code])
                out[checkbox_column(f.name, c.code)] = pd.Series(ticked, index=rows.index).map(
                    {True: "1", False: "0"}
                )
        elif f.name in rows:
            out[f.name] = rows[f.name].astype(object).fillna("").astype(str)
        else:
            out[f.name] = blank
    return pd.DataFrame(out).to_csv(index=False, lineterminator="\r\n").encode()


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
        # The demo's network is an IBD one, whichever content packages are active.
        registry,
        operator,
        IBD.form_file("yaml").read_bytes(),
        fmt="yaml",
        name="ibd_registry.yaml",
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
