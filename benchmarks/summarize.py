#!/usr/bin/env python3
"""Prints the median of every benchmark and the target ratios of issue 3
(docs/benchmarks.md) from a Google Benchmark JSON file and the soak line.

usage: summarize.py latest.json [soak.json]
"""
import json
import statistics
import sys


def medians(path):
    with open(path) as f:
        data = json.load(f)
    runs = {}
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate":
            continue
        name = b.get("run_name", b["name"])
        runs.setdefault(name, []).append(b)
    out = {}
    for name, rs in runs.items():
        keys = set().union(*(r.keys() for r in rs))
        med = {}
        for k in keys:
            vals = [r[k] for r in rs if isinstance(r.get(k), (int, float))]
            if vals:
                med[k] = statistics.median(vals)
        med["repetitions"] = len(rs)
        out[name] = med
    return data.get("context", {}), out


def matches(name, prefix):
    """True if `name` is benchmark `prefix` or one of its argument variants
    (so BM_Store_AppendLatency does not also match ..AppendLatencyPaced)."""
    if not name.startswith(prefix):
        return False
    return (len(name) == len(prefix) or prefix.endswith("/")
            or name[len(prefix)] == "/")


def find(meds, prefix):
    for name, m in meds.items():
        if matches(name, prefix):
            return m
    return None


def main():
    context, meds = medians(sys.argv[1])
    soak = None
    if len(sys.argv) > 2:
        with open(sys.argv[2]) as f:
            soak = json.loads(f.read().strip().splitlines()[-1])

    print("machine: %s" % context.get("convstore_machine", "?"))
    print("build: %s, assertions %s, sqlite %s" % (
        context.get("convstore_build_type", "?"),
        context.get("convstore_assertions", "?"),
        context.get("sqlite_version", "?")))
    print("transparent huge pages: %s (defrag %s), glibc %s, GLIBC_TUNABLES: %s"
          % (context.get("transparent_hugepage", "?"),
             context.get("transparent_hugepage_defrag", "?"),
             context.get("glibc_version", "?"),
             context.get("glibc_tunables", "?") or "(unset)"))
    if context.get("convstore_assertions") == "ON":
        print("*** WARNING: assertions are ON; numbers are not representative")
    print()
    print("| benchmark | reps | items/s | p50 ns | p99 ns | p999 ns |")
    print("|---|---|---|---|---|---|")
    for name in sorted(meds):
        m = meds[name]
        def fmt(k, scale=1.0, digits=0):
            v = m.get(k)
            return "" if v is None else ("%.*f" % (digits, v / scale))
        print("| %s | %d | %s | %s | %s | %s |" % (
            name, m["repetitions"], fmt("items_per_second"), fmt("p50_ns"),
            fmt("p99_ns"), fmt("p999_ns")))
    print()

    ips = lambda m: None if m is None else m.get("items_per_second")
    durable2 = ips(find(meds, "BM_Store_AppendDurable/threads:2/rows:0/"))
    durable10m = ips(find(meds, "BM_Store_AppendDurable/threads:2/rows:10000000/"))
    batched = ips(find(meds, "BM_Reference_SqliteBatched"))
    autoc = ips(find(meds, "BM_Reference_SqliteAutocommit"))
    append_only = ips(find(meds, "BM_Reference_SqliteAppendOnly"))
    scan = ips(find(meds, "BM_Reference_SqliteScan"))
    reopen = ips(find(meds, "BM_Store_Reopen"))
    lat = find(meds, "BM_Store_AppendLatency") or {}
    lat_moved = find(meds, "BM_Store_AppendLatencyMoved") or {}
    hot = find(meds, "BM_Store_HistoryHot") or {}
    cold = find(meds, "BM_Store_HistoryCold") or {}

    rows = []
    def ratio(label, num, den, target):
        if num is None or den is None or den == 0:
            rows.append((label, "n/a", ">= %.1fx" % target, "not measured"))
            return
        r = num / den
        rows.append((label, "%.2fx" % r, ">= %.1fx" % target,
                     "met" if r >= target else "NOT met"))
    def at_most(label, value, limit, unit="ns"):
        if value is None:
            rows.append((label, "n/a", "<= %g %s" % (limit, unit), "not measured"))
            return
        rows.append((label, "%.0f %s" % (value, unit), "<= %g %s" % (limit, unit),
                     "met" if value <= limit else "NOT met"))

    ratio("AppendDurable 2 threads / SqliteBatched", durable2, batched, 3)
    ratio("AppendDurable 2 threads / SqliteAutocommit", durable2, autoc, 25)
    ratio("AppendDurable 2 threads / SqliteAppendOnly", durable2, append_only, 0.4)
    ratio("AppendDurable at 10M rows / at 0 rows", durable10m, durable2, 0.5)
    at_most("Append p50", lat.get("p50_ns"), 300)
    at_most("Append p99", lat.get("p99_ns"), 2000)
    at_most("Append p50, message moved in", lat_moved.get("p50_ns"), 300)
    at_most("Append p99, message moved in", lat_moved.get("p99_ns"), 2000)
    # Analytics (issue 6): times are in ms (the benchmarks' time unit).
    agg24 = find(meds, "BM_Analytics_Aggregate24h") or {}
    agg_month = find(meds, "BM_Analytics_AggregateMonth") or {}
    at_most("Analytics Aggregate, 24h of a 1M-turn month",
            agg24.get("real_time"), 1000, "ms")
    at_most("Analytics Aggregate, the whole 1M-turn month",
            agg_month.get("real_time"), 1000, "ms")
    at_most("HistoryHot p50", hot.get("p50_ns"), 500)
    at_most("HistoryHot p99", hot.get("p99_ns"), 2000)
    at_most("HistoryCold p99", cold.get("p99_ns"), 200000)
    ratio("Reopen / SqliteScan", reopen, scan, 0.7)
    if soak is not None:
        rows.append(("Soak peak RSS / budget (%d msgs, %d convs)" % (
            soak["messages"], soak["conversations"]),
            "%.3fx" % soak["rss_to_budget"], "<= 1.1x",
            "met" if soak["rss_to_budget"] <= 1.1 else "NOT met"))
        rows.append(("Soak reads complete", "%d incomplete of %d" % (
            soak["incomplete_reads"], soak["reads"]), "0",
            "met" if soak["incomplete_reads"] == 0 else "NOT met"))
    print("| target | measured | wanted | verdict |")
    print("|---|---|---|---|")
    for r in rows:
        print("| %s | %s | %s | %s |" % r)

    # Not targets: what SQLite itself writes on this disk, one message to a
    # row or several, set against the store and the one-commit-per-row
    # reference (docs/benchmarks.md, "Several messages to a row: the
    # ceiling").
    ceilings = [("one message to a row, text id",
                 "BM_Reference_SqliteAppendOnly")]
    for n in (1, 4, 16, 64):
        ceilings.append(("%d packed to a row" % n,
                         "BM_Reference_SqlitePackedAppendOnly/per_row:%d/" % n))
    lines = []
    for label, name in ceilings:
        v = ips(find(meds, name))
        if not v:
            continue
        lines.append("| %s | %.0f | %s | %s |" % (
            label, v, "%.1fx" % (v / autoc) if autoc else "n/a",
            "%.2fx" % (durable2 / v) if durable2 else "n/a"))
    if lines:
        print()
        print("| SQLite append-only ceiling | items/s | / SqliteAutocommit "
              "| AppendDurable 2 threads / it |")
        print("|---|---|---|---|")
        for line in lines:
            print(line)


if __name__ == "__main__":
    main()
