//! Validation of webhook fields.

use gateway_shared::CorrelationPath;

use crate::error::{ApiError, ApiResult};
use crate::reasons;

/// Checks a webhook name: 3-50 characters, each an ASCII letter, a digit or one of `[ ] ( ) . _ -`.
pub(crate) fn name(name: &str) -> ApiResult<()> {
    let len = name.chars().count();
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '[' | ']' | '(' | ')' | '.' | '_' | '-');
    if !(3..=50).contains(&len) || !name.chars().all(allowed) {
        return Err(ApiError::invalid(
            reasons::WEBHOOK_NAME_INVALID,
            "name",
            "name must be 3-50 characters of letters, digits and `[ ] ( ) . _ -`",
        ));
    }
    Ok(())
}

/// Longest replay window: a day.
pub(crate) const MAX_REPLAY_WINDOW_SECONDS: u32 = 86_400;

/// Checks a replay window (seconds, 0 = off): at most a day.
pub(crate) fn replay_window(seconds: u32) -> ApiResult<i32> {
    if seconds > MAX_REPLAY_WINDOW_SECONDS {
        return Err(ApiError::invalid(
            reasons::WEBHOOK_REPLAY_WINDOW_INVALID,
            "replay_window_seconds",
            "replay_window_seconds must be between 0 (off) and 86400",
        ));
    }
    Ok(seconds as i32)
}

/// Checks a description: at most 500 characters, no control characters other than new lines.
pub(crate) fn description(text: &str) -> ApiResult<()> {
    if text.chars().count() > 500
        || text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(ApiError::invalid(
            reasons::WEBHOOK_DESCRIPTION_INVALID,
            "description",
            "description must be at most 500 characters",
        ));
    }
    Ok(())
}

/// Checks a correlation key path's syntax; empty means "none".
pub(crate) fn correlation_path(text: &str) -> ApiResult<Option<String>> {
    if text.is_empty() {
        return Ok(None);
    }
    CorrelationPath::parse(text).map_err(|e| {
        ApiError::invalid(
            reasons::CORRELATION_PATH_INVALID,
            "correlation_key_path",
            e.to_string(),
        )
    })?;
    Ok(Some(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_names() {
        for ok in ["abc", "Orders[EU](v2).in_bound-1", &"a".repeat(50)] {
            assert!(name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            &"a".repeat(51),
            "with space",
            "slash/",
            "émoji",
            "a{b}",
            "",
        ] {
            assert_eq!(
                name(bad).expect_err(bad).code_and_reason().1,
                "WEBHOOK_NAME_INVALID",
                "{bad}"
            );
        }
    }

    #[test]
    fn correlation_paths() {
        for ok in [
            "a.b",
            "entry[0].changes[0].value",
            "data.orders[2].id",
            "application.applicationId",
        ] {
            assert_eq!(correlation_path(ok).expect(ok).as_deref(), Some(ok));
        }
        assert_eq!(correlation_path("").expect("empty"), None);
        for bad in ["a..b", "a[", "a[x]", ".a", "a b"] {
            assert_eq!(
                correlation_path(bad).expect_err(bad).code_and_reason().1,
                "CORRELATION_PATH_INVALID",
                "{bad}"
            );
        }
    }
}
