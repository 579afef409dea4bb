//! The stable error reasons of the API: the `reason` of the `google.rpc.ErrorInfo` every error
//! carries (docs/control-plane.md, "Errors"). Clients match on them, so a reason never changes its
//! text; each constant's value is its own name.

/// Declares each reason as a constant whose value is its name, and `$list` with all of them.
macro_rules! reasons {
    ($list:ident; $($(#[$doc:meta])* $name:ident,)*) => {
        $($(#[$doc])* pub const $name: &str = stringify!($name);)*
        /// Every reason of this group.
        pub const $list: &[&str] = &[$($name),*];
    };
}

reasons! {
    IMPLEMENTED;
    /// No `authorization` metadata.
    AUTH_TOKEN_MISSING,
    /// A bad, expired or revoked JWT.
    AUTH_TOKEN_INVALID,
    /// ExchangeToken with an unknown or revoked API token.
    API_TOKEN_INVALID,
    /// A config stream ended because the API token its JWT was exchanged for was revoked.
    TOKEN_REVOKED,
    /// A config stream ended because its JWT expired.
    TOKEN_EXPIRED,
    /// The caller's role does not allow the call.
    ROLE_FORBIDDEN,
    /// The organization, workspace or app is outside the token's scope.
    SCOPE_FORBIDDEN,
    /// An id field is not a UUID.
    ID_INVALID,
    /// A request without its `app`.
    APP_REQUIRED,
    /// `page_size` above the maximum.
    PAGE_SIZE_INVALID,
    /// A `page_token` this server did not issue.
    PAGE_TOKEN_INVALID,
    /// A timestamp out of range.
    TIME_INVALID,
    /// A webhook name outside the naming rule.
    WEBHOOK_NAME_INVALID,
    /// A description too long or with control characters.
    WEBHOOK_DESCRIPTION_INVALID,
    /// A replay window longer than a day.
    WEBHOOK_REPLAY_WINDOW_INVALID,
    /// CreateWebhook without a provider.
    PROVIDER_REQUIRED,
    /// A correlation key path that does not parse.
    CORRELATION_PATH_INVALID,
    /// META without both verify token and app secret.
    WEBHOOK_META_SECRETS_REQUIRED,
    /// A provider that needs a signing secret got none.
    WEBHOOK_SECRET_REQUIRED,
    /// A provider secret of the wrong shape.
    WEBHOOK_SECRET_INVALID,
    /// A secret for a GENERIC webhook.
    WEBHOOK_PROVIDER_HAS_NO_SECRET,
    /// A malformed `${configParam.NAME}` placeholder.
    PLACEHOLDER_INVALID,
    /// A grace period above seven days.
    GRACE_PERIOD_INVALID,
    /// Malformed binding input.
    BINDING_INVALID,
    /// A RESUME binding without correlation key and process key.
    BINDING_RESUME_FIELDS_REQUIRED,
    /// A rate limit or burst out of range, or a burst without a rate.
    WEBHOOK_RATE_LIMIT_INVALID,
    /// A config param name outside the naming rule.
    CONFIG_PARAM_NAME_INVALID,
    /// SetConfigParam without VALUE or SECRET.
    CONFIG_PARAM_KIND_REQUIRED,
    /// A config param value too long.
    CONFIG_PARAM_VALUE_INVALID,
    /// An API token name outside the naming rule.
    API_TOKEN_NAME_INVALID,
    /// CreateApiToken without a role.
    ROLE_REQUIRED,
    /// The webhook does not exist in the caller's scope.
    WEBHOOK_NOT_FOUND,
    /// The config param does not exist (NOT_FOUND), or a placeholder names one that does not
    /// (FAILED_PRECONDITION).
    CONFIG_PARAM_NOT_FOUND,
    /// The API token does not exist in the caller's scope.
    API_TOKEN_NOT_FOUND,
    /// The failed trigger does not exist in the caller's scope.
    FAILED_TRIGGER_NOT_FOUND,
    /// The webhook name is used in the app.
    WEBHOOK_NAME_TAKEN,
    /// An update tries to change the provider.
    WEBHOOK_PROVIDER_IMMUTABLE,
    /// Delete of an ACTIVE webhook.
    TRIGGER_ACTIVE,
    /// Activation without bindings.
    TRIGGER_NOT_BOUND,
    /// Delete of a config param a secret references.
    CONFIG_PARAM_IN_USE,
    /// A provider secret references a VALUE param (or a referenced param would become one).
    CONFIG_PARAM_NOT_SECRET,
    /// A RESUME binding (or clearing the path) without a correlation key path.
    WEBHOOK_CORRELATION_PATH_REQUIRED,
    /// A replay on a control plane without Kafka.
    REPLAY_NOT_CONFIGURED,
    /// A replay of a failed trigger whose payload was not kept whole.
    FAILED_TRIGGER_NOT_REPLAYABLE,
    /// Replay of a request refused before its API key and signature were verified (never replayable).
    FAILED_TRIGGER_UNVERIFIED,
    /// A second replay without `force`.
    FAILED_TRIGGER_ALREADY_REPLAYED,
    /// A replay into a webhook that is not ACTIVE.
    TRIGGER_NOT_ACTIVE,
    /// The replayed payload is not JSON.
    INVALID_JSON,
    /// The replayed payload has no value at the correlation key path.
    CORRELATION_KEY_UNRESOLVED,
    /// The broker did not acknowledge a replay in time.
    BROKER_UNAVAILABLE,
    /// Postgres unreachable or the pool exhausted.
    DATABASE_UNAVAILABLE,
    /// Anything else (logged).
    INTERNAL,
    /// An action name used in the app.
    ACTION_NAME_TAKEN,
    /// The action does not exist in the caller's scope.
    ACTION_NOT_FOUND,
    /// The signed test request to the action's URL failed.
    ACTION_VALIDATION_FAILED,
    /// The action's URL is not allowed (scheme or address).
    ACTION_URL_FORBIDDEN,
    /// A bad action name, description or URL.
    ACTION_INVALID,
    /// No active HMAC key in the app.
    HMAC_KEY_MISSING,
    /// The HMAC key does not exist in the caller's scope.
    HMAC_KEY_NOT_FOUND,
    /// A schema that is not a valid JSON Schema.
    INVALID_JSON_SCHEMA,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The reasons the Errors table of docs/control-plane.md lists (backticked, second column).
    fn documented() -> BTreeSet<String> {
        let docs = include_str!("../../docs/control-plane.md");
        let table = docs
            .split("## Errors")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .expect("docs/control-plane.md has an Errors section");
        table
            .lines()
            .filter_map(|l| l.strip_prefix('|'))
            .filter_map(|l| l.split('|').nth(1))
            .flat_map(|cell| cell.split('`').skip(1).step_by(2).map(str::to_owned))
            .collect()
    }

    #[test]
    fn the_docs_table_lists_exactly_the_served_reasons() {
        let served: BTreeSet<String> = IMPLEMENTED.iter().map(|r| (*r).to_owned()).collect();
        assert_eq!(
            served.len(),
            IMPLEMENTED.len(),
            "a reason is declared twice"
        );
        assert_eq!(documented(), served);
    }
}
