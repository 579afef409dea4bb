//! Postgres connections with TLS as `DATABASE_URL`'s `sslmode` asks (docs/control-plane.md,
//! "Postgres TLS"). One connect function serves the pool, the migration connection and the LISTEN
//! connection, so every connection the control plane opens follows the same rules.
//!
//! libpq's modes, implemented with rustls:
//! - `disable`: plaintext.
//! - `prefer` (libpq's default) and `allow`: TLS when the server offers it, without verification.
//! - `require`: TLS or no connection; the certificate is not verified unless `sslrootcert` is given
//!   (then as `verify-ca`), exactly like libpq.
//! - `verify-ca`: TLS, the chain verified against `sslrootcert` (a PEM file, or `system` for the
//!   system store; default the system store), the host name not checked.
//! - `verify-full`: as `verify-ca`, and the certificate must name the host. Use this in production.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The TLS stream type of every control-plane Postgres connection.
pub type PgTlsStream = <MakeRustlsConnect as MakeTlsConnect<tokio_postgres::Socket>>::Stream;

/// An open connection: the client and the task-side connection that must be polled.
pub type PgConnection = (
    tokio_postgres::Client,
    tokio_postgres::Connection<tokio_postgres::Socket, PgTlsStream>,
);

/// How to reach Postgres: the URL tokio-postgres understands and the TLS connector for its mode.
#[derive(Clone)]
pub struct PgConnector {
    url: String,
    tls: MakeRustlsConnect,
}

impl std::fmt::Debug for PgConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("PgConnector").finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl PgConnector {
    /// Reads `sslmode` and `sslrootcert` from a `postgres://` URL (or a `key=value` string) and
    /// prepares the connector. Errors name the problem, never the password.
    pub fn new(database_url: &str) -> anyhow::Result<Self> {
        let (url, sslmode, rootcert) = split_tls_params(database_url)?;
        let mode = match sslmode.as_deref() {
            None | Some("prefer") | Some("allow") => Mode::Prefer,
            Some("disable") => Mode::Disable,
            Some("require") if rootcert.is_some() => Mode::VerifyCa,
            Some("require") => Mode::Require,
            Some("verify-ca") => Mode::VerifyCa,
            Some("verify-full") => Mode::VerifyFull,
            Some(other) => anyhow::bail!(
                "DATABASE_URL: sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full"
            ),
        };
        // tokio-postgres knows disable / prefer / require; verification is ours.
        let wire_mode = match mode {
            Mode::Disable => "disable",
            Mode::Prefer => "prefer",
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => "require",
        };
        let url = with_param(&url, "sslmode", wire_mode);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| anyhow::anyhow!("TLS setup: {e}"))?;
        let chain = match mode {
            Mode::Disable | Mode::Prefer | Mode::Require => None,
            Mode::VerifyCa | Mode::VerifyFull => {
                let roots = Arc::new(load_roots(rootcert.as_deref())?);
                let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                    .build()
                    .map_err(|e| anyhow::anyhow!("TLS setup: {e}"))?;
                Some(webpki)
            }
        };
        let verifier = Verifier {
            provider,
            chain,
            check_name: mode == Mode::VerifyFull,
        };
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(Self {
            url,
            tls: MakeRustlsConnect::new(config),
        })
    }

    /// Opens one connection.
    pub async fn connect(&self) -> Result<PgConnection, tokio_postgres::Error> {
        tokio_postgres::connect(&self.url, self.tls.clone()).await
    }
}

/// Removes `sslmode` and `sslrootcert` (which tokio-postgres does not all understand) from the URL
/// and returns them.
fn split_tls_params(input: &str) -> anyhow::Result<(String, Option<String>, Option<String>)> {
    let mut sslmode = None;
    let mut rootcert = None;
    if input.starts_with("postgres://") || input.starts_with("postgresql://") {
        let mut url = url::Url::parse(input)
            .map_err(|e| anyhow::anyhow!("DATABASE_URL is not a valid URL: {e}"))?;
        let mut kept: Vec<(String, String)> = Vec::new();
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "sslmode" => sslmode = Some(v.into_owned()),
                "sslrootcert" => rootcert = Some(v.into_owned()),
                "sslcert" | "sslkey" => anyhow::bail!(
                    "DATABASE_URL: client certificates ({k}) are not supported; use password or trust authentication over TLS"
                ),
                _ => kept.push((k.into_owned(), v.into_owned())),
            }
        }
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
        Ok((url.to_string(), sslmode, rootcert))
    } else {
        let mut kept = Vec::new();
        for part in input.split_whitespace() {
            match part.split_once('=') {
                Some(("sslmode", v)) => sslmode = Some(v.to_owned()),
                Some(("sslrootcert", v)) => rootcert = Some(v.to_owned()),
                Some(("sslcert" | "sslkey", _)) => anyhow::bail!(
                    "DATABASE_URL: client certificates are not supported; use password or trust authentication over TLS"
                ),
                _ => kept.push(part),
            }
        }
        Ok((kept.join(" "), sslmode, rootcert))
    }
}

fn with_param(url: &str, key: &str, value: &str) -> String {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}{key}={value}")
    } else {
        format!("{url} {key}={value}")
    }
}

fn load_roots(rootcert: Option<&str>) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    match rootcert {
        None | Some("system") => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
        }
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                anyhow::anyhow!("DATABASE_URL: cannot read sslrootcert {path}: {e}")
            })?;
            let mut reader = std::io::BufReader::new(pem.as_slice());
            for cert in rustls_pemfile::certs(&mut reader) {
                let cert = cert.map_err(|e| anyhow::anyhow!("sslrootcert {path}: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| anyhow::anyhow!("sslrootcert {path}: {e}"))?;
            }
        }
    }
    if roots.is_empty() {
        anyhow::bail!("DATABASE_URL: no trusted root certificate for sslmode verification");
    }
    Ok(roots)
}

/// The certificate check of every mode. Without a chain verifier (`prefer`, `require` without a
/// root) any certificate is accepted, as libpq does; with one the chain must verify, and
/// `check_name` off (`verify-ca`) accepts a certificate for another host name. Handshake
/// signatures are always verified with the provider's algorithms.
#[derive(Debug)]
struct Verifier {
    provider: Arc<rustls::crypto::CryptoProvider>,
    chain: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_params_are_taken_out_of_the_url() {
        let (url, mode, root) = split_tls_params(
            "postgres://u:p@db:5432/gw?sslmode=verify-full&sslrootcert=/ca.pem&application_name=cp",
        )
        .expect("parse");
        assert_eq!(url, "postgres://u:p@db:5432/gw?application_name=cp");
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root.as_deref(), Some("/ca.pem"));

        let (url, mode, _) = split_tls_params("host=db user=u sslmode=require").expect("parse");
        assert_eq!(url, "host=db user=u");
        assert_eq!(mode.as_deref(), Some("require"));
    }

    #[test]
    fn bad_modes_and_client_certs_are_clear_errors_without_the_password() {
        let err = PgConnector::new("postgres://u:hunter2@db/gw?sslmode=verify-everything")
            .expect_err("bad mode")
            .to_string();
        assert!(err.contains("sslmode=verify-everything"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = PgConnector::new("postgres://u:hunter2@db/gw?sslcert=/c.pem")
            .expect_err("client cert")
            .to_string();
        assert!(
            err.contains("not supported") && !err.contains("hunter2"),
            "{err}"
        );
        let err =
            PgConnector::new("postgres://db/gw?sslmode=verify-full&sslrootcert=/nonexistent.pem")
                .expect_err("missing root")
                .to_string();
        assert!(err.contains("/nonexistent.pem"), "{err}");
    }
}
