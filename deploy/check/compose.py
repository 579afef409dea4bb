"""Checks of the compose file: its service graph (depends_on targets and conditions, cycles, volumes,
`$` escaping) and, for the gateway's own services, env names, published ports, healthcheck paths and
stop grace periods against the binaries."""
import re
from pathlib import Path

import yaml

from facts import seconds


def check(path, binaries, problems):
    text = Path(path).read_text()
    doc = yaml.safe_load(text)
    where = str(path)
    services = doc.get("services", {})
    volumes = set((doc.get("volumes") or {}).keys())
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        for dep, spec in deps.items():
            if dep not in services:
                problems.append(f"{where}: {name}: depends_on unknown service {dep!r}")
                continue
            cond = (spec or {}).get("condition", "service_started")
            target = services[dep]
            if cond == "service_healthy" and "healthcheck" not in target:
                problems.append(f"{where}: {name}: waits for {dep} healthy, but {dep} has no healthcheck")
            if cond == "service_completed_successfully" and target.get("restart", "no") != "no":
                problems.append(f"{where}: {name}: waits for {dep} to complete, but {dep} restarts")
        for vol in svc.get("volumes", []):
            source = vol.split(":")[0] if isinstance(vol, str) else vol.get("source")
            if source and not source.startswith((".", "/", "~")) and source not in volumes:
                problems.append(f"{where}: {name}: volume {source!r} is not declared under top-level volumes")
        if "build" not in svc and "image" not in svc:
            problems.append(f"{where}: {name}: neither build nor image")
        check_gateway_service(where, name, svc, binaries, problems)
    state = {}

    def visit(n, stack):
        if state.get(n) == "done":
            return
        if state.get(n) == "active":
            problems.append(f"{where}: depends_on cycle: " + " -> ".join(stack + [n]))
            return
        state[n] = "active"
        for dep in services.get(n, {}).get("depends_on", {}) or {}:
            if dep in services:
                visit(dep, stack + [n])
        state[n] = "done"

    for n in services:
        visit(n, [])
    # Compose interpolates `$`: a literal dollar is `$$`; this file writes variables as `${NAME…}`.
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        for m in re.finditer(r"\$\$|\$\{[A-Za-z_]|\$", line):
            if m.group() == "$":
                problems.append(f"{where}: line {lineno}: '$' neither '$$' (a literal dollar) nor '${{NAME…}}'")
    return len(services), len(volumes)


def interpolated_default(value):
    """`${X:-default}` → default (what compose uses when X is unset)."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}", r"\1", str(value))


def check_gateway_service(where, name, svc, binaries, problems):
    build = svc.get("build")
    target = build.get("target") if isinstance(build, dict) else None
    binary = binaries.get(target)
    if binary is None or "entrypoint" in svc:
        return  # not a gateway binary, or a shell wrapped around one
    sw = f"{where}: {name}"
    command = binary.command_of(svc.get("command") or [])
    known = binary.env(command)
    label = f"{binary.name} {command}".strip()
    env = {k: interpolated_default(v) for k, v in (svc.get("environment") or {}).items()}
    for k in env:
        if k not in known and k not in binary.extra_env:
            problems.append(f"{sw}: env {k} is not read by {label}")
        elif known.get(k, {}).get("hidden"):
            problems.append(f"{sw}: env {k} is a hidden (old, renamed) setting of {label}: use its documented name")
    listening = binary.listening(command, env)
    for p in svc.get("ports", []):
        container = int(str(p).rsplit(":", 1)[-1].split("/")[0])
        if container not in listening:
            problems.append(f"{sw}: published container port {container} is not a port {label} listens on")
    hc = " ".join(map(str, (svc.get("healthcheck") or {}).get("test", [])))
    m = re.search(r"/dev/tcp/[^/]+/(\d+).*GET (\S+) HTTP", hc)
    if m:
        lst = listening.get(int(m.group(1)))
        if lst is None or m.group(2) not in lst["paths"]:
            problems.append(f"{sw}: healthcheck GET {m.group(2)} on port {m.group(1)} is not served by {label}")
    shutdown = binary.shutdown_env(command, env)
    if shutdown:
        drain = seconds(shutdown, env.get(shutdown) or known[shutdown]["default"])
        stop = seconds("stop_grace_period", svc.get("stop_grace_period", "10s"))
        if stop <= drain:
            problems.append(f"{sw}: stop_grace_period {stop:g}s <= {shutdown} {drain:g}s")
