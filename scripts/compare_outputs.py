import sys, pyarrow.parquet as pq, filecmp, os
a, b, d = sys.argv[1], sys.argv[2], sys.argv[3]
keys = {"authors": ["user_id"], "posts": ["post_id"], "followings": ["follower_id", "followee_id"], "publications": ["collection_id"]}
for t, k in keys.items():
    x = pq.read_table(f"{a}/tables/date={d}/{t}.parquet"); y = pq.read_table(f"{b}/tables/date={d}/{t}.parquet")
    same_order = x.equals(y)
    xs = x.sort_by([(c, "ascending") for c in k]); ys = y.sort_by([(c, "ascending") for c in k])
    print(f"{t}: rows {x.num_rows} vs {y.num_rows}; schema equal {x.schema.equals(y.schema)}; same rows in same order {same_order}; equal value for value after sorting by key {xs.equals(ys)}")
for f in sorted(os.listdir(f"{a}/reports/date={d}")):
    if f.endswith(".csv"):
        print(f"reports/{f}: byte-identical {filecmp.cmp(f'{a}/reports/date={d}/{f}', f'{b}/reports/date={d}/{f}', shallow=False)}")
    elif f.endswith(".parquet"):
        x = pq.read_table(f"{a}/reports/date={d}/{f}"); y = pq.read_table(f"{b}/reports/date={d}/{f}")
        print(f"reports/{f}: equal {x.equals(y)}")
import pyarrow.compute as pc, math
for f in sorted(os.listdir(f"{a}/reports/date={d}")):
    if not f.endswith(".parquet"): continue
    x = pq.read_table(f"{a}/reports/date={d}/{f}").to_pylist(); y = pq.read_table(f"{b}/reports/date={d}/{f}").to_pylist()
    cells = diff = worst = 0
    for r, s in zip(x, y):
        for k in r:
            cells += 1
            if r[k] != s[k]:
                if isinstance(r[k], float) and isinstance(s[k], float):
                    diff += 1; worst = max(worst, abs(r[k]-s[k]) / max(abs(r[k]), 1e-300))
                else:
                    print("  DIFFERENT", f, k, r[k], s[k]); diff += 1
    print(f"reports/{f}: {len(x)} vs {len(y)} rows, {cells} cells, {diff} differ, largest relative float difference {worst:.1e}")
