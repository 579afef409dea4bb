//! The result record published for every answerable invocation (docs/dispatcher.md, "Results").

use serde::Serialize;
use serde_json::Value;

/// How an invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// The action answered 2xx without an `error`.
    Succeeded,
    /// The call failed (after the retries that apply) or could not be made.
    Failed,
    /// `parameters` do not match the action's schema; no call was made.
    InvalidParameters,
    /// The app has no action of that name; no call was made.
    UnknownAction,
    /// The action's circuit breaker is open; no (further) call was made.
    CircuitOpen,
}

impl Status {
    /// The status as written in the record and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::InvalidParameters => "INVALID_PARAMETERS",
            Self::UnknownAction => "UNKNOWN_ACTION",
            Self::CircuitOpen => "CIRCUIT_OPEN",
        }
    }
}

/// What the dispatcher learnt, before the record's ids and duration are added.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// How it ended.
    pub status: Status,
    /// The answer's `result` (2xx answers).
    pub result: Option<Value>,
    /// Why it did not succeed (never a secret).
    pub error: Option<String>,
    /// The HTTP status of the last answer, when there was one.
    pub http_status: Option<u16>,
    /// Calls made.
    pub attempts: u32,
}

impl Outcome {
    /// An outcome without a call.
    pub fn without_call(status: Status, error: impl Into<String>) -> Self {
        Self {
            status,
            result: None,
            error: Some(error.into()),
            http_status: None,
            attempts: 0,
        }
    }
}

/// The value of a result record.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultRecord<'a> {
    /// The invocation's `requestId`.
    pub request_id: &'a str,
    /// The invocation's `actionName`.
    pub action_name: &'a str,
    /// How it ended.
    pub status: Status,
    /// The answer's `result`, or null.
    pub result: Option<&'a Value>,
    /// Why it did not succeed, or null.
    pub error: Option<&'a str>,
    /// The HTTP status of the last answer, or null.
    pub http_status: Option<u16>,
    /// Calls made.
    pub attempts: u32,
    /// From reading the invocation to having its result, in milliseconds.
    pub duration_ms: u64,
}

impl<'a> ResultRecord<'a> {
    /// The record for `outcome`.
    pub fn new(
        request_id: &'a str,
        action_name: &'a str,
        outcome: &'a Outcome,
        duration_ms: u64,
    ) -> Self {
        Self {
            request_id,
            action_name,
            status: outcome.status,
            result: outcome.result.as_ref(),
            error: outcome.error.as_deref(),
            http_status: outcome.http_status,
            attempts: outcome.attempts,
            duration_ms,
        }
    }

    /// The record as JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Plain fields and an already parsed JSON value always serialize.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_field_is_written_with_nulls_for_what_is_absent() {
        let outcome = Outcome {
            status: Status::Succeeded,
            result: Some(json!("sent")),
            error: None,
            http_status: Some(200),
            attempts: 2,
        };
        let bytes = ResultRecord::new("r-1", "send_email", &outcome, 17).to_bytes();
        let v: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(
            v,
            json!({"requestId":"r-1","actionName":"send_email","status":"SUCCEEDED","result":"sent",
                   "error":null,"httpStatus":200,"attempts":2,"durationMs":17})
        );
        let unknown = Outcome::without_call(Status::UnknownAction, "no action x");
        let v: Value = serde_json::from_slice(&ResultRecord::new("r", "x", &unknown, 0).to_bytes())
            .expect("json");
        assert_eq!(v["status"], "UNKNOWN_ACTION");
        assert_eq!(v["httpStatus"], Value::Null);
        assert_eq!(v["attempts"], 0);
    }
}
