#!/usr/bin/env python3
"""Reads wstest reports and judges them strictly.

    python3 conformance/summarize.py [--results FILE] [--expect N] DIR...

Each DIR is target/autobahn/<role>-<adapter> with wstest's report/index.json.
A case passes only when both its behaviour and its close behaviour are OK or
INFORMATIONAL (NON-STRICT, FAILED, UNIMPLEMENTED and a missing report all
fail). Prints one line of counts per role and adapter, then each failing case
with the report's own reason, then the 9.* durations; exits 1 on any
failure. --results writes the same as Markdown (conformance/RESULTS.md).
Standard library only.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

PASS = ("OK", "INFORMATIONAL")
KINDS = ("OK", "INFORMATIONAL", "NON-STRICT", "FAILED", "UNIMPLEMENTED")


def case_key(case_id):
    return tuple(int(p) for p in case_id.split("."))


def load(dir_):
    """(role, adapter, {case: entry}, {case: detail}) for one run directory."""
    name = os.path.basename(dir_.rstrip("/"))
    role, _, adapter = name.partition("-")
    index_path = os.path.join(dir_, "report", "index.json")
    if not os.path.exists(index_path):
        return role, adapter, None, {}
    with open(index_path) as f:
        index = json.load(f)
    cases = {}
    for agent_cases in index.values():
        cases.update(agent_cases)
    details = {}
    for case_id, entry in cases.items():
        ok = entry["behavior"] in PASS and entry["behaviorClose"] in PASS
        if not ok:
            path = os.path.join(dir_, "report", entry["reportfile"])
            try:
                with open(path) as f:
                    details[case_id] = json.load(f)
            except (OSError, ValueError):
                details[case_id] = {}
    return role, adapter, cases, details


def strip_tags(text):
    out, inside = [], False
    for ch in str(text or ""):
        if ch == "<":
            inside = True
        elif ch == ">":
            inside = False
        elif not inside:
            out.append(ch)
    return "".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", help="write a Markdown summary here")
    ap.add_argument("--expect", type=int, help="cases each run must report")
    ap.add_argument("--rev", help="the commit the binaries were built from")
    ap.add_argument("--seconds", type=int, help="how long wstest ran, in all")
    ap.add_argument("dirs", nargs="+")
    args = ap.parse_args()

    runs = [load(d) for d in args.dirs]
    failed_any = False
    lines = []  # (role, adapter, counts, total, failures)
    for role, adapter, cases, details in runs:
        if cases is None:
            print(f"{role:6} {adapter:5}: no report (wstest or tether did not finish; see {args.dirs[runs.index((role, adapter, cases, details))]})")
            failed_any = True
            lines.append((role, adapter, None, 0, []))
            continue
        counts = {k: 0 for k in KINDS}
        for entry in cases.values():
            worst = entry["behavior"]
            if worst in PASS and entry["behaviorClose"] not in PASS:
                worst = entry["behaviorClose"]
            counts[worst] = counts.get(worst, 0) + 1
        failures = []
        for case_id in sorted(details, key=case_key):
            entry, d = cases[case_id], details[case_id]
            reason = []
            if entry["behavior"] not in PASS:
                reason.append(f"{entry['behavior']}: {strip_tags(d.get('result'))}")
            if entry["behaviorClose"] not in PASS:
                reason.append(f"close {entry['behaviorClose']}: {strip_tags(d.get('resultClose'))}")
            failures.append((case_id, "; ".join(reason), strip_tags(d.get("description")), d))
        total = len(cases)
        short = args.expect is not None and total < args.expect
        failed_any |= bool(failures) or short
        counted = ", ".join(f"{counts[k]} {k}" for k in KINDS)
        status = "PASS" if not failures and not short else "FAIL"
        missing = f" (expected {args.expect})" if short else ""
        print(f"{role:6} {adapter:5}: {total} cases{missing}: {counted} -> {status}")
        lines.append((role, adapter, counts, total, failures))
    for role, adapter, _, _, failures in lines:
        for case_id, reason, description, d in failures:
            print(f"  {role} {adapter} case {case_id}: {reason}  [{description}]")
            # what happened on the wire, so a failure seen once (in CI) can
            # be understood without its report
            print(f"    expected {json.dumps(d.get('expected'))[:300]}")
            print(f"    received {json.dumps(d.get('received'))[:300]}")
            print(f"    duration {d.get('duration')} ms, wasClean {d.get('wasClean')}, "
                  f"closed by wstest {d.get('closedByMe')}, dropped by wstest {d.get('droppedByMe')}, "
                  f"codes wstest {d.get('localCloseCode')} / tether {d.get('remoteCloseCode')}")
            for line in wire_summary(d.get("wirelog") or []):
                print(f"    {line}")

    # 9.*: limits and performance; their durations show a slowdown
    durations = {}
    for role, adapter, cases, _ in runs:
        for case_id, entry in (cases or {}).items():
            if case_id.startswith("9."):
                durations.setdefault(case_id, {})[f"{role} {adapter}"] = entry.get("duration")
    columns = [f"{r} {a}" for r, a, c, _ in runs if c is not None]
    if durations:
        print("9.* durations (ms): case " + " | ".join(columns))
        for case_id in sorted(durations, key=case_key):
            row = " | ".join(str(durations[case_id].get(c, "-")) for c in columns)
            print(f"  {case_id}: {row}")

    if args.results:
        write_results(args.results, lines, durations, columns, args.rev or git_rev(), args.seconds)
    return 1 if failed_any else 0


def wire_summary(wirelog):
    """wstest's wire log in short: runs of raw octets (TO sent, RO received)
    as one line each, frames (TF sent, RF received) with opcode and the
    start of their payload, and wstest's timers and closes as they are."""
    out, run = [], None  # run: [kind, octets, pieces]
    for entry in wirelog:
        kind = entry[0] if entry else "?"
        if kind in ("TO", "RO"):
            size = entry[1][0] if len(entry) > 1 and entry[1] else 0
            if run and run[0] == kind:
                run[1] += size
                run[2] += 1
                continue
            if run:
                out.append(f"{run[0]} {run[1]} octets in {run[2]} piece(s)")
            run = [kind, size, 1]
            continue
        if run:
            out.append(f"{run[0]} {run[1]} octets in {run[2]} piece(s)")
            run = None
        if kind in ("TF", "RF") and len(entry) > 2:
            size, payload = entry[1][0], str(entry[1][1])
            out.append(f"{kind} opcode {entry[2]} {size} bytes {payload[:40]!r}")
        else:
            out.append(json.dumps(entry)[:120])
    if run:
        out.append(f"{run[0]} {run[1]} octets in {run[2]} piece(s)")
    return out


def git_rev():
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def wstest_version():
    venv = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".venv", "bin", "wstest")
    try:
        out = subprocess.check_output([venv, "-a"], text=True, stderr=subprocess.STDOUT)
        return " ".join(out.split())
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_results(path, lines, durations, columns, rev, seconds=None):
    out = []
    out.append("# Autobahn TestSuite results")
    out.append("")
    out.append(
        f"The whole suite (`bash conformance/autobahn.sh --full`), strict: a case passes only when its "
        f"behaviour and its close behaviour are both OK or INFORMATIONAL. tether at `{rev}` "
        f"(release build), run on {datetime.date.today().isoformat()} on {platform.machine()} "
        f"({os.cpu_count()} cores); {wstest_version()}. permessage-deflate on in both roles "
        f"(cases 12.* and 13.*)."
        + (f" wstest ran for {seconds} s, the adapters of a role side by side." if seconds else "")
    )
    out.append("")
    out.append("| role | adapter | cases | " + " | ".join(KINDS) + " | strict |")
    out.append("|---|---|---|" + "---|" * len(KINDS) + "---|")
    for role, adapter, counts, total, failures in lines:
        if counts is None:
            out.append(f"| {role} | {adapter} | no report |" + " |" * len(KINDS) + " FAIL |")
            continue
        cells = " | ".join(str(counts[k]) for k in KINDS)
        out.append(f"| {role} | {adapter} | {total} | {cells} | {'pass' if not failures else 'FAIL'} |")
    out.append("")
    failing = [(r, a, f) for r, a, _, _, fs in lines for f in fs]
    if failing:
        out.append("## Failing cases")
        out.append("")
        for role, adapter, (case_id, reason, description) in failing:
            out.append(f"- {role} {adapter} {case_id}: {reason} ({description})")
        out.append("")
    if durations:
        out.append("## 9.* durations (limits and performance), milliseconds")
        out.append("")
        out.append("As wstest measured them (its own Python end dominates most of them); kept so a slowdown shows.")
        out.append("")
        out.append("| case | " + " | ".join(columns) + " |")
        out.append("|---|" + "---|" * len(columns))
        for case_id in sorted(durations, key=case_key):
            out.append(f"| {case_id} | " + " | ".join(str(durations[case_id].get(c, "-")) for c in columns) + " |")
        out.append("")
    with open(path, "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
