//! An invocation record as read from the invocation topic (docs/dispatcher.md, "Invocations"):
//! value `{"requestId","actionName","parameters"}`, the tenancy in `Fx-*` headers.

use gateway_shared::{AppId, OrganizationId, WorkspaceId};
use serde_json::{Map, Value};

/// Header naming the organization.
pub const ORGANIZATION_HEADER: &str = "Fx-Organization-Id";
/// Header naming the workspace.
pub const WORKSPACE_HEADER: &str = "Fx-Workspace-Id";
/// Header naming the app.
pub const APP_HEADER: &str = "Fx-App-Id";

/// Longest accepted `requestId` (it becomes the `Idempotency-Key` header).
pub const MAX_REQUEST_ID_LEN: usize = 200;

/// The app an invocation runs for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tenancy {
    /// `Fx-Organization-Id`.
    pub organization_id: OrganizationId,
    /// `Fx-Workspace-Id`.
    pub workspace_id: WorkspaceId,
    /// `Fx-App-Id`.
    pub app_id: AppId,
}

/// A well-formed invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// The caller's id; the call's `Idempotency-Key`.
    pub request_id: String,
    /// The action's name (unique per app).
    pub action_name: String,
    /// The call's parameters (an object; absent = `{}`).
    pub parameters: Value,
    /// Whose action it is.
    pub tenancy: Tenancy,
}

/// Why a record is not an invocation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Malformed {
    /// No usable `requestId`: nobody could match a result to it, so it is skipped (and counted).
    #[error("{0}")]
    Unanswerable(&'static str),
    /// Answerable, but not runnable: a FAILED result says why.
    #[error("{error}")]
    Invalid {
        /// The record's `requestId`.
        request_id: String,
        /// Its `actionName` when it has one.
        action_name: String,
        /// What is wrong.
        error: String,
    },
}

impl Malformed {
    /// The metric label of a skipped record.
    pub fn skip_reason(&self) -> &'static str {
        match self {
            Self::Unanswerable(reason) => reason,
            Self::Invalid { .. } => "invalid",
        }
    }
}

/// Reads a record: its value and a lookup of its headers by name (case-insensitive).
pub fn parse<'a>(
    value: Option<&[u8]>,
    header: impl Fn(&str) -> Option<&'a [u8]>,
) -> Result<Invocation, Malformed> {
    let Some(value) = value else {
        return Err(Malformed::Unanswerable("no_value"));
    };
    let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(value) else {
        return Err(Malformed::Unanswerable("not_json_object"));
    };
    let request_id = match object.remove("requestId") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_REQUEST_ID_LEN => s,
        _ => return Err(Malformed::Unanswerable("no_request_id")),
    };
    // The id is sent as a header: only visible ASCII can be.
    if !request_id.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(Malformed::Unanswerable("no_request_id"));
    }
    let invalid = |action_name: &str, error: String| Malformed::Invalid {
        request_id: request_id.clone(),
        action_name: action_name.to_owned(),
        error,
    };
    let action_name = match object.remove("actionName") {
        Some(Value::String(s)) if !s.is_empty() => s,
        _ => return Err(invalid("", "actionName is missing or not a string".into())),
    };
    let parameters = match object.remove("parameters") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(p @ Value::Object(_)) => p,
        Some(_) => {
            return Err(invalid(
                &action_name,
                "parameters must be a JSON object".into(),
            ))
        }
    };
    let id = |name: &'static str| -> Result<uuid::Uuid, Malformed> {
        header(name)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| uuid::Uuid::parse_str(v.trim()).ok())
            .ok_or_else(|| {
                invalid(
                    &action_name,
                    format!("header {name} is missing or not a UUID"),
                )
            })
    };
    let tenancy = Tenancy {
        organization_id: id(ORGANIZATION_HEADER)?.into(),
        workspace_id: id(WORKSPACE_HEADER)?.into(),
        app_id: id(APP_HEADER)?.into(),
    };
    Ok(Invocation {
        request_id,
        action_name,
        parameters,
        tenancy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ORG: &str = "0b3c5d1e-7f6a-4b2c-9d8e-1f0a2b3c4d5e";
    const WS: &str = "1c4d6e2f-8a7b-4c3d-8e9f-2a1b3c4d5e6f";
    const APP: &str = "2d5e7f3a-9b8c-4d4e-9f0a-3b2c4d5e6f70";

    fn headers(name: &str) -> Option<&'static [u8]> {
        match name {
            ORGANIZATION_HEADER => Some(ORG.as_bytes()),
            WORKSPACE_HEADER => Some(WS.as_bytes()),
            APP_HEADER => Some(APP.as_bytes()),
            _ => None,
        }
    }

    fn parse_json(v: Value) -> Result<Invocation, Malformed> {
        parse(Some(v.to_string().as_bytes()), headers)
    }

    #[test]
    fn reads_a_well_formed_invocation() {
        let inv = parse_json(
            json!({"requestId":"r-1","actionName":"send_email","parameters":{"to":"a@b.c"}}),
        )
        .expect("valid");
        assert_eq!(inv.request_id, "r-1");
        assert_eq!(inv.action_name, "send_email");
        assert_eq!(inv.parameters, json!({"to":"a@b.c"}));
        assert_eq!(inv.tenancy.app_id.to_string(), APP);
        let no_params = parse_json(json!({"requestId":"r-2","actionName":"x"})).expect("valid");
        assert_eq!(no_params.parameters, json!({}));
    }

    #[test]
    fn records_without_a_request_id_are_unanswerable() {
        assert_eq!(
            parse(None, headers),
            Err(Malformed::Unanswerable("no_value"))
        );
        assert_eq!(
            parse(Some(b"{nope"), headers),
            Err(Malformed::Unanswerable("not_json_object"))
        );
        assert_eq!(
            parse(Some(b"[1]"), headers),
            Err(Malformed::Unanswerable("not_json_object"))
        );
        for v in [
            json!({"actionName":"x"}),
            json!({"requestId":7}),
            json!({"requestId":""}),
            json!({"requestId":"a b"}),
            json!({"requestId": "r".repeat(MAX_REQUEST_ID_LEN + 1)}),
        ] {
            assert_eq!(parse_json(v), Err(Malformed::Unanswerable("no_request_id")));
        }
    }

    #[test]
    fn answerable_problems_name_the_field() {
        let err = parse_json(json!({"requestId":"r","actionName":"x","parameters":[1]}))
            .expect_err("bad");
        assert!(
            matches!(&err, Malformed::Invalid { request_id, error, .. } if request_id == "r" && error.contains("parameters"))
        );
        let err = parse_json(json!({"requestId":"r"})).expect_err("bad");
        assert!(err.to_string().contains("actionName"));
        let no_app = parse(Some(br#"{"requestId":"r","actionName":"x"}"#), |n| {
            (n != APP_HEADER).then(|| headers(n)).flatten()
        })
        .expect_err("bad");
        assert!(no_app.to_string().contains(APP_HEADER), "{no_app}");
    }
}
