"""What the binaries read and serve, from their own `--print-config-schema` listing."""
import json
import re
import subprocess
from pathlib import Path


class Binary:
    """One binary's listing: env names per subcommand, listeners, secret-valued env."""

    def __init__(self, listing):
        self.name = listing["binary"]
        self.commands = {c: {e["name"]: e for e in env} for c, env in listing["commands"].items()}
        self.extra_env = set(listing.get("extra_env", []))
        self.listeners = listing["listeners"]

    @classmethod
    def load(cls, path):
        return cls(json.loads(Path(path).read_text()))

    @classmethod
    def run(cls, exe):
        out = subprocess.run([exe, "--print-config-schema"], check=True, capture_output=True, text=True)
        return cls(json.loads(out.stdout))

    def command_of(self, args):
        """The subcommand an argument list runs ("" for the binary itself)."""
        words = []
        for a in args or []:
            if a.startswith("-"):
                break
            if " ".join(words + [a]) in self.commands:
                words.append(a)
            else:
                break
        return " ".join(words)

    def env(self, command):
        return self.commands.get(command, {})

    def shutdown_env(self, command, env_values):
        """The env var of the shutdown budget (its name says SHUTDOWN_GRACE): the one set in
        env_values, else the one with a default."""
        names = sorted(n for n, e in self.env(command).items() if "SHUTDOWN_GRACE" in n and not e.get("hidden"))
        set_ = [n for n in names if env_values.get(n)]
        defaulted = [n for n in names if self.env(command)[n].get("default")]
        return (set_ or defaulted or [None])[0]

    def listening(self, command, env_values):
        """{port: listener} for the addresses set in env_values (or the defaults)."""
        out = {}
        known = self.env(command)
        for lst in self.listeners:
            if lst["env"] not in known:
                continue
            addr = env_values.get(lst["env"]) or known[lst["env"]].get("default")
            if addr:
                out[int(addr.rsplit(":", 1)[1])] = lst
        return out


def seconds(name, text):
    """A duration setting's value in seconds: bare integers are seconds for *_SECS, ms for *_MS."""
    text = str(text).strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", text)
    if not m:
        raise ValueError(f"{name}={text!r} is not a duration")
    n = float(m.group(1))
    unit = m.group(2) or ("ms" if name.endswith("_MS") else "s")
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def binary_for_image(image, binaries):
    """The binary an image runs: the last path segment of its repository."""
    repo = image.rsplit("@", 1)[0]
    repo = repo.rsplit(":", 1)[0] if ":" in repo.rsplit("/", 1)[-1] else repo
    return binaries.get(repo.rsplit("/", 1)[-1])
