"""What changed for a measure: knowledge deployments, learning cycles' changes and notes.

Each becomes a :class:`Deployed` that the charts draw as a vertical line; those
that changed practice for the whole unit a chart shows start a new phase
there (see :func:`careloop.practice.feedback.dashboards.series.phase_starts`).
"""

from __future__ import annotations

from collections.abc import Sequence

from careloop.community import cycle_changes
from careloop.knowledge import deployments_for
from careloop.practice.feedback.dashboards.model import Deployed
from careloop.practice.feedback.dashboards.notes import chart_notes
from careloop.store.database import Registry


def recorded_changes(
    registry: Registry, measure_id: str, network: Sequence[str]
) -> tuple[Deployed, ...]:
    """Deployments, learning cycles' changes and notes that touch the measure, by date.

    A cycle whose change reached every site of the network (or names no site)
    counts as a change of the network, as a deployment to every site does. A
    note on the network's chart is a change of every site too; one on a site's
    chart is that site's alone.
    """
    out = []
    for d in deployments_for(registry, measure_id):
        where = ", ".join(d.sites) if d.sites else "all sites"
        out.append(
            Deployed(f"{d.identifier} {d.version} ({where})", d.started_at.date(), tuple(d.sites))
        )
    for c in cycle_changes(registry, measure_id):
        everywhere = not c.sites or set(network) <= set(c.sites)
        where = "all sites" if everywhere else ", ".join(c.sites)
        out.append(
            Deployed(
                c.title,
                c.starts,
                () if everywhere else c.sites,
                kind="pdsa",
                where=f"learning cycle, {c.community}; {where}",
            )
        )
    for n in chart_notes(registry, measure_id):
        out.append(
            Deployed(
                n.text,
                n.period_start,
                (n.site,) if n.site else (),
                kind="note",
                where=f"note by {n.created_by}; {n.site or 'network'}"
                + ("; starts a new phase" if n.starts_phase else ""),
                starts_phase=n.starts_phase,
            )
        )
    return tuple(sorted(out, key=lambda d: d.started))
