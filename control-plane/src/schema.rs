//! Diesel table definitions matching `migrations/` (written by hand; keep in step with the SQL).

diesel::table! {
    config_revision (singleton) {
        singleton -> Bool,
        revision -> BigInt,
    }
}

diesel::table! {
    config_changes (id) {
        id -> BigInt,
        revision -> BigInt,
        resource_id -> Uuid,
        kind -> Text,
        committed_at -> Timestamptz,
        resource -> Text,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Uuid,
        organization_id -> Uuid,
        workspace_id -> Nullable<Uuid>,
        role -> Text,
        name -> Text,
        token_sha256 -> Binary,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Uuid,
        organization_id -> Uuid,
        workspace_id -> Uuid,
        app_id -> Uuid,
        name -> Text,
        description -> Text,
        provider -> Text,
        state -> Text,
        correlation_key_path -> Nullable<Text>,
        include_raw_body -> Bool,
        api_key_ciphertext -> Binary,
        api_key_sha256 -> Binary,
        previous_api_key_sha256 -> Nullable<Binary>,
        previous_api_key_not_after -> Nullable<Timestamptz>,
        secret_template_ciphertext -> Nullable<Binary>,
        secret_resolved_ciphertext -> Nullable<Binary>,
        secret_param_refs -> Array<Text>,
        previous_secret_resolved_ciphertext -> Nullable<Binary>,
        previous_secret_not_after -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        replay_window_seconds -> Integer,
        rate_limit_per_second -> Nullable<Double>,
        rate_limit_burst -> Nullable<Integer>,
    }
}

diesel::table! {
    config_params (organization_id, workspace_id, app_id, name) {
        organization_id -> Uuid,
        workspace_id -> Uuid,
        app_id -> Uuid,
        name -> Text,
        kind -> Text,
        value_text -> Nullable<Text>,
        value_ciphertext -> Nullable<Binary>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    trigger_bindings (id) {
        id -> BigInt,
        webhook_id -> Uuid,
        organization_id -> Uuid,
        workspace_id -> Uuid,
        app_id -> Uuid,
        process_definition_id -> Text,
        node_id -> Text,
        node_kind -> Text,
        trigger_type -> Text,
        process_correlation_key -> Nullable<Text>,
        process_key -> Nullable<Text>,
        project_id -> Text,
        branch -> Text,
        process_version -> Text,
        committed_at -> Timestamptz,
    }
}

diesel::joinable!(trigger_bindings -> webhooks (webhook_id));
diesel::allow_tables_to_appear_in_same_query!(webhooks, trigger_bindings);

diesel::table! {
    failed_triggers (id) {
        id -> Uuid,
        organization_id -> Uuid,
        workspace_id -> Uuid,
        app_id -> Uuid,
        webhook_id -> Uuid,
        provider -> Text,
        received_at -> Timestamptz,
        reported_at -> Timestamptz,
        reason_code -> Text,
        detail -> Text,
        http_status -> Integer,
        request_id -> Text,
        data_plane_id -> Text,
        method -> Text,
        headers -> Jsonb,
        payload -> Binary,
        payload_size -> BigInt,
        payload_truncated -> Bool,
        replayable -> Bool,
        replayed_at -> Nullable<Timestamptz>,
        replay_event_id -> Nullable<Uuid>,
        replay_count -> Integer,
        suppressed_count -> BigInt,
    }
}

diesel::joinable!(failed_triggers -> webhooks (webhook_id));
diesel::allow_tables_to_appear_in_same_query!(webhooks, failed_triggers);

diesel::table! {
    actions (id) {
        id -> Uuid,
        organization_id -> Uuid,
        workspace_id -> Uuid,
        app_id -> Uuid,
        name -> Text,
        description -> Text,
        webhook_url -> Text,
        json_schema -> Jsonb,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        validated_at -> Timestamptz,
    }
}

diesel::table! {
    hmac_keys (id) {
        id -> Uuid,
        organization_id -> Uuid,
        workspace_id -> Uuid,
        app_id -> Uuid,
        label -> Text,
        value_ciphertext -> Binary,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    data_plane_presence (session_id) {
        session_id -> Uuid,
        replica_id -> Uuid,
        organization_id -> Uuid,
        workspace_id -> Nullable<Uuid>,
        data_plane_id -> Text,
        refreshed_at -> Timestamptz,
    }
}
