#!/usr/bin/env python3
"""Tables of criterion's medians with ratios, and the counter plot, from target/criterion.

    python3 benches/report.py            # prints Markdown tables; writes benches/counter_throughput.png
"""
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"


def medians(group_dir):
    """{function: median ns per iteration} for one criterion group directory."""
    result = {}
    if not group_dir.is_dir():
        return result
    for bench in sorted(group_dir.iterdir()):
        estimates = bench / "new" / "estimates.json"
        meta = bench / "new" / "benchmark.json"
        if estimates.exists() and meta.exists():
            name = json.loads(meta.read_text())["function_id"] or bench.name
            if json.loads(meta.read_text()).get("value_str"):
                name = json.loads(meta.read_text())["value_str"]
            result[name] = json.loads(estimates.read_text())["median"]["point_estimate"]
    return result


def table(title, group, baseline, per_second_factor=1, unit="ns"):
    data = medians(ROOT / group)
    if not data:
        print(f"(no data for {group})", file=sys.stderr)
        return data
    print(f"\n### {title}\n")
    print(f"| contender | median {unit}/iteration | throughput (/s) | time ÷ {baseline} |")
    print("|---|---:|---:|---:|")
    base = data[baseline]
    for name, ns in data.items():
        print(f"| {name} | {ns:,.1f} | {per_second_factor * 1e9 / ns:,.0f} | {ns / base:.3f} |")
    return data


def main():
    counter = {}
    for threads in (1, 2, 4):
        counter[threads] = table(f"counter: increment at {threads} thread(s) "
                                 f"(throughput = increments/s across threads)",
                                 f"counter_increment_{threads}_threads", "atomic_u64", threads)
    table("counter: reading the total", "counter_sum", "atomic_u64")
    for threads in (1, 2):
        table(f"layer_success at {threads} thread(s)", f"layer_success_{threads}_threads", "bare", threads)
    for threads in (1, 2):
        table(f"layer_error at {threads} thread(s)", f"layer_error_{threads}_threads",
              "unhandled_layer_counts", threads)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing (pip install matplotlib): no plot", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    names = list(counter[1])
    for name in names:
        xs = [t for t in counter if name in counter[t]]
        ax.plot(xs, [t * 1e9 / counter[t][name] / 1e6 for t in xs], marker="o", label=name)
    ax.set_xlabel("threads")
    ax.set_ylabel("million increments per second (all threads)")
    ax.set_xticks([1, 2, 4])
    ax.set_yscale("log")
    ax.set_title("counter increment throughput (2-core VM; 4 threads oversubscribe)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    out = pathlib.Path(__file__).resolve().parent / "counter_throughput.png"
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"\nplot: {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
