"""Alerts to the owners of a measure: a new special-cause signal, a monthly feedback report ready.

After a warehouse and measures refresh, :func:`find_alerts` reads the latest
stored measure results and names what is new:

- a **signal**: the latest month of a measure, at a site or for the network,
  is outside its control limits (key: measure, site, month), or is part of a
  shift or trend (Making Data Count rules; key: measure, site, the first
  month of that stretch, so a shift that goes on is not told again each
  month);
- a **feedback report**: a site has results for a new month, so its
  audit-and-feedback report for that month is ready (key: site, month).

:func:`record_alerts` keeps one row per alert and owner (who owns it is
:data:`careloop.trust.policy.ALERT_OWNERS`) — the pair is unique, so an alert
is never made twice for a person — and writes one audit entry per alert.
:func:`send_due` e-mails the alerts not yet e-mailed, except in each
person's quiet hours (20:00 to 08:00 in the site's time zone by default,
UTC for the network's alerts): those wait for the next run after the quiet
hours end. An e-mail says which measure, where and when, with a link; it
never holds a patient's identifier (alerts are made from aggregates only).
People read their alerts in the app (:func:`alerts_of`, :func:`unread_count`,
:func:`mark_read`). ``careloop alerts send-due`` runs all three steps and can
be run as often as wanted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select, update

from careloop.core.errors import CareloopError, NotFound
from careloop.core.mail import Mailer
from careloop.measures.catalog import MeasureCatalog
from careloop.practice.feedback.dashboards import overview, site_view, stored_results
from careloop.practice.feedback.dashboards.model import Series
from careloop.store.database import Registry
from careloop.store.models import Alert, Membership, Site, User
from careloop.trust import audit
from careloop.trust.audit import AuditEvent
from careloop.trust.policy import ALERT_OWNERS
from careloop.trust.principal import Principal
from careloop.warehouse.connection import WarehouseOpener

__all__ = [
    "QUIET_HOURS",
    "AlertRun",
    "FoundAlert",
    "alerts_of",
    "find_alerts",
    "mark_read",
    "record_alerts",
    "run_alerts",
    "send_due",
    "unread_count",
]

QUIET_HOURS = (20, 8)
"""No alert e-mail from 20:00 until 08:00, local time: they wait until the morning."""

AlertKind = Literal["signal", "feedback_report"]


@dataclass(frozen=True)
class FoundAlert:
    """Something new a measure's owners should hear of."""

    key: str
    """What it is about, uniquely (kind, measure, site, month)."""
    kind: AlertKind
    """A special-cause signal, or a site's monthly feedback report ready."""
    measure_id: str
    """The measure."""
    site: str
    """The site's code; ``""`` for the network."""
    title: str
    """One line, for the list and the e-mail's subject."""
    body: str
    """A few sentences: what, where, when, what to do."""
    link: str
    """The page to open, a path of the app (``/measures/...``)."""


@dataclass(frozen=True)
class AlertRun:
    """What one run of :func:`run_alerts` did."""

    found: int
    """Alerts found in the latest results (new or not)."""
    created: int
    """New alert rows (one per alert and owner)."""
    emailed: int
    """E-mails sent in this run (one per person, listing all their new alerts)."""
    waiting: int
    """People whose alerts are held back by quiet hours, for a later run."""
    failed: tuple[str, ...] = ()
    """E-mails the server refused (each stays queued), with the reason."""


def _month(day: date) -> str:
    return day.strftime("%B %Y")


def _where(site: str) -> str:
    return f"at {site}" if site else "across the network"


def _signal_alerts(title: str, measure_id: str, series: Series) -> list[FoundAlert]:
    """The signals of the latest month of ``series`` (none without a chart)."""
    if series.chart is None or series.signals is None:
        return []
    pts = series.chart.points
    last = pts.iloc[-1]
    month = series.points[-1].period_start if series.points else date.today()
    link = f"/sites/{series.site}" if series.site else f"/measures/{measure_id}"
    found = []
    if bool(last.get("sigma_signal", False)):
        found.append(
            FoundAlert(
                key=f"signal:point:{measure_id}:{series.site}:{month.isoformat()}",
                kind="signal",
                measure_id=measure_id,
                site=series.site,
                title=f"{title} {_where(series.site)}: {_month(month)} is outside the limits",
                body=(
                    f"In {_month(month)}, “{title}” {_where(series.site)} was outside its "
                    "control limits: more than normal variation would give. Look at the "
                    "chart and ask what was different that month."
                ),
                link=link,
            )
        )
    pattern = [c for c in ("mdc_shift", "mdc_trend", "mdc_two_of_three") if c in pts.columns]
    flags = pts[pattern].fillna(False).astype(bool).any(axis=1).tolist() if pattern else []
    if flags and flags[-1] and not bool(last.get("sigma_signal", False)):
        # The alert is keyed by the stretch's first month: a shift that goes on is told once.
        start = len(flags) - 1
        while start > 0 and flags[start - 1]:
            start -= 1
        first = series.points[start].period_start
        found.append(
            FoundAlert(
                key=f"signal:shift:{measure_id}:{series.site}:{first.isoformat()}",
                kind="signal",
                measure_id=measure_id,
                site=series.site,
                title=f"{title} {_where(series.site)}: a shift or trend since {_month(first)}",
                body=(
                    f"Since {_month(first)}, “{title}” {_where(series.site)} shows a "
                    "shift or a trend up to the latest month: more than normal variation "
                    "would give. Something has changed; the chart shows when."
                ),
                link=link,
            )
        )
    return found


def find_alerts(
    warehouse: WarehouseOpener, catalog: MeasureCatalog, operator: Principal
) -> list[FoundAlert]:
    """The signals and feedback reports of the latest stored measure results.

    Raises:
        NotFound: There are no stored measure results yet.
    """
    stored = stored_results(warehouse)
    found: list[FoundAlert] = []
    for row in overview(stored, catalog, operator).rows:
        found += _signal_alerts(row.measure.title, row.measure.id, row.network)
    for site in stored.sites:
        view = site_view(stored, catalog, site, operator)
        for site_row in view.rows:
            found += _signal_alerts(site_row.measure.title, site_row.measure.id, site_row.site)
        months = [r.site.latest.period_start for r in view.rows if r.site.latest is not None]
        if months:
            month = max(months)
            found.append(
                FoundAlert(
                    key=f"feedback:{site}:{month.isoformat()}",
                    kind="feedback_report",
                    measure_id="",
                    site=site,
                    title=f"{site}'s audit and feedback report for {_month(month)} is ready",
                    body=(
                        f"The measures of {site} for {_month(month)} are in: see how the site "
                        "compares with the network, and its decision-support cards."
                    ),
                    link=f"/sites/{site}/feedback",
                )
            )
    return found


def _owners(registry: Registry, site: str) -> list[int]:
    """Ids of the enabled users who own the alerts of ``site`` (``""``: the network's)."""
    with registry.read_transaction() as session:
        rows = session.execute(
            select(Membership.user_id, Membership.role, Site.code)
            .join(User, User.id == Membership.user_id)
            .outerjoin(Site, Site.id == Membership.site_id)
            .where(User.disabled.is_(False))
        ).all()
    roles = ALERT_OWNERS["site" if site else "network"]
    return sorted(
        {
            r.user_id
            for r in rows
            if r.role in roles and (r.code is None or (site and r.code == site))
            and (site or r.code is None)
        }
    )  # fmt: skip


def record_alerts(
    registry: Registry, operator: Principal, found: Sequence[FoundAlert], *, now: datetime
) -> int:
    """Keep each found alert for each of its owners, once; return how many rows are new."""
    created = 0
    owners_of = {site: _owners(registry, site) for site in {a.site for a in found}}
    with registry.transaction() as session:
        existing = {(r.key, r.user_id) for r in session.execute(select(Alert.key, Alert.user_id))}
        events = []
        for alert in found:
            new = [u for u in owners_of[alert.site] if (alert.key, u) not in existing]
            for user_id in new:
                session.add(
                    Alert(
                        key=alert.key,
                        kind=alert.kind,
                        user_id=user_id,
                        measure_id=alert.measure_id,
                        site_code=alert.site or None,
                        title=alert.title,
                        body=alert.body,
                        link=alert.link,
                        created_at=now,
                    )
                )
            if new:
                created += len(new)
                events.append(
                    AuditEvent(
                        action="alert.create",
                        category="alert",
                        user_email=operator.email,
                        role=operator.role_label() or None,
                        site_code=alert.site or None,
                        details={"key": alert.key, "recipients": new},
                    )
                )
        audit.append_many(session, events)
    return created


def _zone(name: str | None) -> tzinfo:
    try:
        return ZoneInfo(name) if name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def quiet(now: datetime, zone: tzinfo, hours: tuple[int, int] = QUIET_HOURS) -> bool:
    """Whether ``now`` falls in the quiet hours (from ``hours[0]`` to ``hours[1]`` o'clock;
    two equal hours: none)."""
    hour = now.astimezone(zone).hour
    start, end = hours
    return start <= hour or hour < end if start > end else start <= hour < end


def _digest(alerts: Sequence[Alert], base_url: str) -> tuple[str, str]:
    """One e-mail's subject and text for a person's new alerts, newest last."""
    base = base_url.rstrip("/")
    if len(alerts) == 1:
        (only,) = alerts
        return (
            f"careloop: {only.title}",
            f"{only.body}\n\nOpen it in careloop: {base}{only.link}\n",
        )
    parts = [f"You have {len(alerts)} new alerts in careloop.\n"]
    for number, alert in enumerate(alerts, start=1):
        parts.append(f"{number}. {alert.title}\n{alert.body}\nOpen it: {base}{alert.link}\n")
    return f"careloop: {len(alerts)} new alerts", "\n".join(parts)


def send_due(
    registry: Registry,
    mailer: Mailer,
    *,
    now: datetime,
    base_url: str = "",
    quiet_hours: tuple[int, int] = QUIET_HOURS,
) -> tuple[int, int, tuple[str, ...]]:
    """E-mail each person one message listing their alerts not yet e-mailed, leaving out
    those in their quiet hours; audit each e-mail with the alerts it carried.

    Returns:
        (e-mails sent, people whose alerts wait for the quiet hours to end, failures with
        their reasons).
    """
    with registry.read_transaction() as session:
        zones = {s.code: s.time_zone for s in session.scalars(select(Site))}
        due = session.execute(
            select(Alert, User.email).join(User, User.id == Alert.user_id)
            .where(Alert.emailed_at.is_(None), User.disabled.is_(False))
            .order_by(Alert.id)
        ).all()  # fmt: skip
    ready: dict[str, list[Alert]] = {}
    held: set[str] = set()
    for alert, email in due:
        if quiet(now, _zone(zones.get(alert.site_code or "")), quiet_hours):
            held.add(email)
        else:
            ready.setdefault(email, []).append(alert)
    sent, failed = 0, []
    for email, alerts in ready.items():
        subject, text = _digest(alerts, base_url)
        try:
            mailer.send(to=email, subject=subject, text=text)
        except CareloopError as exc:
            failed.append(f"{email}: {exc.message}")
            continue
        _emailed(registry, email, alerts, now)
        sent += 1
    return sent, len(held - set(ready)), tuple(failed)


def _emailed(registry: Registry, email: str, alerts: Sequence[Alert], now: datetime) -> None:
    """Mark the alerts e-mailed and audit the e-mail with the alerts it carried."""
    with registry.transaction() as session:
        session.execute(
            update(Alert).where(Alert.id.in_([a.id for a in alerts])).values(emailed_at=now)
        )
        sites = {a.site_code for a in alerts}
        audit.append_many(
            session,
            [
                AuditEvent(
                    action="alert.email",
                    category="alert",
                    user_id=alerts[0].user_id,
                    user_email=email,
                    site_code=sites.pop() if len(sites) == 1 else None,
                    details={"keys": [a.key for a in alerts]},
                )
            ],
        )


def run_alerts(
    registry: Registry,
    warehouse: WarehouseOpener,
    mailer: Mailer,
    operator: Principal,
    catalog: MeasureCatalog,
    *,
    now: datetime | None = None,
    base_url: str = "",
    quiet_hours: tuple[int, int] = QUIET_HOURS,
) -> AlertRun:
    """Find, keep and e-mail what is due: safe to run as often as wanted."""
    moment = now or datetime.now(UTC)
    found = find_alerts(warehouse, catalog, operator)
    created = record_alerts(registry, operator, found, now=moment)
    sent, waiting, failed = send_due(
        registry, mailer, now=moment, base_url=base_url, quiet_hours=quiet_hours
    )
    return AlertRun(len(found), created, sent, waiting, failed)


def alerts_of(registry: Registry, principal: Principal, *, limit: int = 100) -> list[Alert]:
    """The signed-in person's alerts, newest first."""
    if principal.user_id is None:
        return []
    with registry.read_transaction() as session:
        return list(
            session.scalars(
                select(Alert).where(Alert.user_id == principal.user_id)
                .order_by(Alert.created_at.desc(), Alert.id.desc()).limit(limit)
            )
        )  # fmt: skip


def unread_count(registry: Registry, principal: Principal) -> int:
    """How many of the person's alerts are unread."""
    if principal.user_id is None:
        return 0
    with registry.read_transaction() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(Alert)
                .where(Alert.user_id == principal.user_id, Alert.read_at.is_(None))
            ) or 0
        )  # fmt: skip


def mark_read(
    registry: Registry, principal: Principal, alert_ids: Iterable[int] | None, *, now: datetime
) -> int:
    """Mark the person's alerts read (``None``: all of them); return how many changed.

    Raises:
        NotFound: An id is not one of the person's alerts.
    """
    mine = Alert.user_id == (principal.user_id if principal.user_id is not None else -1)
    wanted = None if alert_ids is None else sorted(set(alert_ids))
    with registry.transaction() as session:
        if wanted is not None:
            owned = set(session.scalars(select(Alert.id).where(mine, Alert.id.in_(wanted))))
            if owned != set(wanted):
                raise NotFound("There is no such alert of yours.")
        query = update(Alert).where(mine, Alert.read_at.is_(None))
        if wanted is not None:
            query = query.where(Alert.id.in_(wanted))
        return int(session.execute(query.values(read_at=now)).rowcount)  # type: ignore[attr-defined]
