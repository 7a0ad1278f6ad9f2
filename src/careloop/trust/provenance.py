"""Provenance: what produced each derived artefact, so results can be traced back.

Every warehouse refresh, load, import, measure run and analysis records one
:class:`Provenance` entry: its inputs (paths or snapshots with SHA-256 and row
counts), parameters, the code version, who ran it and when, rows in, out and
rejected, and the entries it built on (``parent_ids``). Entries are exposed
as FHIR R4 ``Provenance`` resources too.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from careloop import __version__
from careloop.core.clock import as_utc, iso_utc, utcnow
from careloop.core.errors import NotFound
from careloop.store.database import Registry
from careloop.store.models import ProvenanceRecord
from careloop.store.scoping import Scope, set_scope
from careloop.trust.principal import Principal


@dataclass(frozen=True)
class InputRecord:
    """One input of an activity."""

    name: str
    """A path, table or snapshot name."""
    sha256: str | None = None
    """Content hash, when the input is a file or a frozen snapshot."""
    rows: int | None = None
    """Rows read from it."""


@dataclass(frozen=True)
class Provenance:
    """A recorded activity and what it used and produced."""

    id: int
    activity: str
    """e.g. ``warehouse.load_omop``, ``warehouse.refresh``, ``measures.run``."""
    target: str
    """What was produced (a warehouse, a table, a result set)."""
    started_at: datetime
    ended_at: datetime
    agent: str
    """Who ran it (e-mail or ``cli:<login>``)."""
    code_version: str
    parameters: dict[str, Any]
    inputs: tuple[InputRecord, ...]
    outputs: dict[str, Any]
    rows_in: int | None
    rows_out: int | None
    rows_rejected: int | None
    parent_ids: tuple[int, ...] = field(default_factory=tuple)


def file_sha256(path: Path, *, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _view(row: ProvenanceRecord) -> Provenance:
    return Provenance(
        id=row.id,
        activity=row.activity,
        target=row.target,
        started_at=as_utc(row.started_at),
        ended_at=as_utc(row.ended_at),
        agent=row.agent,
        code_version=row.code_version,
        parameters=json.loads(row.parameters),
        inputs=tuple(InputRecord(**i) for i in json.loads(row.inputs)),
        outputs=json.loads(row.outputs),
        rows_in=row.rows_in,
        rows_out=row.rows_out,
        rows_rejected=row.rows_rejected,
        parent_ids=tuple(json.loads(row.parent_ids)),
    )


def record_provenance(
    registry: Registry,
    principal: Principal,
    *,
    activity: str,
    target: str,
    started_at: datetime,
    ended_at: datetime | None = None,
    parameters: Mapping[str, Any] | None = None,
    inputs: Sequence[InputRecord] = (),
    outputs: Mapping[str, Any] | None = None,
    rows_in: int | None = None,
    rows_out: int | None = None,
    rows_rejected: int | None = None,
    parent_ids: Sequence[int] = (),
) -> Provenance:
    """Store one provenance entry and return it."""
    row = ProvenanceRecord(
        activity=activity,
        target=target,
        started_at=started_at,
        ended_at=ended_at or utcnow(),
        agent=principal.email,
        code_version=f"careloop {__version__}",
        parameters=json.dumps(dict(parameters or {}), sort_keys=True, default=str),
        inputs=json.dumps([i.__dict__ for i in inputs], sort_keys=True),
        outputs=json.dumps(dict(outputs or {}), sort_keys=True, default=str),
        rows_in=rows_in,
        rows_out=rows_out,
        rows_rejected=rows_rejected,
        parent_ids=json.dumps(list(parent_ids)),
    )
    with registry.transaction() as session:
        set_scope(session, Scope.everything())
        session.add(row)
        session.flush()
        return _view(row)


def get_provenance(registry: Registry, record_id: int) -> Provenance:
    """One provenance entry by id."""
    with registry.transaction() as session:
        row = session.get(ProvenanceRecord, record_id)
        if row is None:
            raise NotFound(f"There is no provenance record {record_id}.")
        return _view(row)


def list_provenance(
    registry: Registry, *, activity: str | None = None, limit: int = 100
) -> list[Provenance]:
    """The newest provenance entries, optionally of one activity."""
    with registry.transaction() as session:
        query = select(ProvenanceRecord).order_by(ProvenanceRecord.id.desc()).limit(limit)
        if activity:
            query = query.where(ProvenanceRecord.activity == activity)
        return [_view(r) for r in session.scalars(query)]


def find_provenance(
    registry: Registry, *, activities: Sequence[str], target: str | None = None
) -> list[Provenance]:
    """Every entry of these activities (and, when given, this target), oldest first."""
    with registry.transaction() as session:
        query = (
            select(ProvenanceRecord)
            .where(ProvenanceRecord.activity.in_(list(activities)))
            .order_by(ProvenanceRecord.id)
        )
        if target is not None:
            query = query.where(ProvenanceRecord.target == target)
        return [_view(r) for r in session.scalars(query)]


def lineage(registry: Registry, record_id: int) -> list[Provenance]:
    """The entry and every entry it built on, nearest first."""
    seen: dict[int, Provenance] = {}
    queue = [record_id]
    while queue:
        current = queue.pop(0)
        if current in seen:
            continue
        entry = get_provenance(registry, current)
        seen[current] = entry
        queue.extend(entry.parent_ids)
    return list(seen.values())


def as_fhir(
    entry: Provenance,
    *,
    base: str = "urn:careloop",
    reference: Callable[[int], str] | None = None,
) -> dict[str, Any]:
    """The entry as a FHIR R4 Provenance resource (validated by fhir.resources).

    ``reference`` gives the reference to a parent entry (default
    ``Provenance/careloop-<id>``); a Bundle passes the parents' ``fullUrl``.
    """
    refer = reference or (lambda p: f"Provenance/careloop-{p}")
    from fhir.resources.R4B.provenance import Provenance as FhirProvenance

    resource = {
        "resourceType": "Provenance",
        "id": f"careloop-{entry.id}",
        "target": [{"display": entry.target}],
        "occurredPeriod": {"start": iso_utc(entry.started_at), "end": iso_utc(entry.ended_at)},
        "recorded": iso_utc(entry.ended_at),
        "activity": {"text": entry.activity},
        "agent": [{"who": {"display": entry.agent}}],
        "entity": [
            {
                "role": "source",
                "what": {
                    "display": i.name,
                    **(
                        {"identifier": {"system": "urn:sha256", "value": i.sha256}}
                        if i.sha256
                        else {}
                    ),
                },
            }
            for i in entry.inputs
        ]
        + [{"role": "derivation", "what": {"reference": refer(p)}} for p in entry.parent_ids],
    }
    if not resource["entity"]:
        del resource["entity"]
    FhirProvenance.model_validate(resource)
    return resource


def full_url(entry_id: int) -> str:
    """A provenance entry's ``fullUrl`` in a Bundle: a stable ``urn:uuid`` made from its id."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'urn:careloop:provenance:{entry_id}')}"


def chain_bundle(entries: Sequence[Provenance]) -> dict[str, Any]:
    """A chain of entries as a FHIR R4 Bundle (``collection``) of Provenance resources.

    Each entry's ``fullUrl`` is a ``urn:uuid`` and its parents are referred to
    by theirs, so the Bundle resolves on its own; a parent outside the chain
    keeps the plain ``Provenance/careloop-<id>`` reference.
    """
    from fhir.resources.R4B.bundle import Bundle

    inside = {e.id for e in entries}

    def refer(parent: int) -> str:
        return full_url(parent) if parent in inside else f"Provenance/careloop-{parent}"

    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": full_url(e.id), "resource": as_fhir(e, reference=refer)} for e in entries
        ],
    }
    Bundle.model_validate(bundle)
    return bundle
