//! Tokens from an external OIDC issuer (docs/control-plane.md, "OIDC tokens"), with keys this test
//! generates: an RSA key (openssl) and a P-256 key (rcgen), published as a JWKS file or served by a
//! real HTTP server, the tokens used as bearer JWTs on the real gRPC API.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gateway_proto::v1 as pb;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use crate::support::*;

const ISSUER: &str = "https://idp.test.example/realms/platform";

struct SigningKey {
    kid: String,
    alg: Algorithm,
    key: EncodingKey,
    jwk: Jwk,
}

impl SigningKey {
    fn rsa(kid: &str) -> SigningKey {
        let out = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ])
            .output()
            .expect("openssl must be installed to generate an RSA key");
        assert!(out.status.success(), "openssl genpkey failed");
        Self::from_pem(
            kid,
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(&out.stdout),
        )
    }

    fn p256(kid: &str) -> SigningKey {
        let pair = rcgen::KeyPair::generate().expect("P-256 key");
        let pem = pair.serialize_pem();
        Self::from_pem(
            kid,
            Algorithm::ES256,
            EncodingKey::from_ec_pem(pem.as_bytes()),
        )
    }

    fn from_pem(
        kid: &str,
        alg: Algorithm,
        key: jsonwebtoken::errors::Result<EncodingKey>,
    ) -> SigningKey {
        let key = key.expect("PEM key");
        let mut jwk = Jwk::from_encoding_key(&key, alg).expect("public JWK");
        jwk.common.key_id = Some(kid.to_owned());
        SigningKey {
            kid: kid.to_owned(),
            alg,
            key,
            jwk,
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).expect("sign")
    }
}

fn jwks(keys: &[&SigningKey]) -> String {
    serde_json::to_string(&JwkSet {
        keys: keys.iter().map(|k| k.jwk.clone()).collect(),
    })
    .expect("JWKS")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Claims of a token for `org` with `role` (the claim names are the defaults unless changed).
fn claims(org: Uuid, role: Value) -> Value {
    json!({
        "iss": ISSUER, "sub": "user-1", "aud": "webhook-gateway",
        "exp": now() + 300, "iat": now(),
        "organization_id": org.to_string(), "role": role,
    })
}

/// A JWKS served over HTTP; counts how often it was read and can be changed.
struct JwksServer {
    url: String,
    body: Arc<Mutex<String>>,
    reads: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(body: String) -> JwksServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://{}/realms/platform/protocol/openid-connect/certs",
            listener.local_addr().expect("addr")
        );
        let body = Arc::new(Mutex::new(body));
        let reads = Arc::new(AtomicUsize::new(0));
        let (b, r) = (body.clone(), reads.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (b, r) = (b.clone(), r.clone());
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = socket.read(&mut request).await;
                    r.fetch_add(1, Ordering::SeqCst);
                    let text = b.lock().expect("body").clone();
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                        text.len()
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
        JwksServer { url, body, reads }
    }
}

async fn list_webhooks(
    channel: &tonic::transport::Channel,
    jwt: &str,
    app: &pb::AppRef,
) -> Result<usize, tonic::Status> {
    let mut c = clients_with_jwt(channel, jwt);
    c.webhooks
        .list_webhooks(pb::ListWebhooksRequest {
            app: Some(app.clone()),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().webhooks.len())
}

#[tokio::test]
async fn rs256_tokens_from_a_jwks_file_carry_their_role_and_organization() {
    let rsa = SigningKey::rsa("rsa-1");
    let stranger = SigningKey::rsa("rsa-1");
    let file = std::env::temp_dir().join(format!("gw-oidc-{}.json", Uuid::new_v4().simple()));
    std::fs::write(&file, jwks(&[&rsa])).expect("write JWKS");
    let cp = TestControlPlane::start_with(|c| {
        c.oidc.issuer = Some(ISSUER.into());
        c.oidc.audience = Some("webhook-gateway".into());
        c.oidc.jwks_file = Some(file.clone());
    })
    .await;
    let channel = cp.channel().await;
    let org = cp.org;
    let the_app = app(org);

    // An EDITOR of the organization reads and writes webhooks, but cannot manage API tokens.
    let editor = rsa.sign(&claims(org, json!("editor")));
    assert_eq!(
        list_webhooks(&channel, &editor, &the_app)
            .await
            .expect("EDITOR reads"),
        0
    );
    let mut c = clients_with_jwt(&channel, &editor);
    c.webhooks
        .create_webhook(pb::CreateWebhookRequest {
            app: Some(the_app.clone()),
            name: "oidc_made".into(),
            provider: pb::Provider::Generic as i32,
            ..Default::default()
        })
        .await
        .expect("EDITOR writes");
    assert_eq!(
        list_webhooks(&channel, &editor, &the_app)
            .await
            .expect("listed"),
        1
    );
    assert_err(
        c.admin
            .list_api_tokens(pb::ListApiTokensRequest {
                organization_id: org.to_string(),
                ..Default::default()
            })
            .await,
        tonic::Code::PermissionDenied,
        "ROLE_FORBIDDEN",
    );
    // Another organization's data stays out of reach.
    let other = Uuid::new_v4();
    assert_err(
        list_webhooks(&channel, &editor, &app(other)).await,
        tonic::Code::PermissionDenied,
        "SCOPE_FORBIDDEN",
    );

    // Every refusal is the same UNAUTHENTICATED answer.
    let refused = |what: &'static str, token: String| {
        let channel = channel.clone();
        let the_app = the_app.clone();
        async move {
            let status = list_webhooks(&channel, &token, &the_app)
                .await
                .expect_err(what);
            assert_eq!(
                status.code(),
                tonic::Code::Unauthenticated,
                "{what}: {status:?}"
            );
            assert_eq!(reason(&status), "AUTH_TOKEN_INVALID", "{what}");
        }
    };
    let mut expired = claims(org, json!("EDITOR"));
    expired["exp"] = json!(now() - 120);
    refused("expired", rsa.sign(&expired)).await;
    let mut audience = claims(org, json!("EDITOR"));
    audience["aud"] = json!("another-service");
    refused("another audience", rsa.sign(&audience)).await;
    refused(
        "a key not in the set, same kid",
        stranger.sign(&claims(org, json!("EDITOR"))),
    )
    .await;
    refused(
        "data-plane role",
        rsa.sign(&claims(org, json!("DATA_PLANE"))),
    )
    .await;
    refused(
        "no known role",
        rsa.sign(&claims(org, json!(["offline_access"]))),
    )
    .await;
    let mut no_org = claims(org, json!("ADMIN"));
    no_org
        .as_object_mut()
        .expect("object")
        .remove("organization_id");
    refused("no organization", rsa.sign(&no_org)).await;
    // alg confusion: an HS256 token naming the issuer, keyed with the RSA key's public modulus.
    let hs_key = EncodingKey::from_secret(serde_json::to_string(&rsa.jwk).expect("jwk").as_bytes())
        .expect("HMAC key");
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".into());
    let confused =
        jsonwebtoken::encode(&header, &claims(org, json!("ADMIN")), &hs_key).expect("sign");
    refused("HS256 with the issuer's name", confused).await;
    // The control plane's own tokens still work beside OIDC.
    clients(&channel, BOOTSTRAP_TOKEN)
        .await
        .webhooks
        .list_webhooks(pb::ListWebhooksRequest {
            app: Some(app(org)),
            ..Default::default()
        })
        .await
        .expect("own JWTs are still accepted");
    let _ = std::fs::remove_file(&file);
}

#[tokio::test]
async fn es256_keys_from_a_url_nested_roles_workspace_scope_and_rotation() {
    let first = SigningKey::p256("ec-1");
    let server = JwksServer::start(jwks(&[&first])).await;
    let ws = Uuid::new_v4();
    let cp = TestControlPlane::start_with(|c| {
        c.oidc.issuer = Some(ISSUER.into());
        c.oidc.jwks_url = Some(server.url.clone());
        c.oidc.jwks_refresh = Duration::from_secs(1);
        c.oidc.role_claim = "realm_access.roles".into();
        c.oidc.workspace_claim = "gateway.workspace".into();
    })
    .await;
    let channel = cp.channel().await;
    let org = cp.org;
    let token = |key: &SigningKey, workspace: Uuid| {
        key.sign(&json!({
            "iss": ISSUER, "sub": "svc-designer", "exp": now() + 300,
            "organization_id": org.to_string(),
            "gateway": {"workspace": workspace.to_string()},
            "realm_access": {"roles": ["offline_access", "VIEWER"]},
        }))
    };
    let in_ws = pb::AppRef {
        organization_id: org.to_string(),
        workspace_id: ws.to_string(),
        app_id: Uuid::new_v4().to_string(),
    };
    let viewer = token(&first, ws);
    let mut c = clients_with_jwt(&channel, &viewer);
    c.webhooks
        .list_webhooks(pb::ListWebhooksRequest {
            app: Some(in_ws.clone()),
            ..Default::default()
        })
        .await
        .expect("a VIEWER reads its workspace");
    assert_err(
        c.webhooks
            .list_webhooks(pb::ListWebhooksRequest {
                app: Some(app(org)),
                ..Default::default()
            })
            .await,
        tonic::Code::PermissionDenied,
        "SCOPE_FORBIDDEN",
    );
    assert_err(
        c.webhooks
            .create_webhook(pb::CreateWebhookRequest {
                app: Some(in_ws.clone()),
                name: "viewer_cannot".into(),
                provider: pb::Provider::Generic as i32,
                ..Default::default()
            })
            .await,
        tonic::Code::PermissionDenied,
        "ROLE_FORBIDDEN",
    );

    // The issuer rotates to a new key: tokens with the new kid are accepted once the set is read
    // again (an unknown kid makes it read again, at most once per refresh interval here).
    let second = SigningKey::p256("ec-2");
    *server.body.lock().expect("body") = jwks(&[&first, &second]);
    let reads_before = server.reads.load(Ordering::SeqCst);
    let rotated = token(&second, ws);
    gateway_testkit::eventually(
        "a token of the rotated key to be accepted",
        Duration::from_secs(20),
        || {
            let channel = channel.clone();
            let rotated = rotated.clone();
            let in_ws = in_ws.clone();
            async move {
                clients_with_jwt(&channel, &rotated)
                    .webhooks
                    .list_webhooks(pb::ListWebhooksRequest {
                        app: Some(in_ws),
                        ..Default::default()
                    })
                    .await
                    .ok()
            }
        },
    )
    .await;
    assert!(server.reads.load(Ordering::SeqCst) > reads_before);

    // An unknown kid does not make every request fetch the set: a burst reads it at most once or
    // twice (the refresh interval is one second here).
    let unknown = token(&SigningKey::p256("ec-unknown"), ws);
    let reads_before = server.reads.load(Ordering::SeqCst);
    for _ in 0..20 {
        let status = clients_with_jwt(&channel, &unknown)
            .webhooks
            .list_webhooks(pb::ListWebhooksRequest {
                app: Some(in_ws.clone()),
                ..Default::default()
            })
            .await
            .expect_err("unknown kid");
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
    }
    assert!(
        server.reads.load(Ordering::SeqCst) - reads_before <= 2,
        "the key set was read {} times for 20 requests",
        server.reads.load(Ordering::SeqCst) - reads_before
    );
}

#[tokio::test]
async fn a_key_set_that_cannot_be_read_stops_start_up_with_a_clear_message() {
    let db = gateway_testkit::fresh_database().await;
    let mut config = test_config(free_addr(), &db.url, Uuid::new_v4());
    config.oidc.issuer = Some(ISSUER.into());
    config.oidc.jwks_file = Some("/nonexistent/jwks.json".into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let err = control_plane::run(config, listener, Default::default())
        .await
        .expect_err("start-up must fail");
    assert!(err.to_string().contains("/nonexistent/jwks.json"), "{err}");
}
