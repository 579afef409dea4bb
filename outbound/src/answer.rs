//! An action server's answer body: `{"result": …, "error": "…"}` (docs/actions.md, "Answers").

use serde_json::Value;

/// What an answer says. A body that is not a JSON object has neither member.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    /// `result`, any JSON value, when present and not null.
    pub result: Option<Value>,
    /// `error` when it is a non-empty string (an empty string means no error).
    pub error: Option<String>,
}

impl Answer {
    /// Reads an answer body; never fails (a non-JSON body is an answer without result or error).
    pub fn parse(body: &[u8]) -> Self {
        let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(body) else {
            return Self::default();
        };
        let error = match object.remove("error") {
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            Some(Value::Null) | Some(Value::String(_)) | None => None,
            Some(other) => Some(other.to_string()),
        };
        let result = object.remove("result").filter(|v| !v.is_null());
        Self { result, error }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_result_and_error() {
        assert_eq!(
            Answer::parse(br#"{"result":"sent","error":""}"#),
            Answer {
                result: Some(json!("sent")),
                error: None
            }
        );
        assert_eq!(
            Answer::parse(br#"{"result":null,"error":"nope"}"#),
            Answer {
                result: None,
                error: Some("nope".into())
            }
        );
        assert_eq!(
            Answer::parse(br#"{"error":{"code":7}}"#).error.as_deref(),
            Some(r#"{"code":7}"#)
        );
        assert_eq!(Answer::parse(b"OK"), Answer::default());
        assert_eq!(Answer::parse(b"[1]"), Answer::default());
    }
}
