"""Ratios from pytest-benchmark JSON files: print them, compare two runs, check them against limits.

    pytest benchmarks/bench_optim.py --benchmark-json=optim.json
    python benchmarks/ratios.py optim.json [--stat median] [--ref fastdl]   # one run's ratios
    python benchmarks/ratios.py new.json --against old.json                 # two runs, side by side
    python benchmarks/ratios.py quick*.json --check benchmarks/limits.toml  # exit 1 on a regression

For every group: the reference entry's time (the one whose ``impl`` parameter, else test name,
ends with ``--ref``; the group's first entry when none does) and its time divided by every other
entry's, so "0.80" under torch means fastdl takes 0.8x torch's time. Ratios only make sense
within one run: the entries of a group were timed side by side. That is also why two runs, even
from different machines, compare through their ratios and not their times.
"""
import argparse
import json
import sys
from collections import defaultdict

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib


def label(bench):
    params = bench.get("params") or {}
    if "impl" in params:
        return str(params["impl"])
    if "threads" in params:
        return f"{params['threads']}-threads"
    return bench["name"].removeprefix("test_")


def group_ratios(benchmarks, stat, ref):
    """(group, reference row, its time, {other row: reference time / other's time}) per group."""
    groups = defaultdict(dict)
    for bench in benchmarks:
        groups[bench["group"] or bench["name"]][label(bench)] = bench["stats"][stat]
    for group, times in groups.items():
        ref_name = next((name for name in times if name.rstrip("]").endswith(ref)), next(iter(times)))
        yield group, ref_name, times[ref_name], {name: times[ref_name] / t for name, t in times.items()
                                                  if name != ref_name}


def load_limits(path):
    """``limits.toml`` as {group: {"fastdl": node id with {backend}, "baseline": node id,
    backend: max ratio, ...}}; see that file's header."""
    with open(path, "rb") as f:
        return tomllib.load(f)


def quick_node_ids(limits, backends):
    """The test ids a check of ``limits`` needs on ``backends``: each group's fastdl and baseline rows."""
    ids = set()
    for group in limits.values():
        ids.add(group["baseline"])
        ids.update(group["fastdl"].format(backend=b) for b in backends if b in group)
    return ids


def check(runs, limits, stat="median"):
    """Check each (group, backend)'s ratio, fastdl's time / the baseline's in the same run, against
    its limit, taking the best of ``runs`` (lists of benchmarks, one per run): load from other jobs
    on the machine inflates a ratio in one run or another, a regression in all of them. Returns one
    line per (group, backend) and the failures among them (over the limit, or a row that did not
    run). A backend with no fastdl row in any run (not built here) is left out."""
    times = [{bench["fullname"]: bench["stats"][stat] for bench in run} for run in runs]
    backends = {b for group in limits.values() for b in group if b not in ("fastdl", "baseline")}
    measured = {b for b in backends for group in limits.values()
                if b in group and any(group["fastdl"].format(backend=b) in run for run in times)}
    lines, failures = [], []
    for name, group in limits.items():
        for backend in sorted(measured & group.keys()):
            row, limit = group["fastdl"].format(backend=backend), group[backend]
            found = [run[row] / run[group["baseline"]] for run in times if row in run and group["baseline"] in run]
            if not found:
                missing = row if not any(row in run for run in times) else group["baseline"]
                failures.append(f"{name} [{backend}]: {missing} did not run")
                continue
            line = f"{name} [{backend}]: {min(found):.3f}x {group['baseline']} (limit {limit})"
            lines.append(("REGRESSION " if min(found) > limit else "ok         ") + line)
            if min(found) > limit:
                failures.append(line)
    return lines, failures


def _load(path):
    with open(path) as f:
        return json.load(f)["benchmarks"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json_file", nargs="+", help="one run; with --check, several (the best ratio counts)")
    parser.add_argument("--stat", default="median", choices=["min", "median", "mean"])
    parser.add_argument("--ref", default="fastdl", help="the entry the others are compared with")
    parser.add_argument("--against", metavar="OLD_JSON", help="a second run: print both runs' ratios")
    parser.add_argument("--check", metavar="LIMITS_TOML", help="fail when a ratio exceeds its limit")
    args = parser.parse_args()
    if args.check:
        lines, failures = check([_load(path) for path in args.json_file], load_limits(args.check), args.stat)
        print("\n".join(lines))
        if failures:
            print(f"\n{len(failures)} benchmark ratio(s) over the limits in {args.check}:\n  "
                  + "\n  ".join(failures), file=sys.stderr)
            return 1
        return 0
    if len(args.json_file) > 1:
        parser.error("several JSON files only with --check; compare two runs with --against")
    benchmarks = _load(args.json_file[0])
    old = {group: ratios for group, _, _, ratios in group_ratios(_load(args.against), args.stat, args.ref)} \
        if args.against else {}
    print(f"| group | {args.ref} {args.stat} | {args.ref} / other" + (" (this run ← old run)" if old else "") + " |")
    print("|---|---|---|")
    for group, ref_name, t, ratios in group_ratios(benchmarks, args.stat, args.ref):
        before = old.get(group, {})
        cells = ", ".join(f"{name} {r:.2f}" + (f" ← {before[name]:.2f}" if name in before else "")
                          for name, r in ratios.items())
        print(f"| {group} | {t * 1e6:.1f} µs ({ref_name}) | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
