//! Validation of CommitTriggerBindings: the trigger type comes from the node kind, RESUME bindings
//! need their correlation fields (docs/control-plane.md, "Rules").

use gateway_proto::v1 as pb;
use gateway_shared::TriggerType;

use super::store::{Commit, NewBinding, CATCH_NODE, START_NODE};
use crate::error::{ApiError, ApiResult};
use crate::reasons;
use crate::scope::parse_uuid;

const MAX_TEXT: usize = 200;

/// The node kind's stored name and the trigger type it implies.
fn derive_trigger(kind: i32) -> ApiResult<(&'static str, TriggerType)> {
    match pb::NodeKind::try_from(kind) {
        Ok(pb::NodeKind::MessageStartEvent) => Ok((START_NODE, TriggerType::StartProcess)),
        Ok(pb::NodeKind::MessageCatchIntermediateEvent) => {
            Ok((CATCH_NODE, TriggerType::ResumeProcess))
        }
        _ => Err(ApiError::invalid(
            reasons::BINDING_INVALID,
            "bindings.node_kind",
            "node_kind must be MESSAGE_START_EVENT or MESSAGE_CATCH_INTERMEDIATE_EVENT",
        )),
    }
}

/// A text field: trimmed, at most [`MAX_TEXT`] characters without control characters; empty is
/// `None`, or BINDING_INVALID when `required`.
fn text(value: &str, field: &'static str, required: bool) -> ApiResult<Option<String>> {
    let v = value.trim();
    if v.is_empty() {
        return if required {
            Err(ApiError::invalid(
                reasons::BINDING_INVALID,
                field,
                format!("`{field}` is required"),
            ))
        } else {
            Ok(None)
        };
    }
    if v.chars().count() > MAX_TEXT || v.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            reasons::BINDING_INVALID,
            field,
            format!("`{field}` must be at most {MAX_TEXT} characters"),
        ));
    }
    Ok(Some(v.to_owned()))
}

/// The commit's fields, checked.
pub(crate) fn commit(req: &pb::CommitTriggerBindingsRequest) -> ApiResult<Commit> {
    Ok(Commit {
        process_definition_id: text(&req.process_definition_id, "process_definition_id", true)?
            .unwrap_or_default(),
        project_id: text(&req.project_id, "project_id", true)?.unwrap_or_default(),
        branch: text(&req.branch, "branch", true)?.unwrap_or_default(),
        process_version: text(&req.process_version, "process_version", false)?.unwrap_or_default(),
    })
}

/// One binding, checked.
pub(crate) fn binding(b: &pb::BindingInput) -> ApiResult<NewBinding> {
    let (node_kind, trigger_type) = derive_trigger(b.node_kind)?;
    let node_id = text(&b.node_id, "bindings.node_id", true)?.unwrap_or_default();
    let webhook_id = parse_uuid(&b.webhook_id, "bindings.webhook_id")?;
    let (correlation_key, process_key) = match trigger_type {
        TriggerType::StartProcess => (None, None),
        TriggerType::ResumeProcess => {
            let ck = text(
                &b.process_correlation_key,
                "bindings.process_correlation_key",
                false,
            )?;
            let pk = text(&b.process_key, "bindings.process_key", false)?;
            if ck.is_none() || pk.is_none() {
                return Err(ApiError::invalid(
                    reasons::BINDING_RESUME_FIELDS_REQUIRED,
                    "bindings",
                    format!("node `{node_id}` is a message catch intermediate event: it needs process_correlation_key and process_key"),
                ));
            }
            (ck, pk)
        }
    };
    Ok(NewBinding {
        webhook_id,
        node_id,
        node_kind,
        trigger_type,
        correlation_key,
        process_key,
    })
}
