//! TriggerService rules and the config revision / change log every change writes.

use diesel::sql_types::{BigInt, Text, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use gateway_proto::v1 as pb;
use tonic::Code;
use uuid::Uuid;

use crate::support::{app, assert_err, clients, Clients, TestControlPlane, BOOTSTRAP_TOKEN};
use crate::webhooks::create;

/// Commits one START binding of `webhook_id` in process `process`.
pub async fn bind_start(c: &Clients, a: &pb::AppRef, process: &str, webhook_id: &str) {
    c.triggers
        .clone()
        .commit_trigger_bindings(pb::CommitTriggerBindingsRequest {
            app: Some(a.clone()),
            process_definition_id: process.into(),
            project_id: "proj".into(),
            branch: "main".into(),
            process_version: "v1".into(),
            bindings: vec![pb::BindingInput {
                node_id: "start".into(),
                node_kind: pb::NodeKind::MessageStartEvent as i32,
                webhook_id: webhook_id.into(),
                ..Default::default()
            }],
        })
        .await
        .expect("bindings committed");
}

/// Commits one START binding of `webhook_id` in process `process` and activates the trigger.
pub async fn bind_and_activate(c: &Clients, a: &pb::AppRef, process: &str, webhook_id: &str) {
    bind_start(c, a, process, webhook_id).await;
    c.triggers
        .clone()
        .activate_trigger(pb::ActivateTriggerRequest {
            webhook_id: webhook_id.into(),
        })
        .await
        .expect("activated");
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Change {
    #[diesel(sql_type = BigInt)]
    revision: i64,
    #[diesel(sql_type = SqlUuid)]
    webhook_id: Uuid,
    #[diesel(sql_type = Text)]
    kind: String,
}

async fn changes(url: &str) -> (i64, Vec<Change>) {
    #[derive(QueryableByName)]
    struct Rev {
        #[diesel(sql_type = BigInt)]
        revision: i64,
    }
    let mut conn = AsyncPgConnection::establish(url).await.expect("connect");
    let rev: Vec<Rev> = diesel::sql_query("SELECT revision FROM config_revision")
        .load(&mut conn)
        .await
        .expect("revision");
    let rows = diesel::sql_query(
        "SELECT revision, resource_id AS webhook_id, kind FROM config_changes ORDER BY id",
    )
    .load(&mut conn)
    .await
    .expect("changes");
    (rev[0].revision, rows)
}

#[tokio::test(flavor = "multi_thread")]
async fn triggers_appear_once_bound_and_types_derive_from_node_kind() {
    let cp = TestControlPlane::start().await;
    let c = clients(&cp.channel().await, BOOTSTRAP_TOKEN).await;
    let a = app(cp.org);
    let wh = create(&c, &a, "orders", pb::Provider::Generic).await;
    let list = |c: &Clients| {
        let mut t = c.triggers.clone();
        let a = a.clone();
        async move {
            t.list_triggers(pb::ListTriggersRequest {
                app: Some(a),
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner()
            .triggers
        }
    };
    assert!(
        list(&c).await.is_empty(),
        "an unbound webhook is not in Manage Triggers"
    );
    assert_err(
        c.triggers
            .clone()
            .activate_trigger(pb::ActivateTriggerRequest {
                webhook_id: wh.id.clone(),
            })
            .await,
        Code::FailedPrecondition,
        "TRIGGER_NOT_BOUND",
    );

    // RESUME needs a correlation key and a process key, and a correlation path on the webhook.
    let resume = |ck: &str, pk: &str| pb::CommitTriggerBindingsRequest {
        app: Some(a.clone()),
        process_definition_id: "proc-b".into(),
        project_id: "proj".into(),
        branch: "main".into(),
        process_version: String::new(),
        bindings: vec![pb::BindingInput {
            node_id: "catch".into(),
            node_kind: pb::NodeKind::MessageCatchIntermediateEvent as i32,
            webhook_id: wh.id.clone(),
            process_correlation_key: ck.into(),
            process_key: pk.into(),
        }],
    };
    assert_err(
        c.triggers
            .clone()
            .commit_trigger_bindings(resume("applicationId", ""))
            .await,
        Code::InvalidArgument,
        "BINDING_RESUME_FIELDS_REQUIRED",
    );
    assert_err(
        c.triggers
            .clone()
            .commit_trigger_bindings(resume("", "scan"))
            .await,
        Code::InvalidArgument,
        "BINDING_RESUME_FIELDS_REQUIRED",
    );
    assert_err(
        c.triggers
            .clone()
            .commit_trigger_bindings(resume("applicationId", "scan"))
            .await,
        Code::FailedPrecondition,
        "WEBHOOK_CORRELATION_PATH_REQUIRED",
    );
    c.webhooks
        .clone()
        .update_webhook(pb::UpdateWebhookRequest {
            id: wh.id.clone(),
            correlation_key_path: Some("application.applicationId".into()),
            ..Default::default()
        })
        .await
        .expect("path set");

    // One webhook bound in two process definitions: a START in one, a RESUME in the other.
    bind_start(&c, &a, "proc-a", &wh.id).await;
    let committed = c
        .triggers
        .clone()
        .commit_trigger_bindings(resume("applicationId", "scan"))
        .await
        .expect("resume committed")
        .into_inner();
    assert_eq!(
        committed.bindings[0].trigger_type,
        pb::TriggerType::ResumeProcess as i32,
        "derived from the node kind"
    );
    let triggers = list(&c).await;
    assert_eq!(triggers.len(), 1);
    let t = &triggers[0];
    assert_eq!(
        (t.event_name.as_str(), t.state),
        ("orders", pb::TriggerState::Deactivated as i32)
    );
    assert_eq!(t.bindings.len(), 2);
    assert_eq!(
        t.trigger_types,
        vec![
            pb::TriggerType::ResumeProcess as i32,
            pb::TriggerType::StartProcess as i32
        ]
    );
    let start = t
        .bindings
        .iter()
        .find(|b| b.process_definition_id == "proc-a")
        .expect("proc-a binding");
    assert_eq!(
        (
            start.trigger_type,
            start.project_id.as_str(),
            start.branch.as_str()
        ),
        (pb::TriggerType::StartProcess as i32, "proj", "main")
    );

    // Clearing the path while a RESUME binding exists is refused.
    assert_err(
        c.webhooks
            .clone()
            .update_webhook(pb::UpdateWebhookRequest {
                id: wh.id.clone(),
                correlation_key_path: Some(String::new()),
                ..Default::default()
            })
            .await,
        Code::FailedPrecondition,
        "WEBHOOK_CORRELATION_PATH_REQUIRED",
    );

    // Activate / deactivate (idempotent), key kept.
    let key = c
        .webhooks
        .clone()
        .get_webhook_url(pb::GetWebhookUrlRequest {
            webhook_id: wh.id.clone(),
        })
        .await
        .expect("url")
        .into_inner()
        .api_key;
    let active = c
        .triggers
        .clone()
        .activate_trigger(pb::ActivateTriggerRequest {
            webhook_id: wh.id.clone(),
        })
        .await
        .expect("activated")
        .into_inner();
    assert_eq!(active.state, pb::TriggerState::Active as i32);
    c.triggers
        .clone()
        .activate_trigger(pb::ActivateTriggerRequest {
            webhook_id: wh.id.clone(),
        })
        .await
        .expect("idempotent");
    let off = c
        .triggers
        .clone()
        .deactivate_trigger(pb::DeactivateTriggerRequest {
            webhook_id: wh.id.clone(),
        })
        .await
        .expect("deactivated")
        .into_inner();
    assert_eq!(off.state, pb::TriggerState::Deactivated as i32);
    let key_after = c
        .webhooks
        .clone()
        .get_webhook_url(pb::GetWebhookUrlRequest {
            webhook_id: wh.id.clone(),
        })
        .await
        .expect("url")
        .into_inner()
        .api_key;
    assert_eq!(key, key_after, "deactivating keeps the key and URL");

    // Re-committing a process replaces its bindings; an empty commit removes them.
    let replaced = c
        .triggers
        .clone()
        .commit_trigger_bindings(pb::CommitTriggerBindingsRequest {
            app: Some(a.clone()),
            process_definition_id: "proc-b".into(),
            project_id: "proj".into(),
            branch: "release".into(),
            ..Default::default()
        })
        .await
        .expect("emptied")
        .into_inner();
    assert!(replaced.bindings.is_empty());
    let t = list(&c).await;
    assert_eq!(t[0].bindings.len(), 1);
    assert_eq!(t[0].bindings[0].process_definition_id, "proc-a");

    // Binding validation.
    assert_err(
        c.triggers
            .clone()
            .commit_trigger_bindings(pb::CommitTriggerBindingsRequest {
                app: Some(a.clone()),
                process_definition_id: "p".into(),
                project_id: "proj".into(),
                branch: "main".into(),
                bindings: vec![pb::BindingInput {
                    node_id: "n".into(),
                    node_kind: 0,
                    webhook_id: wh.id.clone(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "BINDING_INVALID",
    );
    assert_err(
        c.triggers
            .clone()
            .commit_trigger_bindings(pb::CommitTriggerBindingsRequest {
                app: Some(a.clone()),
                process_definition_id: "p".into(),
                project_id: "proj".into(),
                branch: "main".into(),
                bindings: vec![pb::BindingInput {
                    node_id: "n".into(),
                    node_kind: 1,
                    webhook_id: Uuid::new_v4().to_string(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .await,
        Code::NotFound,
        "WEBHOOK_NOT_FOUND",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_data_plane_change_bumps_the_revision_and_logs_the_webhook() {
    let cp = TestControlPlane::start().await;
    let c = clients(&cp.channel().await, BOOTSTRAP_TOKEN).await;
    let a = app(cp.org);
    let (r0, _) = changes(&cp.database_url).await;
    assert_eq!(r0, 0);
    let wh = create(&c, &a, "slacky", pb::Provider::Slack).await;
    let id: Uuid = wh.id.parse().expect("uuid");
    c.webhooks
        .clone()
        .set_provider_secret(pb::SetProviderSecretRequest {
            webhook_id: wh.id.clone(),
            signing_secret: "s".into(),
            ..Default::default()
        })
        .await
        .expect("secret");
    c.webhooks
        .clone()
        .reset_api_key(pb::ResetApiKeyRequest {
            webhook_id: wh.id.clone(),
            grace_period_seconds: 0,
        })
        .await
        .expect("reset");
    c.webhooks
        .clone()
        .update_webhook(pb::UpdateWebhookRequest {
            id: wh.id.clone(),
            description: Some("d".into()),
            ..Default::default()
        })
        .await
        .expect("update");
    bind_start(&c, &a, "p", &wh.id).await;
    c.triggers
        .clone()
        .activate_trigger(pb::ActivateTriggerRequest {
            webhook_id: wh.id.clone(),
        })
        .await
        .expect("on");
    c.triggers
        .clone()
        .activate_trigger(pb::ActivateTriggerRequest {
            webhook_id: wh.id.clone(),
        })
        .await
        .expect("no-op");
    c.triggers
        .clone()
        .deactivate_trigger(pb::DeactivateTriggerRequest {
            webhook_id: wh.id.clone(),
        })
        .await
        .expect("off");
    c.webhooks
        .clone()
        .delete_webhook(pb::DeleteWebhookRequest { id: wh.id.clone() })
        .await
        .expect("deleted");
    // A refused change writes nothing.
    let _ = c
        .webhooks
        .clone()
        .update_webhook(pb::UpdateWebhookRequest {
            id: wh.id.clone(),
            ..Default::default()
        })
        .await;

    let (rev, rows) = changes(&cp.database_url).await;
    let kinds: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(
        kinds,
        vec![
            "created",
            "secret_set",
            "api_key_reset",
            "updated",
            "bindings_committed",
            "activated",
            "deactivated",
            "deleted"
        ]
    );
    assert!(rows.iter().all(|r| r.webhook_id == id));
    let revisions: Vec<i64> = rows.iter().map(|r| r.revision).collect();
    assert_eq!(
        revisions,
        (1..=8).collect::<Vec<_>>(),
        "one revision per change, strictly increasing"
    );
    assert_eq!(rev, 8);
}
