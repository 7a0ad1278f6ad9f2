import cProfile, pstats, time
from pathlib import Path
from careloop.core.settings import load_settings
from careloop.trust.installation import open_registry
from careloop.trust.audit_search import AuditQuery, iter_matching, csv_chunks
from careloop.trust.audit import verify_chain
s = load_settings(data_dir=Path("/tmp/auditbench/inst/data"))
r = open_registry(s)
def export():
    with r.read_transaction() as session:
        n = sum(len(c) for c in csv_chunks(iter_matching(session, AuditQuery(), site_codes=None)))
t=time.perf_counter(); cProfile.run("export()", "/tmp/auditbench/prof"); print("export", time.perf_counter()-t)
pstats.Stats("/tmp/auditbench/prof").sort_stats("cumulative").print_stats(18)
