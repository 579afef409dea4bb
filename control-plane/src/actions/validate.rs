//! Checks of action input (docs/actions.md, "Registering actions"): name, description, URL, the
//! parameter schema, and the signed test request an action's URL must answer before it is saved.

use std::time::Duration;

use http::{HeaderName, HeaderValue};
use serde_json::{json, Map, Number, Value};
use uuid::Uuid;

use gateway_outbound::{ActionClient, Answer, CallError, DestinationError, DestinationPolicy};
use gateway_shared::action_signing::{sign_call, KEY_ID_HEADER};
use gateway_shared::Secret;

use crate::error::{ApiError, ApiResult};
use crate::reasons;

/// How long the action server has to answer the test request.
const TEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest accepted URL.
const MAX_URL: usize = 2048;

/// 1-100 characters of `a-z`, `0-9` and `_`.
pub(super) fn name(name: &str) -> ApiResult<()> {
    let ok = (1..=100).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            reasons::ACTION_INVALID,
            "name",
            "`name` must be 1-100 characters of a-z, 0-9 and _",
        ))
    }
}

/// 1-500 characters.
pub(super) fn description(text: &str) -> ApiResult<()> {
    if (1..=500).contains(&text.chars().count()) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            reasons::ACTION_INVALID,
            "description",
            "`description` must be 1-500 characters",
        ))
    }
}

/// The URL's form and, for an address literal, its address (host names are checked after DNS by the
/// test request itself).
pub(super) fn url(policy: &DestinationPolicy, url: &str) -> ApiResult<()> {
    if url.is_empty() || url.len() > MAX_URL {
        return Err(ApiError::invalid(
            reasons::ACTION_INVALID,
            "webhook_url",
            format!("`webhook_url` must be 1-{MAX_URL} characters"),
        ));
    }
    policy.check_url(url).map(|_| ()).map_err(destination)
}

/// A refused destination: ACTION_INVALID for a URL that does not parse, ACTION_URL_FORBIDDEN for a
/// scheme, credentials or address the deployment does not allow.
fn destination(err: DestinationError) -> ApiError {
    let reason = match err {
        DestinationError::Invalid(_) => reasons::ACTION_INVALID,
        DestinationError::Unresolvable(_) => reasons::ACTION_VALIDATION_FAILED,
        _ => reasons::ACTION_URL_FORBIDDEN,
    };
    if reason == reasons::ACTION_VALIDATION_FAILED {
        return ApiError::precondition(reason, err.to_string());
    }
    ApiError::invalid(reason, "webhook_url", err.to_string())
}

/// The request's schema as JSON (absent = `{}`), checked against its draft's meta-schema.
pub(super) fn schema(schema: Option<&prost_types::Struct>) -> ApiResult<Value> {
    let value = schema.map_or_else(|| Value::Object(Map::new()), struct_to_json);
    jsonschema::meta::validate(&value).map_err(|e| {
        ApiError::invalid(
            reasons::INVALID_JSON_SCHEMA,
            "json_schema",
            format!("`json_schema` is not a valid JSON Schema: {e}"),
        )
    })?;
    Ok(value)
}

/// POSTs the signed test request to `url` and requires a 2xx answer without an `error`.
pub(super) async fn test_request(
    client: &ActionClient,
    url: &str,
    action_name: &str,
    key_id: Uuid,
    key: &Secret<String>,
) -> ApiResult<()> {
    let call = sign_call(
        key.expose().as_bytes(),
        action_name,
        &json!({}),
        chrono::Utc::now().timestamp(),
        true,
    );
    let header = HeaderName::from_bytes(KEY_ID_HEADER.as_bytes())
        .map_err(|e| ApiError::internal("key id header", e))?;
    let value = HeaderValue::from_str(&key_id.to_string())
        .map_err(|e| ApiError::internal("key id header", e))?;
    let failed =
        |message: String| ApiError::precondition(reasons::ACTION_VALIDATION_FAILED, message);
    let response = match client
        .post_json(url, call.body, &[(header, value)], TEST_TIMEOUT)
        .await
    {
        Ok(r) => r,
        Err(CallError::Destination(d)) => return Err(destination(d)),
        Err(e) => return Err(failed(e.to_string())),
    };
    if !response.status.is_success() {
        return Err(failed(format!(
            "webhook endpoint returned status {}",
            response.status.as_u16()
        )));
    }
    match Answer::parse(&response.body).error {
        Some(error) => Err(failed(format!("error: {error}"))),
        None => Ok(()),
    }
}

/// A protobuf `Struct` as a JSON object (whole numbers become integers, as schemas expect).
pub(super) fn struct_to_json(s: &prost_types::Struct) -> Value {
    Value::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), value_to_json(v)))
            .collect(),
    )
}

fn value_to_json(v: &prost_types::Value) -> Value {
    use prost_types::value::Kind;
    match &v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::NumberValue(n)) => {
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                #[allow(clippy::cast_possible_truncation)]
                Value::from(*n as i64)
            } else {
                Number::from_f64(*n).map_or(Value::Null, Value::Number)
            }
        }
        Some(Kind::StructValue(s)) => struct_to_json(s),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(value_to_json).collect()),
    }
}

/// A stored JSON object as a protobuf `Struct` (anything else is an empty one).
pub(super) fn json_to_struct(v: &Value) -> prost_types::Struct {
    match v {
        Value::Object(m) => prost_types::Struct {
            fields: m
                .iter()
                .map(|(k, v)| (k.clone(), json_to_value(v)))
                .collect(),
        },
        _ => prost_types::Struct::default(),
    }
}

fn json_to_value(v: &Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.iter().map(json_to_value).collect(),
        }),
        Value::Object(_) => Kind::StructValue(json_to_struct(v)),
    };
    prost_types::Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        assert!(name("send_email_2").is_ok());
        for bad in ["", "Send", "a-b", &"a".repeat(101)] {
            assert!(name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn schemas_are_checked_against_the_meta_schema() {
        let ok = json_to_struct(
            &json!({"type":"object","properties":{"to":{"type":"string","minLength":1}}}),
        );
        assert!(schema(Some(&ok)).is_ok());
        let bad = json_to_struct(&json!({"type":"nope"}));
        assert!(schema(Some(&bad)).is_err());
        assert_eq!(schema(None).ok(), Some(json!({})));
    }
}
