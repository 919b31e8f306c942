#!/usr/bin/env python3
"""An independent reader of medium-etl's published partitions (pyarrow, DuckDB, polars).

Checks, for every date under OUT (or the dates given):
  - each table and report is readable, with the documented types: timestamps in ms with the
    UTC zone, tags and other lists as lists of strings, ids as strings;
  - DuckDB's and polars' hive scans see a `date` column (a DATE) that matches the directory;
  - row counts equal the manifest's, and the CSV reports hold the same rows as the Parquet ones;
  - every file the manifest lists exists with the size it records;
  - every Parquet file carries the manifest's run id (`medium_etl.run_id` metadata);
  - the columns the manifest says a source format leaves null are null in its rows.

With --readme README.md, it also runs the DuckDB and polars snippets of the README's
"Analyze the data" section as written, from the directory that holds OUT (OUT must be named
`data`, as in the snippets), and fails if any of them fails or returns nothing.

Usage: python3 scripts/check_outputs.py [--readme README.md] OUT [YYYY-MM-DD ...]
(exit 0 = all good)
"""
import csv
import datetime as dt
import json
import contextlib
import io
import os
import re
import sys

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

TABLES = ["authors", "posts", "followings", "publications"]
REPORTS = ["author_metrics", "publication_summary"]
TIMESTAMPS = {
    "authors": ["created_at", "medium_member_at"],
    "posts": ["first_published_at", "latest_published_at"],
    "author_metrics": ["first_published_at", "last_published_at"],
}
STRING_LISTS = {
    "authors": ["found_in"],
    "posts": ["tags"],
    "author_metrics": ["publications", "publication_names"],
    "publication_summary": ["top_authors_by_total_claps", "top_authors_by_mean_claps"],
}
STRINGS = {
    "authors": ["user_id", "username"],
    "posts": ["post_id", "creator_id", "title"],
    "followings": ["follower_id", "followee_id"],
    "publications": ["collection_id"],
    "author_metrics": ["user_id"],
}

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def is_string(t):
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def is_string_list(t):
    return (pa.types.is_list(t) or pa.types.is_large_list(t)) and is_string(t.value_type)


def check_schema(name, schema):
    for c in TIMESTAMPS.get(name, []):
        t = schema.field(c).type
        check(pa.types.is_timestamp(t) and t.unit == "ms" and t.tz == "UTC",
              f"{name}.{c} is timestamp[ms, tz=UTC] (is {t})")
    for c in STRING_LISTS.get(name, []):
        t = schema.field(c).type
        check(is_string_list(t), f"{name}.{c} is a list of strings (is {t})")
    for c in STRINGS.get(name, []):
        t = schema.field(c).type
        check(is_string(t), f"{name}.{c} is a string (is {t})")
    for f in schema:
        check(not pa.types.is_dictionary(f.type), f"{name}.{f.name} is not dictionary-typed")


def check_date(out, date):
    tables = os.path.join(out, "tables", f"date={date}")
    reports = os.path.join(out, "reports", f"date={date}")
    manifest = json.load(open(os.path.join(reports, "_manifest.json")))
    check(manifest["date"] == date, f"manifest date {manifest['date']} == {date}")
    for name in TABLES + REPORTS:
        base = tables if name in TABLES else reports
        path = os.path.join(base, f"{name}.parquet")
        t = pq.read_table(path)
        check_schema(name, t.schema)
        run_id = (pq.read_metadata(path).metadata or {}).get(b"medium_etl.run_id", b"").decode()
        check(run_id == manifest["run_id"] != "",
              f"{name}: written by run {run_id!r} == manifest run {manifest['run_id']!r}")
        check(t.num_rows == manifest["rows"][name],
              f"{name}: {t.num_rows} rows == manifest {manifest['rows'][name]}")
        if name in REPORTS:
            with open(os.path.join(reports, f"{name}.csv"), newline="") as f:
                rows = list(csv.reader(f))
            check(rows[0] == t.column_names, f"{name}.csv header == Parquet columns")
            check(len(rows) - 1 == t.num_rows, f"{name}.csv has {len(rows) - 1} rows == {t.num_rows}")
    for entry in manifest["files"]:
        p = os.path.join(out, entry["path"])
        check(os.path.exists(p) and os.path.getsize(p) == entry["bytes"],
              f"manifest file {entry['path']} exists with {entry['bytes']} bytes")
    m = pq.read_table(os.path.join(reports, "author_metrics.parquet"))
    check(m.num_rows == manifest["authors"]["harvested"], "one author_metrics row per harvested author")
    check_sources(tables, manifest)
    print(f"date={date}: {manifest['rows']}")


def check_sources(tables, manifest):
    """The manifest's `sources.columns` against the data: a column a format leaves null is
    null in every row read from that format, and `source` names only formats the run used."""
    import pyarrow.compute as pc

    columns = manifest["sources"]["columns"]
    for table in ("authors", "posts", "publications"):
        t = pq.read_table(os.path.join(tables, f"{table}.parquet"))
        for via, by_table in columns.items():
            if table not in by_table:  # a manifest from before the table was listed
                continue
            if table == "posts":
                rows = t.filter(pc.equal(t["source"], via))
            elif table == "authors":
                rows = t.filter(pc.equal(t["profile_source"], via))
            else:
                rows = t  # one publication row per run, from the publication's format
                if manifest["sources"]["pages"].get("publication_stream", {}).get(via) is None:
                    continue
            for col in by_table[table]["null"]:
                check(rows[col].null_count == rows.num_rows,
                      f"{table}.{col} is null in the {rows.num_rows} row(s) read via {via}")
    sources = set(pq.read_table(os.path.join(tables, "posts.parquet"))["source"].to_pylist())
    check(sources <= set(columns), f"posts.source {sorted(sources)} are formats the run used")


def check_hive(out, dates):
    con = duckdb.connect()
    want = sorted(dt.date.fromisoformat(d) for d in dates)
    rel = con.sql(f"SELECT date, count(*) AS n FROM read_parquet('{out}/reports/*/author_metrics.parquet', "
                  "hive_partitioning = true) GROUP BY date ORDER BY date")
    types = dict(zip(rel.columns, rel.types))
    check(str(types["date"]) == "DATE", f"DuckDB hive date column is a DATE (is {types['date']})")
    got = [r[0] for r in rel.fetchall()]
    check(got == want, f"DuckDB sees dates {got} == {want}")
    # every report file at once (the two reports differ in columns: union them by name)
    n = con.execute(f"SELECT count(DISTINCT date) FROM read_parquet('{out}/reports/**/*.parquet', "
                "hive_partitioning = true, union_by_name = true)").fetchone()[0]
    check(n == len(want), f"DuckDB **/*.parquet sees {n} dates")
    posts = con.execute(f"SELECT typeof(first_published_at), typeof(tags) FROM read_parquet("
                    f"'{out}/tables/*/posts.parquet', hive_partitioning = true) LIMIT 1").fetchone()
    check(posts == ("TIMESTAMP WITH TIME ZONE", "VARCHAR[]"), f"DuckDB types of posts: {posts}")

    lf = pl.scan_parquet(f"{out}/reports/*/author_metrics.parquet", hive_partitioning=True)
    schema = lf.collect_schema()
    check(schema["date"] == pl.Date, f"polars hive date column is Date (is {schema['date']})")
    check(schema["first_published_at"] == pl.Datetime("ms", "UTC"),
          f"polars sees Datetime(ms, UTC) (is {schema['first_published_at']})")
    got = sorted(lf.select(pl.col("date").unique()).collect()["date"].to_list())
    check(got == want, f"polars sees dates {got} == {want}")


def check_readme(readme, out):
    text = open(readme).read()
    start = text.index("## Analyze the data")
    section = text[start:text.index("\n## ", start + 1)]
    sqls = re.findall(r"```sql\n(.*?)```", section, re.S)
    pys = re.findall(r"```python\n(.*?)```", section, re.S)
    check(len(sqls) >= 3 and len(pys) >= 1, f"README has DuckDB and polars snippets ({len(sqls)}, {len(pys)})")
    check(os.path.basename(out) == "data", "the README snippets read ./data")
    cwd = os.getcwd()
    os.chdir(os.path.dirname(out))
    try:
        for i, sql in enumerate(sqls, 1):
            try:
                rows = duckdb.connect().execute(sql).fetchall()
                check(len(rows) > 0, f"README SQL snippet {i} returns rows")
            except Exception as e:  # noqa: BLE001 - report any failure of a snippet
                check(False, f"README SQL snippet {i} runs: {e}")
        for i, py in enumerate(pys, 1):
            try:
                with contextlib.redirect_stdout(io.StringIO()) as printed:
                    exec(compile(py, f"README python snippet {i}", "exec"), {})
                check(printed.getvalue().strip() != "", f"README polars snippet {i} prints a result")
            except Exception as e:  # noqa: BLE001
                check(False, f"README polars snippet {i} runs: {e}")
    finally:
        os.chdir(cwd)
    print(f"README: {len(sqls)} SQL and {len(pys)} polars snippets ran")


def main():
    args = sys.argv[1:]
    readme = None
    if len(args) >= 2 and args[0] == "--readme":
        readme, args = args[1], args[2:]
    if not args:
        print(__doc__)
        return 2
    out = os.path.abspath(args[0])
    dates = args[1:] or sorted(d[len("date="):] for d in os.listdir(os.path.join(out, "reports"))
                                   if d.startswith("date="))
    check(bool(dates), f"{out} holds at least one date")
    for d in dates:
        check_date(out, d)
    check_hive(out, dates)
    if readme:
        check_readme(os.path.abspath(readme), out)
    staging = os.path.join(out, ".staging")
    check(not os.path.isdir(staging) or not os.listdir(staging), "nothing left in .staging")
    print(f"{len(failures)} failed" if failures else f"all checks passed for {len(dates)} date(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
