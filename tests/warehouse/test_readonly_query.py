"""Analysts' read-only SQL: one SELECT/WITH/EXPLAIN, everything else refused."""

from __future__ import annotations

import pandas as pd
import pytest

from careloop.core.errors import InputError
from careloop.warehouse import check_readonly_sql, load_omop_csv, run_readonly_query
from tests.warehouse.engine_warnings import ENGINE_WARNINGS

pytestmark = ENGINE_WARNINGS

REFUSED = [
    "DELETE FROM person",
    "UPDATE person SET year_of_birth = 1900",
    "INSERT INTO person SELECT * FROM person",
    "DROP TABLE person",
    "CREATE TABLE x AS SELECT 1",
    "ALTER TABLE person ADD COLUMN x INT",
    "TRUNCATE person",
    "SELECT 1; SELECT 2",
    "SELECT 1; DROP TABLE person",
    "ATTACH 'other.duckdb' AS other",
    "COPY person TO '/tmp/person.csv'",
    "PRAGMA table_info('person')",
    "SET threads = 1",
    "EXPLAIN ANALYZE DELETE FROM person",
    "WITH gone AS (DELETE FROM person RETURNING *) SELECT count(*) FROM gone",
    "SELECT * INTO person_copy FROM person",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT getenv('HOME')",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT * FROM query('SELECT 1')",
    "SELECT * FROM person FOR UPDATE",
    "SELECT * FROM other.main.person",
    "",
]


@pytest.mark.parametrize("sql", REFUSED)
def test_anything_but_a_single_read_is_refused(sql):
    with pytest.raises(InputError):
        check_readonly_sql(sql, dialect="duckdb")


def test_a_refusal_names_the_offending_statement():
    with pytest.raises(InputError, match="DELETE"):
        check_readonly_sql("delete from person", dialect="postgres")


def test_reads_match_pandas_on_the_csvs_on_each_engine(warehouse, omop_small):
    load_omop_csv(warehouse, omop_small)
    frame = run_readonly_query(
        warehouse,
        "WITH c AS (SELECT condition_concept_id, count(*) AS n FROM condition_occurrence "
        "GROUP BY condition_concept_id) SELECT * FROM c ORDER BY n DESC, condition_concept_id",
    )
    raw = pd.read_csv(omop_small / "condition_occurrence.csv")
    expected = raw.groupby("condition_concept_id").size()
    got = dict(zip(frame.condition_concept_id.astype(int), frame.n.astype(int), strict=True))
    assert got == expected.to_dict()
    limited = run_readonly_query(warehouse, "SELECT * FROM person ORDER BY person_id;", limit=5)
    assert len(limited) == 5 and limited.person_id.tolist() == sorted(limited.person_id)
    plan = run_readonly_query(warehouse, "EXPLAIN SELECT count(*) FROM person")
    assert len(plan) >= 1
    for sql in ("DELETE FROM person", "SELECT 1; DROP TABLE person"):
        with pytest.raises(InputError):
            run_readonly_query(warehouse, sql)
    assert int(warehouse.table("person").count().execute()) == 40


def test_engine_errors_become_input_errors(warehouse):
    with pytest.raises(InputError, match="rejected"):
        run_readonly_query(warehouse, "SELECT * FROM no_such_table")
    # The connection is still usable afterwards.
    assert run_readonly_query(warehouse, "SELECT 1 AS one").one.tolist() == [1]


def test_a_sum_of_big_integers_comes_back_exact_on_each_engine(warehouse, omop_small):
    load_omop_csv(warehouse, omop_small)
    # 2**53 + 1 has no float64: a sum turned into a float would print 9007199254740992.
    frame = run_readonly_query(
        warehouse,
        "SELECT sum(x) AS total, sum(person_id) AS persons, count(*) AS n FROM "
        "(SELECT CAST(9007199254740992 AS BIGINT) AS x, person_id FROM person WHERE person_id = 6 "
        "UNION ALL SELECT CAST(1 AS BIGINT), 0) AS t",
    )
    assert frame.total.tolist() == [9007199254740993]
    assert str(frame.total.dtype) == "Int64" and frame.n.tolist() == [2]
    assert frame.persons.tolist() == [6]
    huge = run_readonly_query(
        warehouse,
        "SELECT sum(x) AS total FROM (SELECT CAST(9223372036854775807 AS BIGINT) AS x "
        "UNION ALL SELECT CAST(9223372036854775807 AS BIGINT)) AS t",
    )
    assert huge.total.tolist() == [2 * (2**63 - 1)]  # beyond 64 bits: still exact
