"""Cut tests/data/omop_small from OHDSI's Eunomia GiBleed CSVs (../shared/data/eunomia_gibleed).

Run from the repository root: python tests/data/omop_small/make_slice.py
Keeps 40 persons (the 20 lowest person_ids with a GI bleed, concept 192671,
and the 20 lowest without), every row of theirs in the person-level tables,
the vocabulary rows those rows use, and the small tables whole.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

SOURCE = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "eunomia_gibleed"
OUT = Path(__file__).resolve().parent

PERSON_TABLES = [
    "person",
    "observation_period",
    "visit_occurrence",
    "condition_occurrence",
    "drug_exposure",
    "procedure_occurrence",
    "measurement",
    "observation",
    "condition_era",
    "drug_era",
    "death",
]
WHOLE = ["cdm_source", "domain", "concept_relationship", "care_site", "location", "provider"]


def main() -> None:
    con = duckdb.connect()

    def csv(name: str) -> str:
        return f"read_csv('{SOURCE / (name + '.csv')}', header=true, all_varchar=true)"

    con.execute(
        f"""CREATE TABLE keep AS
        (SELECT DISTINCT CAST(person_id AS BIGINT) AS person_id FROM {csv("condition_occurrence")}
          WHERE condition_concept_id = '192671' ORDER BY 1 LIMIT 20)
        UNION
        (SELECT CAST(person_id AS BIGINT) FROM {csv("person")}
          WHERE person_id NOT IN (SELECT person_id FROM {csv("condition_occurrence")}
                                  WHERE condition_concept_id = '192671')
          ORDER BY 1 LIMIT 20)"""
    )
    for table in PERSON_TABLES:
        con.execute(
            f"COPY (SELECT * FROM {csv(table)} WHERE CAST(person_id AS BIGINT) IN "
            f"(SELECT person_id FROM keep)) TO '{OUT / (table + '.csv')}' (HEADER, QUOTE '\"')"
        )
    for table in WHOLE:
        con.execute(f"COPY (SELECT * FROM {csv(table)}) TO '{OUT / (table + '.csv')}' (HEADER)")
    con.execute(
        f"""CREATE TABLE used AS
        SELECT DISTINCT CAST(condition_concept_id AS BIGINT) AS id FROM {csv("condition_occurrence")}
        UNION SELECT DISTINCT CAST(drug_concept_id AS BIGINT) FROM {csv("drug_exposure")}"""
    )
    con.execute(f"COPY (SELECT * FROM {csv('concept')}) TO '{OUT / 'concept.csv'}' (HEADER)")
    con.execute(
        f"""COPY (SELECT * FROM {csv("concept_ancestor")}
        WHERE CAST(descendant_concept_id AS BIGINT) IN (SELECT id FROM used)
          AND CAST(ancestor_concept_id AS BIGINT) IN (SELECT id FROM used))
        TO '{OUT / "concept_ancestor.csv"}' (HEADER)"""
    )


if __name__ == "__main__":
    main()
