//! Correlation key paths: a dotted path with array indices into a JSON payload, such as
//! `application.applicationId`, `entry[0].changes[0].value.messages[0].text.body` or `data.orders[2].id`.
//! One parser for both planes: the control plane checks syntax when a path is saved, the data plane
//! resolves it against each request.

use std::fmt;

use serde_json::Value;

/// One step of a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// An object member.
    Field(String),
    /// An array element.
    Index(usize),
}

/// A parsed, syntactically valid correlation key path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorrelationPath {
    segments: Vec<Segment>,
}

/// Why a path text is not a valid path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid correlation key path at byte {position}: {reason}")]
pub struct PathError {
    /// Byte offset of the problem in the text.
    pub position: usize,
    /// What is wrong there.
    pub reason: &'static str,
}

/// Why a path did not resolve to a scalar in a payload.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// An object has no such member (or the value there is not an object).
    #[error("no field `{field}` at `{at}`")]
    MissingField { at: String, field: String },
    /// An array is too short (or the value there is not an array).
    #[error("no element [{index}] at `{at}`")]
    MissingIndex { at: String, index: usize },
    /// The leaf is JSON null.
    #[error("value at `{at}` is null")]
    Null { at: String },
    /// The leaf is an object or an array.
    #[error("value at `{at}` is not a string, number or boolean")]
    NotScalar { at: String },
}

const MAX_PATH_LEN: usize = 1024;

impl CorrelationPath {
    /// Parses a path. Names are one or more characters other than `.`, `[`, `]` and white space;
    /// indices are decimal. The first segment may be an index alone (a payload that is an array).
    pub fn parse(text: &str) -> Result<Self, PathError> {
        let err = |position, reason| Err(PathError { position, reason });
        if text.is_empty() {
            return err(0, "path is empty");
        }
        if text.len() > MAX_PATH_LEN {
            return err(MAX_PATH_LEN, "path is longer than 1024 bytes");
        }
        let bytes = text.as_bytes();
        let mut segments = Vec::new();
        let mut i = 0;
        loop {
            // A name, unless this is the very first segment and it starts with an index.
            let start = i;
            while i < bytes.len() && !matches!(bytes[i], b'.' | b'[' | b']') {
                if bytes[i].is_ascii_whitespace() {
                    return err(i, "white space is not allowed");
                }
                i += 1;
            }
            if i > start {
                segments.push(Segment::Field(text[start..i].to_owned()));
            } else if !(segments.is_empty() && bytes.get(i) == Some(&b'[')) {
                return err(i, "expected a field name");
            }
            while bytes.get(i) == Some(&b'[') {
                let digits_start = i + 1;
                let mut j = digits_start;
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
                if j == digits_start {
                    return err(digits_start, "expected an array index");
                }
                if bytes.get(j) != Some(&b']') {
                    return err(j, "expected `]`");
                }
                let index = text[digits_start..j]
                    .parse::<usize>()
                    .map_err(|_| PathError {
                        position: digits_start,
                        reason: "array index too large",
                    })?;
                segments.push(Segment::Index(index));
                i = j + 1;
            }
            match bytes.get(i) {
                None => break,
                Some(b'.') => {
                    i += 1;
                    if i == bytes.len() {
                        return err(i, "path ends with `.`");
                    }
                }
                Some(_) => return err(i, "expected `.` or `[`"),
            }
        }
        Ok(Self { segments })
    }

    /// The parsed segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The scalar at this path: strings as they are, numbers and booleans as their JSON text.
    pub fn resolve(&self, payload: &Value) -> Result<String, ResolveError> {
        let mut current = payload;
        for (n, segment) in self.segments.iter().enumerate() {
            let next = match segment {
                Segment::Field(name) => current.as_object().and_then(|o| o.get(name)),
                Segment::Index(index) => current.as_array().and_then(|a| a.get(*index)),
            };
            current = match (next, segment) {
                (Some(v), _) => v,
                (None, Segment::Field(field)) => {
                    return Err(ResolveError::MissingField {
                        at: self.prefix(n),
                        field: field.clone(),
                    })
                }
                (None, Segment::Index(index)) => {
                    return Err(ResolveError::MissingIndex {
                        at: self.prefix(n),
                        index: *index,
                    })
                }
            };
        }
        match current {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Null => Err(ResolveError::Null {
                at: self.to_string(),
            }),
            Value::Array(_) | Value::Object(_) => Err(ResolveError::NotScalar {
                at: self.to_string(),
            }),
        }
    }

    fn prefix(&self, len: usize) -> String {
        if len == 0 {
            return "$".to_owned();
        }
        CorrelationPath {
            segments: self.segments[..len].to_vec(),
        }
        .to_string()
    }
}

impl fmt::Display for CorrelationPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Field(name) if n == 0 => f.write_str(name)?,
                Segment::Field(name) => write!(f, ".{name}")?,
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for CorrelationPath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn whatsapp() -> Value {
        json!({"entry":[{"id":"E1","changes":[{"value":{"messages":[{"text":{"body":"hello"}}]}}]}]})
    }

    #[test]
    fn resolves_the_documented_examples() {
        let p = CorrelationPath::parse("entry[0].changes[0].value.messages[0].text.body")
            .expect("valid");
        assert_eq!(p.resolve(&whatsapp()), Ok("hello".to_owned()));
        let orders = json!({"data":{"orders":[{"id":1},{"id":2},{"id":"third"}]}});
        assert_eq!(
            CorrelationPath::parse("data.orders[2].id")
                .expect("valid")
                .resolve(&orders),
            Ok("third".into())
        );
        let app = json!({"application":{"applicationId":"A-17"}});
        assert_eq!(
            CorrelationPath::parse("application.applicationId")
                .expect("valid")
                .resolve(&app),
            Ok("A-17".into())
        );
    }

    #[test]
    fn numbers_and_booleans_resolve_to_their_json_text() {
        let v = json!({"n": 42, "f": 1.5, "b": true, "neg": -7});
        for (path, want) in [("n", "42"), ("f", "1.5"), ("b", "true"), ("neg", "-7")] {
            assert_eq!(
                CorrelationPath::parse(path).expect("valid").resolve(&v),
                Ok(want.to_owned())
            );
        }
    }

    #[test]
    fn unresolvable_paths_say_why() {
        let v = json!({"a": {"b": null, "o": {}, "arr": [1]}});
        let r = |p: &str| CorrelationPath::parse(p).expect("valid").resolve(&v);
        assert!(
            matches!(r("a.missing"), Err(ResolveError::MissingField { field, .. }) if field == "missing")
        );
        assert!(matches!(
            r("a.arr[1]"),
            Err(ResolveError::MissingIndex { index: 1, .. })
        ));
        assert!(matches!(r("a.b"), Err(ResolveError::Null { .. })));
        assert!(matches!(r("a.o"), Err(ResolveError::NotScalar { .. })));
        assert!(matches!(r("a.arr"), Err(ResolveError::NotScalar { .. })));
        // indexing an object and naming a member of an array both fail cleanly
        assert!(matches!(r("a[0]"), Err(ResolveError::MissingIndex { .. })));
        assert!(matches!(
            r("a.arr.x"),
            Err(ResolveError::MissingField { .. })
        ));
    }

    #[test]
    fn rejects_bad_syntax_with_a_position() {
        for (text, pos) in [
            ("", 0),
            ("a..b", 2),
            (".a", 0),
            ("a.", 2),
            ("a[", 2),
            ("a[x]", 2),
            ("a[1", 3),
            ("a[1]b", 4),
            ("a]", 1),
            ("a b", 1),
            ("a[-1]", 2),
            ("a[99999999999999999999999]", 2),
        ] {
            let e = CorrelationPath::parse(text).expect_err(text);
            assert_eq!(e.position, pos, "{text}: {e}");
        }
        assert!(
            CorrelationPath::parse("[0].id").is_ok(),
            "a top-level array may be indexed"
        );
        assert!(CorrelationPath::parse("a.[0]").is_err());
    }

    fn segment_strategy() -> impl Strategy<Value = Vec<Segment>> {
        let field = "[A-Za-z0-9_$@:-]{1,8}".prop_map(Segment::Field);
        let index = (0usize..5).prop_map(Segment::Index);
        (
            field.clone(),
            prop::collection::vec(prop_oneof![field, index], 0..6),
        )
            .prop_map(|(first, rest)| {
                let mut v = vec![first];
                v.extend(rest);
                v
            })
    }

    fn build(segments: &[Segment], leaf: Value) -> Value {
        segments.iter().rev().fold(leaf, |inner, s| match s {
            Segment::Field(name) => json!({ name.clone(): inner }),
            Segment::Index(i) => {
                let mut arr = vec![Value::Null; *i];
                arr.push(inner);
                Value::Array(arr)
            }
        })
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,64}") {
            let _ = CorrelationPath::parse(&text);
        }

        #[test]
        fn display_then_parse_round_trips(segments in segment_strategy()) {
            let path = CorrelationPath { segments };
            let reparsed = CorrelationPath::parse(&path.to_string()).expect("printed path parses");
            prop_assert_eq!(reparsed, path);
        }

        #[test]
        fn resolves_what_was_placed_there(segments in segment_strategy(), leaf in "[a-z0-9]{0,12}") {
            let payload = build(&segments, Value::String(leaf.clone()));
            let path = CorrelationPath { segments };
            prop_assert_eq!(path.resolve(&payload), Ok(leaf));
        }
    }
}
