//! Faults a test injects into a real Kafka client.

use std::ffi::CString;

use rdkafka::bindings::{rd_kafka_resp_err_t, rd_kafka_test_fatal_error};
use rdkafka::client::{Client, ClientContext};

/// Raises a fatal error in an idempotent producer through librdkafka's own test hook
/// (`rd_kafka_test_fatal_error`, as if the broker had answered `OUT_OF_ORDER_SEQUENCE_NUMBER`):
/// from then on the producer fails every record and must be replaced. rdkafka has no safe wrapper.
pub fn raise_fatal_error<C: ClientContext>(client: &Client<C>, reason: &str) {
    let reason = CString::new(reason).unwrap_or_default();
    // SAFETY: `client` borrows a live librdkafka handle for the duration of the call, and
    // `reason` is a NUL-terminated string librdkafka copies.
    #[allow(unsafe_code)]
    let err = unsafe {
        rd_kafka_test_fatal_error(
            client.native_ptr(),
            rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
            reason.as_ptr(),
        )
    };
    assert_eq!(
        err,
        rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR,
        "librdkafka refused to raise a fatal error (is the client an idempotent producer?)"
    );
}
