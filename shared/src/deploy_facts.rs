//! What a binary reads and serves, printed as JSON by its hidden `--print-config-schema` flag so the
//! deployment checks (deploy/README.md, "What the checks prove") test the manifests against the
//! binary itself: every environment variable clap knows (with its default, whether its value is
//! secret, and whether it is hidden — the old names of renamed settings are), and each listener with
//! the HTTP paths its probes may use.

use serde_json::{json, Value};

/// The flag, as the first argument, that prints the listing instead of running.
pub const FLAG: &str = "--print-config-schema";

/// One listening socket of the binary.
pub struct Listener {
    /// The environment variable holding its address.
    pub env: &'static str,
    /// `http` or `grpc`.
    pub protocol: &'static str,
    /// Paths served for probes and scrapes (the same constants the router matches).
    pub paths: &'static [&'static str],
    /// Whether it answers `grpc.health.v1.Health/Check` (the kubelet's gRPC probe).
    pub grpc_health: bool,
}

/// The listing for `cmd` (its subcommands included) and `listeners`. `extra_env` names variables
/// read outside clap (e.g. `RUST_LOG`).
pub fn describe(cmd: &clap::Command, listeners: &[Listener], extra_env: &[&str]) -> Value {
    let mut cmd = cmd.clone();
    // Propagates global arguments into the subcommands.
    cmd.build();
    let mut commands = serde_json::Map::new();
    collect(&cmd, "", &mut commands);
    json!({
        "binary": cmd.get_name(),
        "commands": commands,
        "extra_env": extra_env,
        "listeners": listeners.iter().map(|l| json!({
            "env": l.env,
            "protocol": l.protocol,
            "paths": l.paths,
            "grpc_health": l.grpc_health,
        })).collect::<Vec<_>>(),
    })
}

fn collect(cmd: &clap::Command, path: &str, out: &mut serde_json::Map<String, Value>) {
    let mut args: Vec<&clap::Arg> = cmd.get_arguments().collect();
    args.sort_by_key(|a| a.get_env().map(|e| e.to_os_string()));
    let env: Vec<Value> = args
        .into_iter()
        .filter_map(|a| {
            let name = a.get_env()?.to_str()?;
            let default: Vec<String> = a
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            Some(json!({
                "name": name,
                "default": (!default.is_empty()).then(|| default.join(",")),
                "secret": a.is_hide_env_values_set(),
                "hidden": a.is_hide_set(),
            }))
        })
        .collect();
    out.insert(path.to_owned(), Value::Array(env));
    // `help` is clap's own subcommand (built in by `build`), not one of the binary's.
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = if path.is_empty() {
            sub.get_name().to_owned()
        } else {
            format!("{path} {}", sub.get_name())
        };
        collect(sub, &name, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_env_defaults_secrets_hidden_names_and_subcommands() {
        let cmd = clap::Command::new("x")
            .arg(
                clap::Arg::new("log")
                    .long("log")
                    .env("X_LOG")
                    .global(true)
                    .action(clap::ArgAction::SetTrue),
            )
            .subcommand(
                clap::Command::new("serve")
                    .arg(
                        clap::Arg::new("listen")
                            .long("listen")
                            .env("X_LISTEN")
                            .default_value("0.0.0.0:1"),
                    )
                    .arg(
                        clap::Arg::new("key")
                            .long("key")
                            .env("X_KEY")
                            .hide_env_values(true),
                    )
                    .arg(clap::Arg::new("old").long("old").env("X_OLD").hide(true))
                    .arg(clap::Arg::new("plain").long("plain")),
            );
        let listeners = [Listener {
            env: "X_LISTEN",
            protocol: "http",
            paths: &["/healthz"],
            grpc_health: false,
        }];
        let v = describe(&cmd, &listeners, &["RUST_LOG"]);
        assert_eq!(v["binary"], "x");
        assert_eq!(
            v["commands"]["serve"],
            json!([
                {"name": "X_KEY", "default": null, "secret": true, "hidden": false},
                {"name": "X_LISTEN", "default": "0.0.0.0:1", "secret": false, "hidden": false},
                {"name": "X_LOG", "default": "false", "secret": false, "hidden": false},
                {"name": "X_OLD", "default": null, "secret": false, "hidden": true},
            ])
        );
        assert_eq!(
            v["commands"][""],
            json!([{"name": "X_LOG", "default": "false", "secret": false, "hidden": false}])
        );
        let commands: Vec<&String> = v["commands"]
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        assert_eq!(commands, ["", "serve"]);
        assert_eq!(v["listeners"][0]["paths"], json!(["/healthz"]));
        assert_eq!(v["extra_env"], json!(["RUST_LOG"]));
    }
}
