//! Parsing and validation of the settings.

use super::*;

#[test]
fn defaults_are_valid_and_documented_values() {
    let c = Config::from_args(Vec::<String>::new()).expect("defaults parse");
    assert_eq!(c.produce_timeout, Duration::from_secs(5));
    assert_eq!(c.max_body_bytes, 1_048_576);
    assert_eq!(c.kafka_topic, "webhook-gateway.events");
    assert!(c.validate().is_ok());
}

#[test]
fn reports_every_problem_at_once() {
    let c = Config::from_args([
        "--produce-timeout",
        "0s",
        "--max-body-bytes",
        "0",
        "--kafka-property",
        "acks=1",
    ])
    .expect("parses");
    let problems = c.validate().expect_err("invalid");
    assert_eq!(problems.len(), 3, "{problems:?}");
}

#[test]
fn durations_take_units_and_the_old_names_still_work_with_a_warning() {
    let mut c = Config::from_args([
        "--retry-after",
        "7s",
        "--stream-heartbeat",
        "2s",
        "--failed-trigger-linger",
        "50ms",
    ])
    .expect("parses");
    assert!(c.apply_renamed().is_empty());
    assert_eq!(c.retry_after, Duration::from_secs(7));
    assert_eq!(c.stream.stream_heartbeat, Duration::from_secs(2));
    assert_eq!(c.stream.failed_trigger_linger, Duration::from_millis(50));

    let mut old = Config::from_args([
        "--retry-after-secs",
        "9",
        "--stream-heartbeat-ms",
        "2500",
        "--failed-trigger-linger-ms",
        "75",
    ])
    .expect("the old names parse");
    let warnings = old.apply_renamed();
    assert_eq!(old.retry_after, Duration::from_secs(9));
    assert_eq!(old.stream.stream_heartbeat, Duration::from_millis(2500));
    assert_eq!(old.stream.failed_trigger_linger, Duration::from_millis(75));
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    for (old_env, new_env) in [
        ("DP_RETRY_AFTER_SECS", "DP_RETRY_AFTER"),
        ("DP_STREAM_HEARTBEAT_MS", "DP_STREAM_HEARTBEAT"),
        ("DP_FAILED_TRIGGER_LINGER_MS", "DP_FAILED_TRIGGER_LINGER"),
    ] {
        assert!(
            warnings
                .iter()
                .any(|w| w.contains(old_env) && w.contains(new_env) && w.contains("deprecated")),
            "{old_env}: {warnings:?}"
        );
    }
    assert!(
        Config::from_args(["--retry-after-secs", "9", "--retry-after", "3s"]).is_err(),
        "an old and a new name for one setting are refused"
    );
    let half = Config::from_args(["--retry-after", "1500ms"]).expect("parses");
    assert_eq!(half.validate().expect_err("not whole seconds").len(), 1);
}

#[test]
fn plaintext_control_plane_urls_off_loopback_are_flagged() {
    let flagged = |url: &str| {
        Config::from_args(["--control-plane-url", url, "--control-plane-token", "t"])
            .expect("parses")
            .stream
            .plaintext_remote_control_plane()
    };
    for remote in [
        "http://cp.internal:50051",
        "http://10.0.0.7:50051/",
        "http://[2001:db8::1]:50051",
        "http://user@cp:1",
    ] {
        assert!(flagged(remote), "{remote}");
    }
    for safe in [
        "http://127.0.0.1:50051",
        "http://localhost:50051",
        "http://[::1]:50051",
        "http://127.8.9.10",
        "https://cp.internal:50051",
    ] {
        assert!(!flagged(safe), "{safe}");
    }
}
