"""Measure the audit API and page on a trail of ~100,000 entries (SQLite)."""
import shutil, sys, time
from pathlib import Path
from fastapi.testclient import TestClient
from careloop.trust import audit, identity
from careloop.trust.audit import AuditEvent
from careloop.web.app import create_app
from careloop.core.settings import load_settings
from careloop.trust.installation import initialise, open_registry
from careloop.trust.principal import Principal
from types import SimpleNamespace
def make_settings(tmp, url):
    return load_settings(data_dir=tmp / "data", database_url=url)
def build_installation(settings, with_users=False):
    op = Principal.operator("bench")
    initialise(settings, op, admin_email="admin@example.org", admin_password="correct horse battery staple")
    return SimpleNamespace(registry=open_registry(settings), operator=op)

root = Path("/tmp/auditbench/inst")
fresh = not (root / "data").exists()
inst = build_installation(make_settings(root, None), with_users=False) if fresh else None
if fresh:
    identity.add_user(inst.registry, inst.operator, email="aud@example.org", display_name="A",
                      password="a long enough password", roles=[("auditor", None)])
    t = time.perf_counter()
    for b in range(100):
        events = [AuditEvent(action=("read","create","update","export","login_failed","knowledge.approve")[i % 6] if i % 997 else "privilege_change",
                             category=("clinical","identity","consent","audit")[i % 4],
                             outcome=("success","success","denied","not_found","failure")[i % 5],
                             user_email=f"user{i % 50}@example.org", role="clinician",
                             site_code=("A","B",None)[i % 3], patient_pseudo_id=f"p{i % 3000}",
                             details={"i": i}) for i in range(b*1000, (b+1)*1000)]
        with inst.registry.transaction() as s:
            audit.append_many(s, events)
    print(f"filled in {time.perf_counter()-t:.1f}s")
    token = identity.create_token(inst.registry, inst.operator, name="t", for_user="aud@example.org").token
    (root / "token").write_text(token)
    inst.registry.close()
token = (root / "token").read_text()
from careloop.core.settings import load_settings
settings = make_settings(root, None)
H = {"Authorization": f"Bearer {token}"}
with TestClient(create_app(settings)) as c:
    def timed(url, n=3):
        best = 1e9
        for _ in range(n):
            t = time.perf_counter(); r = c.get(url, headers=H); d = time.perf_counter() - t
            assert r.status_code == 200, (url, r.status_code, r.text[:300])
            best = min(best, d)
        print(f"{best*1000:8.1f} ms  {len(r.content):>9} bytes  {url}")
    c.app.state.audit_chain.forget()
    t = time.perf_counter(); r = c.get("/audit", headers=H); print(f"{(time.perf_counter()-t)*1000:8.1f} ms  /audit first view (walks the whole chain)  chain took {c.app.state.audit_chain.status(c.app.state.registry).seconds:.2f}s")
    for url in ["/audit", "/audit?action=privilege_change", "/audit?user=user7%40example.org", "/audit?site=A&outcome=refused",
                "/api/audit", "/api/audit?limit=1000", "/api/audit?before=50000",
                "/api/audit?action=privilege_change", "/api/audit?user=user7%40example.org", "/api/audit?category=consent",
                "/api/audit?site=B", "/api/audit?outcome=refused", "/api/audit?patient=p17",
                "/api/audit?since=2026-01-01T00:00:00Z&action=privilege_change"]:
        timed(url)
    timed("/audit.csv", n=1)
    timed("/audit.csv?action=privilege_change", n=1)
