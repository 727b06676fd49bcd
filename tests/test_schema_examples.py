"""The docs' example queries run against a store of the bundled traces (the `events` view
of schema 2 keeps users' SQL working, issue 16): every ```sql block of docs/*.md and the
README, read-only through `kreplay sql`'s own path (Store.query on a sandboxed store)."""

import re
import shutil

import pytest
from conftest import REPO

from kreplay.ingest import ingest
from kreplay.store import Store

BLOCK = re.compile(r"```sql\n(.*?)```", re.S)
DOCS = sorted(REPO.glob("docs/*.md")) + [REPO / "README.md"]
EXAMPLES = [
    pytest.param(sql.strip(), id=f"{doc.name}:{k}")
    for doc in DOCS
    for k, sql in enumerate(BLOCK.findall(doc.read_text()))
]


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    work = tmp_path_factory.mktemp("examples")
    db = str(work / "s.duckdb")
    with Store(db) as store:
        for trace in sorted((REPO / "traces").glob("*.kdump*")):
            shutil.copy(trace, work / trace.name)
            ingest(store, str(work / trace.name))
    return db


def test_the_docs_have_examples():
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("sql", EXAMPLES)
def test_a_docs_example_query_runs(store_path, sql):
    with Store(store_path, sandbox=True) as store:
        rows = store.query(sql)
        fetched = [row for batch in rows.batches for row in batch]
    assert rows.columns and fetched, sql
