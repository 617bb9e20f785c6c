#!/usr/bin/env python3
"""Keeps docs/operations.md in step with the code.

- "### <binary> flags" has one table row per flag the service registers (common/config/flags.cc
  and its main.cc), no more, each with the right environment variable and default;
- the services table at the top gives each service's default gRPC and metrics ports;
- every Prometheus metric family the code registers is documented;
- every `contacts.v1.<Service>/<Method>` the doc names is an RPC of proto/contacts/v1;
- every repository path it names under deploy/, tests/deploy/ or docs/ exists;
- when the binaries are built (--bin-dir, default $CONTACTS_BIN_DIR): the flags read from the
  sources (which every deploy check relies on) are exactly those `<binary> --help` prints, with
  the same types, environment names and defaults.

Usage: operations_doc_test.py [--repo DIR] [--bin-dir DIR]
"""

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import repo_facts  # noqa: E402

DOC = "docs/operations.md"


def table_after(lines, heading_pattern):
    """Rows (lists of cell texts) of the first table after the heading matching the pattern."""
    start = next((i for i, line in enumerate(lines) if re.fullmatch(heading_pattern, line.strip())), None)
    if start is None:
        return None
    rows = []
    in_table = False
    for line in lines[start + 1:]:
        stripped = line.strip()
        if stripped.startswith("#"):
            break
        if stripped.startswith("|"):
            in_table = True
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
                continue
            rows.append(cells)
        elif in_table:
            break
    return rows[1:] if rows else rows  # drop the header row


def unquote(cell):
    m = re.fullmatch(r"`([^`]*)`", cell)
    return m.group(1) if m else None


def proto_rpcs(repo):
    rpcs = set()
    proto_dir = os.path.join(repo, "proto", "contacts", "v1")
    for f in sorted(os.listdir(proto_dir)):
        if not f.endswith(".proto"):
            continue
        text = open(os.path.join(proto_dir, f), encoding="utf-8").read()
        package = re.search(r"^package\s+([\w.]+)\s*;", text, flags=re.M).group(1)
        for service_match in re.finditer(r"service\s+(\w+)\s*\{(.*?)\n\}", text, flags=re.S):
            for rpc in re.findall(r"\brpc\s+(\w+)\s*\(", service_match.group(2)):
                rpcs.add(f"{package}.{service_match.group(1)}/{rpc}")
    return rpcs


def check_against_help(checks, services, bin_dir):
    for binary, service in sorted(services.items()):
        path = os.path.join(bin_dir, binary) if bin_dir else ""
        if not path or not os.path.isfile(path):
            print(f"NOTE: {binary} not built in {bin_dir or '(no --bin-dir)'}: flags not compared with --help")
            continue
        code, printed, output = repo_facts.run_help(path)
        if not checks.check(code == 0 and printed, f"{binary} --help failed (exit {code}):\n{output}"):
            continue
        extracted = {name: (f.kind, f.env, f.default) for name, f in service.flags.items()}
        for name in sorted(set(printed) | set(extracted)):
            checks.check(printed.get(name) == extracted.get(name),
                         f"{binary} --{name}: `{binary} --help` says {printed.get(name)}, the sources read as "
                         f"{extracted.get(name)} (a stale build, or fix tests/deploy/repo_facts.py)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--repo", default=os.path.normpath(os.path.join(here, "..", "..")))
    parser.add_argument("--bin-dir", default=os.environ.get("CONTACTS_BIN_DIR", ""))
    args = parser.parse_args()

    checks = repo_facts.Checks("operations_doc_test")
    services = repo_facts.services(args.repo)
    with open(os.path.join(args.repo, DOC), encoding="utf-8") as f:
        text = f.read()
    lines = text.splitlines()

    for binary, service in sorted(services.items()):
        rows = table_after(lines, rf"#+\s+{re.escape(binary)} flags")
        if not checks.check(rows, f"{DOC}: no table under a '### {binary} flags' heading"):
            continue
        documented = {}
        for cells in rows:
            name = unquote(cells[0]) if cells else None
            if not checks.check(name is not None and name.startswith("--") and len(cells) >= 4,
                                f"{DOC}: {binary} flags: malformed row {cells}"):
                continue
            documented[name[2:]] = cells
        for name, flag in service.flags.items():
            cells = documented.get(name)
            if not checks.check(cells is not None,
                                f"{DOC}: {binary} flags: --{name} ({flag.source}) is not documented"):
                continue
            checks.check(unquote(cells[1]) == flag.env,
                         f"{DOC}: {binary} --{name}: environment is {flag.env}, the doc says {cells[1]}")
            want = "(empty)" if flag.default == "" else f"`{flag.default}`"
            checks.check(cells[2] == want, f"{DOC}: {binary} --{name}: default is {want}, the doc says {cells[2]}")
            checks.check(len(cells[3]) > 10, f"{DOC}: {binary} --{name}: say what it does")
        for name in sorted(set(documented) - set(service.flags)):
            checks.fail(f"{DOC}: {binary} flags: --{name} is documented but {binary} has no such flag")

    overview = table_after(lines, r"#\s+Operations")
    by_service = {r[0]: r for r in overview or [] if r}
    for binary, service in sorted(services.items()):
        row = by_service.get(binary)
        if checks.check(row is not None, f"{DOC}: the services table has no row for {binary}"):
            checks.check(row[1:3] == [str(service.grpc_port), str(service.metrics_port)],
                         f"{DOC}: {binary} ports are {service.grpc_port} / {service.metrics_port}, "
                         f"the table says {row[1:3]}")

    metrics = repo_facts.shared_metrics(args.repo) + [m for s in services.values() for m in s.metrics]
    checks.check(len(metrics) >= 4, f"found only {len(metrics)} metric families in the code")
    for metric in sorted(set(metrics)):
        checks.check(f"`{metric}`" in text, f"{DOC}: metric {metric} is not documented")

    rpcs = proto_rpcs(args.repo)
    for rpc in sorted(set(re.findall(r"\bcontacts\.v1\.\w+/\w+", text))):
        checks.check(rpc in rpcs, f"{DOC}: names {rpc}, which is not an RPC in proto/contacts/v1")

    for path in sorted(set(re.findall(r"\b((?:deploy|docs|tests/deploy)/[\w./-]*[\w-])", text))):
        checks.check(os.path.exists(os.path.join(args.repo, path)), f"{DOC}: names {path}, which does not exist")
    check_against_help(checks, services, args.bin_dir)
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
