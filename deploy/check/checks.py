#!/usr/bin/env python3
"""The deployment checks deploy/check/check.sh runs (with the validators' Python from deploy/tools.sh).

    checks.py manifests --facts CP.json --facts DP.json [--external NAME=key,key…] [--documented F] RENDERED.yaml
    checks.py agree --facts … CHART.yaml KUSTOMIZE.yaml
    checks.py compose --facts … docker-compose.yml
    checks.py values-table [--write]

Each prints one line per problem and exits 1, or prints what it checked.
"""
import argparse
import sys
from pathlib import Path

import yaml

sys.dont_write_bytecode = True  # nothing written beside the sources
sys.path.insert(0, str(Path(__file__).resolve().parent))
import agree  # noqa: E402
import compose  # noqa: E402
import k8s  # noqa: E402
import values_table  # noqa: E402
from facts import Binary  # noqa: E402

DEPLOY = Path(__file__).resolve().parent.parent


def load_objects(path):
    return [(str(path), d) for d in yaml.safe_load_all(Path(path).read_text()) if d]


def binaries_of(paths):
    out = {}
    for p in paths:
        b = Binary.load(p)
        out[b.name] = b
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("manifests")
    m.add_argument("--facts", action="append", default=[])
    m.add_argument("--external", action="append", default=[], help="NAME=key,key: a Secret created out of band")
    m.add_argument("--documented", action="append", default=[], help="a file of example Secrets (created out of band)")
    m.add_argument("rendered")
    a = sub.add_parser("agree")
    a.add_argument("--facts", action="append", default=[])
    a.add_argument("chart")
    a.add_argument("kustomize")
    c = sub.add_parser("compose")
    c.add_argument("--facts", action="append", default=[])
    c.add_argument("file")
    v = sub.add_parser("values-table")
    v.add_argument("--write", action="store_true")
    args = ap.parse_args()

    problems = []
    if args.cmd == "manifests":
        binaries = binaries_of(args.facts)
        objs = load_objects(args.rendered)
        external = {}
        for e in args.external:
            name, _, keys = e.partition("=")
            external[name] = set(filter(None, keys.split(",")))
        for f in args.documented:
            for _, d in load_objects(f):
                external.setdefault(d["metadata"]["name"], set()).update(k8s.secret_keys(d))
        from crds import VALIDATORS

        k8s.validate_schema(objs, problems, VALIDATORS)
        # References are read from schema-valid objects only (an invalid one has no reliable shape).
        if not problems:
            k8s.check_refs(objs, binaries, external, problems)
        ok = f"{args.rendered}: {len(objs)} objects valid for Kubernetes {', '.join(k8s.K8S_VERSIONS)} (strict), references OK"
    elif args.cmd == "agree":
        binaries = binaries_of(args.facts)
        agree.compare(load_objects(args.chart), load_objects(args.kustomize), binaries, problems)
        ok = "chart and kustomize agree on ports, probes, env, shutdown budgets, security, resources"
    elif args.cmd == "compose":
        n, vols = compose.check(args.file, binaries_of(args.facts), problems)
        ok = f"{args.file}: {n} services, {vols} volumes, graph and references OK"
    else:
        chart = DEPLOY / "helm" / "webhook-gateway"
        readme = DEPLOY / "README.md"
        if args.write:
            values_table.write(chart, readme)
            ok = f"{readme}: values table written"
        else:
            values_table.check(chart, readme, problems)
            ok = f"{readme}: values table is current"
    if problems:
        print("\n".join(problems))
        return 1
    print(ok)
    return 0


if __name__ == "__main__":
    sys.exit(main())
