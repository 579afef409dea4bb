//! `sslmode` in DATABASE_URL holds for every connection the control plane opens — pool, migrations,
//! LISTEN — against a real cluster that accepts only TLS over TCP, with a certificate made here.

use std::time::Duration;

use control_plane::db::{self, PgConnector};
use diesel::sql_types::Bool;
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tokio_stream::StreamExt;
use uuid::Uuid;

struct Pki {
    ca_pem: String,
    server_cert_pem: String,
    server_key_pem: String,
}

fn new_ca() -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "gateway test CA");
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-signed CA");
    (cert.pem(), Issuer::new(params, key))
}

fn pki() -> Pki {
    let (ca_pem, issuer) = new_ca();
    let params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("sans");
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &issuer).expect("server cert");
    Pki {
        ca_pem,
        server_cert_pem: cert.pem(),
        server_key_pem: key.serialize_pem(),
    }
}

fn write_temp(name: &str, text: &str) -> String {
    let path = std::env::temp_dir().join(format!("gw-pgtls-{}-{name}", Uuid::new_v4().simple()));
    std::fs::write(&path, text).expect("write pem");
    path.to_string_lossy().into_owned()
}

#[derive(QueryableByName)]
struct Ssl {
    #[diesel(sql_type = Bool)]
    ssl: bool,
}

async fn uses_tls(url: &str) -> Result<bool, String> {
    let pool = db::pool(url, 1).map_err(|e| e.to_string())?;
    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
    let row: Ssl = diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .get_result(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.ssl)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_connection_follows_sslmode_against_a_tls_only_cluster() {
    let pki = pki();
    let base = gateway_testkit::tls_postgres(&pki.server_cert_pem, &pki.server_key_pem);
    let ca = write_temp("ca.pem", &pki.ca_pem);
    let (other_ca_pem, _) = new_ca();
    let other_ca = write_temp("other-ca.pem", &other_ca_pem);

    // The cluster refuses plaintext, so a success below can only be a TLS connection.
    let plain = uses_tls(&format!("{base}?sslmode=disable")).await;
    assert!(
        plain.is_err(),
        "plaintext must be refused by this cluster: {plain:?}"
    );

    for mode in [
        "sslmode=require".to_owned(),
        "sslmode=prefer".to_owned(),
        format!("sslmode=verify-ca&sslrootcert={ca}"),
        format!("sslmode=verify-full&sslrootcert={ca}"),
    ] {
        assert_eq!(
            uses_tls(&format!("{base}?{mode}")).await,
            Ok(true),
            "{mode}"
        );
    }
    // verify-full checks the name: the certificate names localhost too.
    let by_name = base.replace("127.0.0.1", "localhost");
    assert_eq!(
        uses_tls(&format!("{by_name}?sslmode=verify-full&sslrootcert={ca}")).await,
        Ok(true)
    );

    // A name the certificate does not carry (reached through `hostaddr`): verify-full refuses it,
    // verify-ca only checks the chain and accepts it.
    let other_name = format!(
        "{}?hostaddr=127.0.0.1&sslrootcert={ca}",
        base.replace("127.0.0.1", "db.example.invalid")
    );
    let wrong = uses_tls(&format!("{other_name}&sslmode=verify-full")).await;
    let err = wrong.expect_err("verify-full with a name the certificate lacks");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    assert_eq!(
        uses_tls(&format!("{other_name}&sslmode=verify-ca")).await,
        Ok(true)
    );

    // A certificate from another CA is refused by the verifying modes, and by require+rootcert.
    for mode in [
        format!("sslmode=verify-full&sslrootcert={other_ca}"),
        format!("sslmode=verify-ca&sslrootcert={other_ca}"),
        format!("sslmode=require&sslrootcert={other_ca}"),
    ] {
        let r = uses_tls(&format!("{base}?{mode}")).await;
        let err = r.expect_err(&mode);
        assert!(err.to_lowercase().contains("certificate"), "{mode}: {err}");
    }

    // Migrations run over TLS.
    let verified = format!("{base}?sslmode=verify-full&sslrootcert={ca}");
    let applied = db::migrate(&verified).await.expect("migrations over TLS");
    assert!(!applied.is_empty());

    // LISTEN/NOTIFY over TLS through the same connector the config watcher uses.
    let connector = PgConnector::new(&verified).expect("connector");
    let (listener, mut connection) = connector.connect().await.expect("listen connection");
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    let (notified_tx, mut notified_rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        while let Some(Ok(m)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = m {
                let _ = notified_tx.send(n.payload().to_owned()).await;
            }
        }
    });
    listener
        .batch_execute("LISTEN tls_check")
        .await
        .expect("LISTEN");
    let (sender, connection) = connector.connect().await.expect("notify connection");
    tokio::spawn(connection);
    sender
        .batch_execute("NOTIFY tls_check, 'over-tls'")
        .await
        .expect("NOTIFY");
    let payload = tokio::time::timeout(Duration::from_secs(10), notified_rx.recv())
        .await
        .expect("notification within 10 s");
    assert_eq!(payload.as_deref(), Some("over-tls"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_control_plane_serves_over_a_verified_tls_database() {
    let pki = pki();
    let base = gateway_testkit::tls_postgres(&pki.server_cert_pem, &pki.server_key_pem);
    let ca = write_temp("ca.pem", &pki.ca_pem);
    let url = format!("{base}?sslmode=verify-full&sslrootcert={ca}");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let org = Uuid::new_v4();
    let config = crate::support::test_config(addr, &url, org);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(control_plane::run(config, listener, shutdown.clone()));
    let cp = crate::support::TestControlPlane {
        addr,
        database_url: url.clone(),
        shutdown,
        task,
        org,
    };
    let channel = cp.channel().await;
    let mut clients = crate::support::clients(&channel, crate::support::BOOTSTRAP_TOKEN).await;
    let app = crate::support::app(org);
    let created = clients
        .webhooks
        .create_webhook(gateway_proto::v1::CreateWebhookRequest {
            app: Some(app.clone()),
            name: "over-tls".into(),
            provider: gateway_proto::v1::Provider::Generic as i32,
            ..Default::default()
        })
        .await
        .expect("a write through the TLS pool")
        .into_inner();
    let listed = clients
        .webhooks
        .list_webhooks(gateway_proto::v1::ListWebhooksRequest {
            app: Some(app),
            ..Default::default()
        })
        .await
        .expect("a read through the TLS pool")
        .into_inner();
    assert_eq!(listed.webhooks.len(), 1);
    assert_eq!(listed.webhooks[0].id, created.id);
    cp.shutdown.cancel();
}
