#!/usr/bin/env python3
"""Draws the benchmark plots for docs/benchmarks.md from a Google Benchmark
JSON file: throughput against threads, throughput against database size,
and latency percentiles.

usage: plot.py latest.json OUT_DIR
"""
import os
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import summarize  # noqa: E402
from summarize import medians  # noqa: E402


def main():
    _, meds = medians(sys.argv[1])
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)

    def durable(threads, rows):
        for name, m in meds.items():
            if name.startswith("BM_Store_AppendDurable/threads:%d/rows:%d/" %
                               (threads, rows)):
                return m.get("items_per_second")
        return None

    def ref(prefix):
        for name, m in meds.items():
            if name.startswith(prefix):
                return m.get("items_per_second")
        return None

    # Throughput against threads, with the references as lines.
    fig, ax = plt.subplots(figsize=(6, 4))
    threads = [t for t in (1, 2, 4) if durable(t, 0)]
    ax.plot(threads, [durable(t, 0) / 1000 for t in threads], "o-",
            label="convstore AppendDurable")
    for prefix, label, style in (
            ("BM_Reference_SqliteAppendOnly", "SQLite, no index, a message a row", "--"),
            ("BM_Reference_SqliteBatched", "SQLite, naive index, 4096/txn", ":"),
            ("BM_Reference_SqliteAutocommit", "SQLite, commit per row", "-.")):
        v = ref(prefix)
        if v:
            ax.axhline(v / 1000, linestyle=style, color="gray")
            ax.text(threads[0] if threads else 1, v / 1000, " " + label,
                    va="bottom", fontsize=8)
    ax.set_xlabel("appending threads")
    ax.set_ylabel("durable messages / s (thousands)")
    ax.set_xticks(threads or [1, 2, 4])
    ax.set_title("Durable append throughput (10,000 conversations)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "throughput_threads.png"), dpi=100)
    plt.close(fig)

    # Throughput against existing rows.
    sizes = [r for r in (0, 1000000, 10000000) if durable(2, r)]
    if sizes:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.bar([("%dM" % (r // 1000000)) if r else "0" for r in sizes],
               [durable(2, r) / 1000 for r in sizes])
        ax.set_xlabel("messages already in the file")
        ax.set_ylabel("durable messages / s (thousands)")
        ax.set_title("AppendDurable, 2 threads, against database size")
        fig.tight_layout()
        fig.savefig(os.path.join(out, "throughput_size.png"), dpi=100)
        plt.close(fig)

    # Latency percentiles.
    names = [("BM_Store_AppendLatency", "Append"),
             ("BM_Store_AppendLatencyMoved", "Append\n(moved)"),
             ("BM_Store_AppendLatencyPaced/per_s:100000", "Append\n100k/s"),
             ("BM_Store_HistoryHot", "History hot"),
             ("BM_Store_HistoryCold", "History cold")]
    rows = []
    for prefix, label in names:
        for name, m in meds.items():
            if summarize.matches(name, prefix) and "p50_ns" in m:
                rows.append((label, m["p50_ns"], m["p99_ns"], m.get("p999_ns", 0)))
                break
    if rows:
        fig, ax = plt.subplots(figsize=(6, 4))
        x = range(len(rows))
        w = 0.27
        for i, (key, label) in enumerate(((1, "p50"), (2, "p99"), (3, "p99.9"))):
            ax.bar([xi + (i - 1) * w for xi in x], [r[key] / 1000 for r in rows],
                   w, label=label)
        ax.set_xticks(list(x))
        ax.set_xticklabels([r[0] for r in rows])
        ax.set_yscale("log")
        ax.set_ylabel("microseconds (log)")
        ax.set_title("Per-call latency")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out, "latency.png"), dpi=100)
        plt.close(fig)


if __name__ == "__main__":
    main()
