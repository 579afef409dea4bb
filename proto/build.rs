//! Compiles every `.proto` under `proto/` with protox (pure Rust, no protoc needed) and generates
//! tonic clients and servers plus the file descriptor set that server reflection serves.

use std::path::{Path, PathBuf};

use prost::Message;

/// The messages whose `Debug` src/redact.rs writes (keep the two lists in step).
const REDACTED: &[&str] = &[
    "SetProviderSecretRequest",
    "GetWebhookUrlResponse",
    "ExchangeTokenRequest",
    "ExchangeTokenResponse",
    "CreateApiTokenResponse",
    "CreateHmacKeyResponse",
    "HmacKeyRoute",
    "SigningSecret",
    "WebhookRoute",
    "SetConfigParamRequest",
];

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from("proto");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &mut files)?;
    files.sort();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let fds = protox::compile(&files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("gateway_descriptor.bin"), fds.encode_to_vec())?;
    // Messages that carry secrets get a hand-written, redacted `Debug` (src/redact.rs).
    let mut config = tonic_prost_build::Config::new();
    config.skip_debug(REDACTED.iter().map(|m| format!(".webhook.gateway.v1.{m}")));
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds_with_config(fds, config)?;
    Ok(())
}
