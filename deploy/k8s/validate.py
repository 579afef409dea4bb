#!/usr/bin/env python3
"""Static checks of deploy/docker/docker-compose.yml and deploy/k8s/*.yaml (no Docker, no cluster).

    python3 -m pip install pyyaml kubernetes-validate        # jsonschema comes with it
    python3 deploy/k8s/validate.py [--compose-schema compose-spec.json]

Checks what a schema cannot: that names refer to things that exist. Schema validation of the k8s
manifests is `kubernetes-validate --strict` (see deploy/README.md); of the compose file, the Compose
Specification's JSON schema when given (github.com/compose-spec/compose-spec, schema/compose-spec.json).
Exit status 1 and one line per problem when anything is wrong.
"""
import argparse
import json
import re
import sys
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent.parent
problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


def check_compose(schema_path):
    path = DEPLOY / "docker" / "docker-compose.yml"
    doc = yaml.safe_load(path.read_text())
    where = str(path.relative_to(DEPLOY.parent))
    if schema_path:
        import jsonschema

        schema = json.loads(Path(schema_path).read_text())
        validator = jsonschema.Draft7Validator(schema)
        for err in sorted(validator.iter_errors(doc), key=str):
            problem(where, f"schema: {'/'.join(map(str, err.absolute_path))}: {err.message}")
    services = doc.get("services", {})
    volumes = set((doc.get("volumes") or {}).keys())
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        for dep, spec in deps.items():
            if dep not in services:
                problem(where, f"{name}: depends_on unknown service {dep!r}")
                continue
            cond = spec.get("condition", "service_started")
            target = services[dep]
            if cond == "service_healthy" and "healthcheck" not in target:
                problem(where, f"{name}: waits for {dep} healthy, but {dep} has no healthcheck")
            if cond == "service_completed_successfully" and target.get("restart", "no") != "no":
                problem(where, f"{name}: waits for {dep} to complete, but {dep} restarts")
        for vol in svc.get("volumes", []):
            source = vol.split(":")[0] if isinstance(vol, str) else vol.get("source")
            if source and not source.startswith((".", "/", "~")) and source not in volumes:
                problem(where, f"{name}: volume {source!r} is not declared under top-level volumes")
        if "build" not in svc and "image" not in svc:
            problem(where, f"{name}: neither build nor image")
    # Cycles in depends_on.
    state = {}

    def visit(n, stack):
        if state.get(n) == "done":
            return
        if state.get(n) == "active":
            problem(where, "depends_on cycle: " + " -> ".join(stack + [n]))
            return
        state[n] = "active"
        for dep in services.get(n, {}).get("depends_on", {}) or {}:
            if dep in services:
                visit(dep, stack + [n])
        state[n] = "done"

    for n in services:
        visit(n, [])
    # Compose interpolates `$`: a literal dollar must be `$$`. This file writes variables only as
    # `${NAME…}`, so an unbraced `$name` is a shell variable that lost its second `$`.
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        for m in re.finditer(r"\$\$|\$\{[A-Za-z_]|\$", line):
            if m.group() == "$":
                problem(where, f"line {lineno}: '$' neither '$$' (a literal dollar) nor '${{NAME…}}' (a variable)")
    return len(services), len(volumes)


def load_k8s():
    docs = {}
    for f in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs[f.name] = [d for d in yaml.safe_load_all(f.read_text()) if d]
    return docs


def check_k8s():
    docs = load_k8s()
    kust = docs.pop("kustomization.yaml")[0]
    listed = kust.get("resources", [])
    where = "deploy/k8s"
    for r in listed:
        if r not in docs:
            problem(where, f"kustomization lists missing file {r}")
    for f in docs:
        if f not in listed and f != "secret.example.yaml":
            problem(where, f"{f} is not listed in kustomization.yaml")
    if "secret.example.yaml" in listed:
        problem(where, "secret.example.yaml must not be listed in kustomization.yaml")

    objs = [(f, d) for f, ds in docs.items() for d in ds]
    by_kind = {}
    for f, d in objs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
        ns = d["metadata"].get("namespace")
        if d["kind"] != "Namespace" and ns != kust.get("namespace"):
            problem(f, f"{d['kind']}/{d['metadata']['name']} namespace {ns!r} != {kust.get('namespace')!r}")
    configmaps = by_kind.get("ConfigMap", {})
    secrets = by_kind.get("Secret", {})  # from secret.example.yaml: the names and keys operators must create
    deployments = by_kind.get("Deployment", {})
    image_names = {i["name"] for i in kust.get("images", [])}

    def matches(selector, labels):
        return all(labels.get(k) == v for k, v in selector.items())

    def duration_secs(text):
        m = re.fullmatch(r"(\d+)(ms|s|m)?", text)
        n = int(m.group(1))
        return {"ms": n / 1000, "s": n, "m": n * 60, None: n}[m.group(2)]

    for name, dep in deployments.items():
        spec = dep["spec"]
        pod = spec["template"]["spec"]
        labels = spec["template"]["metadata"]["labels"]
        if not matches(spec["selector"]["matchLabels"], labels):
            problem(name, "selector does not match the pod template labels")
        volumes = {v["name"] for v in pod.get("volumes", [])}
        psc = pod.get("securityContext", {})
        if not (psc.get("runAsNonRoot") and psc.get("runAsUser") == 10001):
            problem(name, "pod must run as non-root uid 10001")
        for c in pod["containers"]:
            repo = c["image"].split(":")[0]
            if repo not in image_names:
                problem(name, f"image {repo} has no entry in kustomization images")
            sc = c.get("securityContext", {})
            if not sc.get("readOnlyRootFilesystem") or sc.get("allowPrivilegeEscalation") is not False \
                    or sc.get("capabilities", {}).get("drop") != ["ALL"]:
                problem(name, f"{c['name']}: securityContext must be read-only, no escalation, drop ALL")
            if not c.get("resources", {}).get("requests") or not c.get("resources", {}).get("limits"):
                problem(name, f"{c['name']}: resource requests and limits")
            ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                p = c.get(probe)
                if not p:
                    continue
                port = (p.get("httpGet") or p.get("grpc") or p.get("tcpSocket") or {}).get("port")
                if port not in ports and port not in ports.values():
                    problem(name, f"{c['name']}: {probe} port {port!r} is not a container port")
            for m in c.get("volumeMounts", []):
                if m["name"] not in volumes:
                    problem(name, f"{c['name']}: mount of undeclared volume {m['name']}")
            env = {}
            for e in c.get("env", []):
                env[e["name"]] = e.get("value")
                src = e.get("valueFrom", {})
                for ref_kind, store in (("configMapKeyRef", configmaps), ("secretKeyRef", secrets)):
                    ref = src.get(ref_kind)
                    if not ref:
                        continue
                    obj = store.get(ref["name"])
                    if obj is None:
                        problem(name, f"{e['name']}: {ref_kind} to unknown {ref['name']}")
                        continue
                    keys = set(obj.get("data", {}) or {}) | set(obj.get("stringData", {}) or {})
                    if ref["key"] not in keys and not ref.get("optional"):
                        problem(name, f"{e['name']}: key {ref['key']} not in {ref['name']} (and not optional)")
            grace = pod.get("terminationGracePeriodSeconds", 30)
            pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
            pre_secs = int(pre[1]) if pre[:1] == ["sleep"] else 0
            if "DP_SHUTDOWN_GRACE" in env and grace <= duration_secs(env["DP_SHUTDOWN_GRACE"]) + pre_secs:
                problem(name, f"terminationGracePeriodSeconds {grace} <= preStop + DP_SHUTDOWN_GRACE")
            if "DISPATCH_SHUTDOWN_GRACE" in env and grace <= duration_secs(env["DISPATCH_SHUTDOWN_GRACE"]) + pre_secs:
                problem(name, f"terminationGracePeriodSeconds {grace} <= preStop + DISPATCH_SHUTDOWN_GRACE")
            if "CP_SHUTDOWN_GRACE_SECS" in env and grace <= int(env["CP_SHUTDOWN_GRACE_SECS"]):
                problem(name, f"terminationGracePeriodSeconds {grace} <= CP_SHUTDOWN_GRACE_SECS")
    for name, svc in by_kind.get("Service", {}).items():
        targets = [d for d in deployments.values()
                   if matches(svc["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])]
        if len(targets) != 1:
            problem(name, f"Service selects {len(targets)} Deployments")
            continue
        ports = {p["name"] for c in targets[0]["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
        for p in svc["spec"]["ports"]:
            if isinstance(p["targetPort"], str) and p["targetPort"] not in ports:
                problem(name, f"Service targetPort {p['targetPort']} is not a named container port")
    for kind in ("PodDisruptionBudget",):
        for name, pdb in by_kind.get(kind, {}).items():
            sel = pdb["spec"]["selector"]["matchLabels"]
            if not any(matches(sel, d["spec"]["template"]["metadata"]["labels"]) for d in deployments.values()):
                problem(name, "PodDisruptionBudget selects no Deployment")
    for name, hpa in by_kind.get("HorizontalPodAutoscaler", {}).items():
        ref = hpa["spec"]["scaleTargetRef"]
        dep = deployments.get(ref["name"])
        if ref["kind"] != "Deployment" or dep is None:
            problem(name, f"HPA target {ref['kind']}/{ref['name']} not found")
        elif "replicas" in dep["spec"]:
            problem(name, "the HPA's Deployment sets spec.replicas (each apply would reset the scale)")
        elif not all(c.get("resources", {}).get("requests", {}).get("cpu")
                     for c in dep["spec"]["template"]["spec"]["containers"]):
            problem(name, "CPU utilization target needs CPU requests")
    return len(objs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compose-schema", help="path of compose-spec.json")
    args = ap.parse_args()
    n_services, n_volumes = check_compose(args.compose_schema)
    n_objects = check_k8s()
    if problems:
        print("\n".join(problems))
        return 1
    schema = "with" if args.compose_schema else "without"
    print(f"compose: {n_services} services, {n_volumes} volumes, references OK ({schema} the compose-spec schema)")
    print(f"k8s: {n_objects} objects, references OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
