//! Request ids: the caller's `X-Request-ID` when it is safe to log and echo, else a new one.

/// `caller` when it is 1–128 plain characters (letters, digits, `-_.:`), else a new UUIDv7. Anything
/// else could forge log lines or carry a payload into logs.
pub fn from_header(caller: Option<&str>) -> String {
    caller
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_ids_are_kept() {
        assert_eq!(from_header(Some("abc-123:x.y_z")), "abc-123:x.y_z");
        for bad in ["", "evil\tvalue", "a b", "line\nbreak", &"x".repeat(129)] {
            let fresh = from_header(Some(bad));
            assert_ne!(fresh, bad);
            assert!(uuid::Uuid::parse_str(&fresh).is_ok(), "{fresh}");
        }
        assert!(uuid::Uuid::parse_str(&from_header(None)).is_ok());
    }
}
