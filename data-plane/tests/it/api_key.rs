//! The `flowxApiKey` parameter: matched only under its exact name, and never carried into the
//! record, whichever header repeats it in whatever spelling (docs/data-plane.md, "Kafka record").

use std::time::Duration;

use gateway_shared::Provider;

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn the_api_key_never_reaches_the_record_in_any_header() {
    let gw = Gateway::on_shared_broker(&[]).await;
    let hook = Hook::new(Provider::Generic);
    gw.load(&[&hook]);
    let key = hook.api_key.clone();
    let encoded_key: String = key.bytes().map(|b| format!("%{b:02X}")).collect();
    let headers = [
        (
            "Referer",
            format!("https://sender.example/p?flowxApiKey={key}"),
        ),
        ("X-Original-URI", format!("/p?a=1&FLOWXAPIKEY={key}&b=2")),
        ("X-Encoded-Name", format!("/p?flowx%41piKey={key}")),
        ("X-Encoded-Equals", format!("flowxApiKey%3D{key}")),
        ("X-Double-Encoded", format!("/p?flowx%2541piKey%253D{key}")),
        ("X-Encoded-Value", format!("/p?flowxApiKey={encoded_key}")),
        ("X-Plain", "nothing to hide".to_owned()),
    ];
    let mut req = reqwest::Client::new()
        .post(gw.url(&hook))
        .header("content-type", "application/json")
        .body(r#"{"a":1}"#);
    for (name, value) in &headers {
        req = req.header(*name, value);
    }
    let resp = req.send().await.expect("request");
    assert_eq!(resp.status(), 200);

    let records =
        gateway_testkit::consume(&gw.bootstrap, &gw.topic, 1, Duration::from_secs(30)).await;
    use rdkafka::Message as _;
    let value = String::from_utf8_lossy(records[0].payload().expect("value")).into_owned();
    assert!(!value.contains(&key), "the key is in the record: {value}");
    assert!(
        !value.contains(&encoded_key),
        "the encoded key is in the record: {value}"
    );
    let env = envelope(&records[0]);
    let carried = &env["webhookMessage"]["headers"];
    assert_eq!(
        carried["Referer"][0], "https://sender.example/p?flowxApiKey=[masked]",
        "{carried}"
    );
    assert_eq!(
        carried["X-Original-Uri"][0],
        "/p?a=1&FLOWXAPIKEY=[masked]&b=2"
    );
    assert_eq!(
        carried["X-Plain"][0], "nothing to hide",
        "other headers untouched"
    );
    for name in [
        "X-Encoded-Name",
        "X-Encoded-Equals",
        "X-Double-Encoded",
        "X-Encoded-Value",
    ] {
        assert!(
            carried[name][0].is_string(),
            "{name} is still carried: {carried}"
        );
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_key_parameter_is_matched_only_under_its_exact_name() {
    let gw = Gateway::on_shared_broker(&[]).await;
    let hook = Hook::new(Provider::Generic);
    gw.load(&[&hook]);
    let base = gw.url_without_key(&hook);
    let client = reqwest::Client::new();
    for query in [
        format!("flowx%41piKey={}", hook.api_key),
        format!("flowxapikey={}", hook.api_key),
        format!("FLOWXAPIKEY={}", hook.api_key),
        format!("flowxApiKey%3D{}", hook.api_key),
    ] {
        let resp = client
            .post(format!("{base}?{query}"))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .expect("request");
        assert_error(resp, 401, "API_KEY_MISSING").await;
    }
    // The exact name, with a percent-encoded value, is the key.
    let encoded: String = hook.api_key.bytes().map(|b| format!("%{b:02X}")).collect();
    let resp = client
        .post(format!("{base}?x=1&flowxApiKey={encoded}"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    gw.stop().await;
}
