//! Parsers for settings given as flags or environment variables, shared by both services.

/// Parses `250ms`, `5s`, `2m`, `6h`, `7d` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 250ms, 5s, 2m, 6h or 7d"))?;
    let secs = |factor: u64| std::time::Duration::from_secs(n.saturating_mul(factor));
    match unit {
        "ms" => Ok(std::time::Duration::from_millis(n)),
        "s" => Ok(secs(1)),
        "m" => Ok(secs(60)),
        "h" => Ok(secs(3600)),
        "d" => Ok(secs(86_400)),
        _ => Err(format!(
            "`{text}` has an unknown unit (use ms, s, m, h or d)"
        )),
    }
}

/// Parses the bare integer of milliseconds that settings renamed in this release took (their old
/// names still work for one release; see [`Renamed`]).
pub fn parse_legacy_millis(text: &str) -> Result<std::time::Duration, String> {
    text.trim()
        .parse()
        .map(std::time::Duration::from_millis)
        .map_err(|_| format!("`{text}` is not a whole number of milliseconds"))
}

/// Parses the bare integer of seconds that settings renamed in this release took.
pub fn parse_legacy_secs(text: &str) -> Result<std::time::Duration, String> {
    text.trim()
        .parse()
        .map(std::time::Duration::from_secs)
        .map_err(|_| format!("`{text}` is not a whole number of seconds"))
}

/// A duration setting renamed in this release: the old flag and variable took a bare number with the
/// unit in the name (`CP_CONFIG_POLL_MS=1000`); the new ones take a duration (`CP_CONFIG_POLL_INTERVAL=1s`).
/// The old names keep working for one release, with a warning logged at start-up.
#[derive(Clone, Copy, Debug)]
pub struct Renamed {
    /// Old flag, without the leading dashes.
    pub old_flag: &'static str,
    /// Old environment variable.
    pub old_env: &'static str,
    /// New flag, without the leading dashes.
    pub new_flag: &'static str,
    /// New environment variable.
    pub new_env: &'static str,
}

impl Renamed {
    /// When the old name was given (`old` is set), moves its value into `new` and adds the warning
    /// to `warnings`. Giving both names is refused earlier, by the flag parser.
    pub fn apply<T>(&self, old: &mut Option<T>, new: &mut T, warnings: &mut Vec<String>) {
        if let Some(value) = old.take() {
            *new = value;
            warnings.push(self.warning());
        }
    }

    /// The start-up warning.
    pub fn warning(&self) -> String {
        format!(
            "--{} / {} is deprecated and will be removed in the next release; use --{} / {}, which takes a duration such as 10s or 500ms",
            self.old_flag, self.old_env, self.new_flag, self.new_env
        )
    }
}

/// Parses one `key=value` property.
pub fn parse_property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("`{text}` is not key=value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_take_the_usual_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("60"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("7w").is_err());
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn legacy_numbers_keep_their_unit_and_a_renamed_value_moves_with_a_warning() {
        assert_eq!(parse_legacy_millis("1500"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_legacy_secs("20"), Ok(Duration::from_secs(20)));
        assert!(parse_legacy_millis("1s").is_err());
        let renamed = Renamed {
            old_flag: "poll-ms",
            old_env: "X_POLL_MS",
            new_flag: "poll-interval",
            new_env: "X_POLL_INTERVAL",
        };
        let (mut warnings, mut new) = (Vec::new(), Duration::from_secs(1));
        renamed.apply(&mut None, &mut new, &mut warnings);
        assert_eq!((new, warnings.len()), (Duration::from_secs(1), 0));
        renamed.apply(
            &mut Some(Duration::from_millis(250)),
            &mut new,
            &mut warnings,
        );
        assert_eq!(new, Duration::from_millis(250));
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("X_POLL_MS") && warnings[0].contains("X_POLL_INTERVAL"));
    }
}
