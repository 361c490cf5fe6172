"""Print each benchmark group's ratios from a pytest-benchmark JSON file.

    python -m pytest benchmarks/bench_optim.py --benchmark-json=optim.json
    python benchmarks/ratios.py optim.json [--stat median] [--ref fastdl]

For every group: the reference entry's time (the one whose ``impl`` parameter, else test name,
ends with ``--ref``; the group's first entry when none does) and its time divided by every other
entry's, so "0.80" under torch means fastdl takes 0.8x torch's time. Ratios only make sense
within one run: the entries of a group were timed side by side.
"""
import argparse
import json
from collections import defaultdict


def label(bench):
    params = bench.get("params") or {}
    if "impl" in params:
        return str(params["impl"])
    if "threads" in params:
        return f"{params['threads']}-threads"
    return bench["name"].removeprefix("test_")


def group_ratios(benchmarks, stat, ref):
    groups = defaultdict(dict)
    for bench in benchmarks:
        groups[bench["group"] or bench["name"]][label(bench)] = bench["stats"][stat]
    for group, times in groups.items():
        ref_name = next((name for name in times if name.rstrip("]").endswith(ref)), next(iter(times)))
        yield group, ref_name, times[ref_name], {name: times[ref_name] / t for name, t in times.items()
                                                  if name != ref_name}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json_file")
    parser.add_argument("--stat", default="median", choices=["min", "median", "mean"])
    parser.add_argument("--ref", default="fastdl", help="the entry the others are compared with")
    args = parser.parse_args()
    with open(args.json_file) as f:
        benchmarks = json.load(f)["benchmarks"]
    print(f"| group | {args.ref} {args.stat} | {args.ref} / other |")
    print("|---|---|---|")
    for group, ref_name, t, ratios in group_ratios(benchmarks, args.stat, args.ref):
        cells = ", ".join(f"{name} {r:.2f}" for name, r in ratios.items())
        print(f"| {group} | {t * 1e6:.1f} µs ({ref_name}) | {cells} |")


if __name__ == "__main__":
    main()
