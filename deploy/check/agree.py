"""The chart (default values) and the kustomize manifests describe the same workloads: the same
ports, probes, env names, listener and shutdown settings, grace periods, security contexts,
resources, Services, autoscaling and disruption budgets."""
import json

NAME = "app.kubernetes.io/name"


def workloads(objs):
    out = {}
    for _, o in objs:
        labels = (o.get("metadata") or {}).get("labels", {})
        if o["kind"] in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget") and NAME in labels:
            out[(o["kind"], labels[NAME])] = o
    return out


def container_facts(dep, binaries):
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    env = c.get("env", [])

    def optional(e):
        src = e.get("valueFrom", {})
        return any(src.get(k, {}).get("optional") for k in ("secretKeyRef", "configMapKeyRef"))

    probes = {}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        p = c.get(probe)
        if p:
            p = json.loads(json.dumps(p))
            for kind in ("httpGet", "grpc", "tcpSocket"):
                if kind in p and isinstance(p[kind].get("port"), str):
                    p[kind]["port"] = ports.get(p[kind]["port"], p[kind]["port"])
            probes[probe] = p
    # Literal values of the settings both must give the same value: listeners and shutdown budgets.
    settings = {e["name"]: e.get("value") for e in env
                if "value" in e and ("LISTEN" in e["name"] or "SHUTDOWN" in e["name"] or "MIGRATE" in e["name"])}
    return {
        "ports": ports,
        "required env": sorted(e["name"] for e in env if not optional(e)),
        "optional env": sorted(e["name"] for e in env if optional(e)),
        "settings": settings,
        "probes": probes,
        "preStop": c.get("lifecycle", {}).get("preStop"),
        "terminationGracePeriodSeconds": pod.get("terminationGracePeriodSeconds"),
        "pod securityContext": pod.get("securityContext"),
        "container securityContext": c.get("securityContext"),
        "resources": c.get("resources"),
        "args": c.get("args"),
        "replicas": dep["spec"].get("replicas"),
        "strategy": dep["spec"].get("strategy"),
    }


def compare(chart_objs, kustomize_objs, binaries, problems):
    chart, kust = workloads(chart_objs), workloads(kustomize_objs)
    if set(chart) != set(kust):
        problems.append(f"chart and kustomize differ in workloads: chart only {sorted(set(chart) - set(kust))}, "
                        f"kustomize only {sorted(set(kust) - set(chart))}")
    for key in sorted(set(chart) & set(kust)):
        a, b = chart[key], kust[key]
        where = f"{key[0]} {key[1]}"
        if key[0] == "Deployment":
            fa, fb = container_facts(a, binaries), container_facts(b, binaries)
            # kustomize marks settings it may lack `optional`; the chart renders them only when set.
            env_a = set(fa.pop("required env")) | set(fa.pop("optional env"))
            req_b, opt_b = set(fb.pop("required env")), set(fb.pop("optional env"))
            if not (req_b <= env_a <= req_b | opt_b):
                problems.append(f"{where}: env names differ: chart {sorted(env_a)}, kustomize required "
                                f"{sorted(req_b)} optional {sorted(opt_b)}")
            for field in fa:
                if fa[field] != fb[field]:
                    problems.append(f"{where}: {field} differ: chart {fa[field]!r}, kustomize {fb[field]!r}")
        elif key[0] == "Service":
            pa = [{k: p.get(k) for k in ("name", "port", "targetPort", "protocol", "appProtocol")} for p in a["spec"]["ports"]]
            pb = [{k: p.get(k) for k in ("name", "port", "targetPort", "protocol", "appProtocol")} for p in b["spec"]["ports"]]
            if pa != pb or a["spec"].get("type") != b["spec"].get("type"):
                problems.append(f"{where}: ports differ: chart {pa}, kustomize {pb}")
        else:
            sa = {k: v for k, v in a["spec"].items() if k not in ("selector", "scaleTargetRef")}
            sb = {k: v for k, v in b["spec"].items() if k not in ("selector", "scaleTargetRef")}
            if sa != sb:
                problems.append(f"{where}: spec differs: chart {sa}, kustomize {sb}")
