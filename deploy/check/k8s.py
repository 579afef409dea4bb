"""Checks of rendered Kubernetes objects: the Kubernetes API schema (strict) and the references
between the objects and the binaries they run."""
import re

from facts import binary_for_image, seconds

# Kubernetes versions whose API schemas every object must satisfy: the chart's kubeVersion floor and
# the kubectl the checks run.
K8S_VERSIONS = ("1.29.0", "1.34.0")
# The data plane's shutdown after its drain: queued failed-trigger reports (up to 5 s) and the flush.
DP_AFTER_DRAIN_SECS = 5
RESTRICTED_UID = 10001


def validate_schema(objs, problems, crd_validators):
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

    for where, obj in objs:
        validator = crd_validators.get((obj.get("apiVersion"), obj.get("kind")))
        if validator:
            for err in validator(obj):
                problems.append(f"{where}: {kn(obj)}: schema: {err}")
            continue
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except ValidationError as e:
                path = "/".join(map(str, e.path))
                problems.append(f"{where}: {kn(obj)}: Kubernetes {version} schema: {path}: {e.message}")
            except SchemaNotFoundError:
                problems.append(f"{where}: {kn(obj)}: no Kubernetes {version} schema for this kind")


def kn(obj):
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_refs(objs, binaries, external_secrets, problems):
    """external_secrets: {name: set(keys)} created out of band (not rendered)."""
    by_kind = {}
    for where, obj in objs:
        by_kind.setdefault(obj["kind"], {})[obj["metadata"]["name"]] = (where, obj)
    secrets = {n: secret_keys(o) for n, (_, o) in by_kind.get("Secret", {}).items()}
    for n, keys in external_secrets.items():
        secrets.setdefault(n, set()).update(keys)
    configmaps = {n: set((o.get("data") or {})) for n, (_, o) in by_kind.get("ConfigMap", {}).items()}
    deployments = by_kind.get("Deployment", {})
    pod_ports, served = {}, {}
    for name, (where, dep) in deployments.items():
        pod_ports[name], served[name] = check_deployment(f"{where}: Deployment/{name}", dep, binaries, secrets, configmaps, problems)
    for name, (where, svc) in by_kind.get("Service", {}).items():
        targets = [d for d in deployments if matches(svc["spec"].get("selector"), labels_of(deployments[d][1]))]
        if len(targets) != 1:
            problems.append(f"{where}: Service/{name} selects {len(targets)} Deployments")
            continue
        ports = pod_ports[targets[0]]
        for p in svc["spec"]["ports"]:
            t = p.get("targetPort", p["port"])
            if t not in ports and t not in ports.values():
                problems.append(f"{where}: Service/{name}: targetPort {t!r} is not a container port of {targets[0]}")
    for name, (where, pdb) in by_kind.get("PodDisruptionBudget", {}).items():
        sel = pdb["spec"]["selector"]["matchLabels"]
        if not any(matches(sel, labels_of(d)) for _, d in deployments.values()):
            problems.append(f"{where}: PodDisruptionBudget/{name} selects no Deployment")
    for name, (where, hpa) in by_kind.get("HorizontalPodAutoscaler", {}).items():
        ref = hpa["spec"]["scaleTargetRef"]
        dep = deployments.get(ref["name"])
        if ref["kind"] != "Deployment" or dep is None:
            problems.append(f"{where}: HPA/{name}: target {ref['kind']}/{ref['name']} not found")
        elif "replicas" in dep[1]["spec"]:
            problems.append(f"{where}: HPA/{name}: its Deployment sets spec.replicas (each apply resets the scale)")
    services = by_kind.get("Service", {})
    for name, (where, sm) in by_kind.get("ServiceMonitor", {}).items():
        sel = sm["spec"]["selector"].get("matchLabels", {})
        picked = [s for _, s in services.values() if matches(sel, s["metadata"].get("labels", {}))]
        if len(picked) != 1:
            problems.append(f"{where}: ServiceMonitor/{name} selects {len(picked)} Services")
            continue
        svc = picked[0]
        svc_ports = {p["name"]: p for p in svc["spec"]["ports"]}
        backends = [d for d in deployments if matches(svc["spec"].get("selector"), labels_of(deployments[d][1]))]
        for ep in sm["spec"]["endpoints"]:
            if ep.get("port") not in svc_ports:
                problems.append(f"{where}: ServiceMonitor/{name}: port {ep.get('port')!r} not in Service {svc['metadata']['name']}")
                continue
            if len(backends) != 1:
                continue
            target = svc_ports[ep["port"]].get("targetPort", svc_ports[ep["port"]]["port"])
            number = pod_ports[backends[0]].get(target, target)
            paths = served[backends[0]].get(number, [])
            if ep.get("path", "/metrics") not in paths:
                problems.append(f"{where}: ServiceMonitor/{name}: path {ep.get('path', '/metrics')!r} is not served "
                                f"on port {ep['port']} of {backends[0]} (it serves {paths})")
    for name, (where, np) in by_kind.get("NetworkPolicy", {}).items():
        sel = np["spec"]["podSelector"].get("matchLabels", {})
        picked = [d for d in deployments if matches(sel, labels_of(deployments[d][1]))]
        if len(picked) != 1:
            problems.append(f"{where}: NetworkPolicy/{name} selects {len(picked)} Deployments")
            continue
        for rule in np["spec"].get("ingress", []):
            for p in rule.get("ports", []):
                if isinstance(p.get("port"), str) and p["port"] not in pod_ports[picked[0]]:
                    problems.append(f"{where}: NetworkPolicy/{name}: port {p['port']!r} is not a container port of {picked[0]}")


def secret_keys(obj):
    return set(obj.get("data") or {}) | set(obj.get("stringData") or {})


def labels_of(dep):
    return dep["spec"]["template"]["metadata"].get("labels", {})


def env_map(container):
    return {e["name"]: e for e in container.get("env", [])}


def check_deployment(where, dep, binaries, secrets, configmaps, problems):
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    if not matches(spec["selector"]["matchLabels"], labels_of(dep)):
        problems.append(f"{where}: selector does not match the pod template labels")
    psc = pod.get("securityContext", {})
    if not (psc.get("runAsNonRoot") and psc.get("runAsUser") == RESTRICTED_UID
            and psc.get("seccompProfile", {}).get("type") == "RuntimeDefault"):
        problems.append(f"{where}: pod must run as non-root uid {RESTRICTED_UID} with seccomp RuntimeDefault")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for v in volumes.values():
        if "secret" in v:
            name = v["secret"]["secretName"]
            if name not in secrets:
                problems.append(f"{where}: volume {v['name']}: Secret {name} is neither rendered nor documented")
            for item in v["secret"].get("items", []):
                if name in secrets and item["key"] not in secrets[name]:
                    problems.append(f"{where}: volume {v['name']}: key {item['key']} not in Secret {name}")
    all_ports, all_served = {}, {}
    for c in pod["containers"]:
        cw = f"{where}: container {c['name']}"
        binary = binary_for_image(c["image"], binaries)
        if binary is None:
            problems.append(f"{cw}: image {c['image']} runs none of {sorted(binaries)}")
            continue
        command = binary.command_of(c.get("args") or c.get("command", [])[1:])
        known = binary.env(command)
        label = f"{binary.name} {command}".strip()
        sc = c.get("securityContext", {})
        if not sc.get("readOnlyRootFilesystem") or sc.get("allowPrivilegeEscalation") is not False \
                or sc.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append(f"{cw}: securityContext must be read-only, no privilege escalation, drop ALL")
        res = c.get("resources", {})
        if not res.get("requests", {}).get("cpu") or not res.get("limits", {}).get("memory"):
            problems.append(f"{cw}: needs CPU requests and a memory limit")
        env = env_map(c)
        expanded = {m for e in env.values() for m in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", e.get("value") or "")}
        literal = {}
        for name, e in env.items():
            if name not in known and name not in binary.extra_env and name not in expanded:
                problems.append(f"{cw}: env {name} is not read by {label}")
            info = known.get(name, {})
            if info.get("hidden"):
                problems.append(f"{cw}: env {name} is a hidden (old, renamed) setting of {label}: use its documented name")
            if "value" in e:
                literal[name] = e["value"]
                if info.get("secret") and not re.fullmatch(r"(.*\$\([A-Za-z_][A-Za-z0-9_]*\).*)", e["value"] or ""):
                    problems.append(f"{cw}: env {name} is a secret: take it from a Secret, not a literal value")
            src = e.get("valueFrom", {})
            if "secretKeyRef" in src:
                ref = src["secretKeyRef"]
                if ref["name"] not in secrets:
                    problems.append(f"{cw}: env {name}: Secret {ref['name']} is neither rendered nor documented")
                elif ref["key"] not in secrets[ref["name"]] and not ref.get("optional"):
                    problems.append(f"{cw}: env {name}: key {ref['key']} not in Secret {ref['name']}")
            if "configMapKeyRef" in src:
                ref = src["configMapKeyRef"]
                if ref["name"] not in configmaps:
                    problems.append(f"{cw}: env {name}: unknown ConfigMap {ref['name']}")
                elif ref["key"] not in configmaps[ref["name"]] and not ref.get("optional"):
                    problems.append(f"{cw}: env {name}: key {ref['key']} not in ConfigMap {ref['name']}")
        for name, e in env.items():
            if name in known and "configMapKeyRef" in e.get("valueFrom", {}):
                literal.setdefault(name, None)
        listening = binary.listening(command, literal)
        ports = {}
        for p in c.get("ports", []):
            ports[p.get("name")] = p["containerPort"]
            if p["containerPort"] not in listening:
                problems.append(f"{cw}: containerPort {p['containerPort']} ({p.get('name')}) is not a port "
                                f"{label} listens on ({listening_text(binary, command, literal)})")
        all_ports.update(ports)
        all_served.update({n: lst["paths"] for n, lst in listening.items()})
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            p = c.get(probe)
            if not p:
                continue
            kind = next((k for k in ("httpGet", "grpc", "tcpSocket", "exec") if k in p), None)
            if kind == "exec":
                continue
            port = p[kind].get("port")
            number = ports.get(port, port) if isinstance(port, str) else port
            lst = listening.get(number)
            if lst is None:
                problems.append(f"{cw}: {probe} port {port!r} is not a port {label} listens on")
            elif kind == "httpGet" and (lst["protocol"] != "http" or p["httpGet"].get("path") not in lst["paths"]):
                problems.append(f"{cw}: {probe} path {p['httpGet'].get('path')!r} is not served on {lst['env']} "
                                f"(it serves {lst['paths']})")
            elif kind == "grpc" and not lst["grpc_health"]:
                problems.append(f"{cw}: {probe} is a gRPC probe but {lst['env']} has no grpc.health.v1")
        for m in c.get("volumeMounts", []):
            if m["name"] not in volumes:
                problems.append(f"{cw}: mount of undeclared volume {m['name']}")
        check_budget(cw, pod, c, binary, command, literal, problems)
    return all_ports, all_served


def listening_text(binary, command, literal):
    known = binary.env(command)
    return ", ".join(f"{l['env']}={literal.get(l['env']) or known.get(l['env'], {}).get('default')}"
                     for l in binary.listeners if l["env"] in known)


def check_budget(cw, pod, c, binary, command, literal, problems):
    name = binary.shutdown_env(command, literal)
    if not name:
        return
    value = literal.get(name) or binary.env(command)[name].get("default")
    if value is None:
        return
    try:
        drain = seconds(name, value)
    except ValueError as e:
        problems.append(f"{cw}: {e}")
        return
    pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pre_secs = float(pre[1]) if pre[:1] == ["sleep"] and len(pre) > 1 else 0
    after = DP_AFTER_DRAIN_SECS if binary.name == "data-plane" else 0
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if grace <= pre_secs + drain + after:
        problems.append(f"{cw}: terminationGracePeriodSeconds {grace} <= preStop {pre_secs:g} + {name} {drain:g}"
                        + (f" + {after} (reports, flush)" if after else ""))
