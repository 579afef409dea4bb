//! Correlation key paths: a dotted path with array indices into a JSON payload, such as
//! `application.applicationId`, `entry[0].changes[0].value.messages[0].text.body` or `data.orders[2].id`.
//! One parser for both planes: the control plane checks syntax when a path is saved, the data plane
//! resolves it against each request.

use std::fmt;

use serde_json::value::RawValue;
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
        let leaf = self.walk(payload, |current, segment| match segment {
            Segment::Field(name) => current.as_object().and_then(|o| o.get(name)),
            Segment::Index(index) => current.as_array().and_then(|a| a.get(*index)),
        })?;
        self.scalar(leaf)
    }

    /// [`resolve`](Self::resolve) against JSON text (already known to be valid JSON) without building
    /// a tree of it: every level skips the members and elements off the path unparsed, so a lookup
    /// costs one scan of the text and allocates only the leaf. Same answers as `resolve` on the
    /// parsed text, including which of two same-named members counts (the last, as a parsed object
    /// keeps it).
    pub fn resolve_json(&self, json: &str) -> Result<String, ResolveError> {
        // Text that turns out not to be JSON has nothing at any path.
        let leaf = self.walk(json, |current, segment| {
            let mut de = serde_json::Deserializer::from_str(current);
            serde::Deserializer::deserialize_any(&mut de, Step(segment))
                .ok()
                .flatten()
                .map(RawValue::get)
        })?;
        self.scalar(&serde_json::from_str(leaf).unwrap_or(Value::Null))
    }

    /// Follows the path from `root`, one `step` per segment; the first step that finds nothing
    /// says which member or element is missing, and where.
    fn walk<T: Copy>(
        &self,
        root: T,
        step: impl Fn(T, &Segment) -> Option<T>,
    ) -> Result<T, ResolveError> {
        let mut current = root;
        for (n, segment) in self.segments.iter().enumerate() {
            current = match (step(current, segment), segment) {
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
        Ok(current)
    }

    /// The text of a leaf: strings as they are, numbers and booleans as their JSON text.
    fn scalar(&self, leaf: &Value) -> Result<String, ResolveError> {
        match leaf {
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

/// One step of [`CorrelationPath::resolve_json`]: the raw text of the member or element `segment`
/// names, if the value is an object or an array that has it; everything else is skipped unparsed.
struct Step<'s>(&'s Segment);

impl<'de> serde::de::Visitor<'de> for Step<'_> {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let value: &'de RawValue = map.next_value()?;
            // The last of two same-named members wins, as in a parsed object.
            if matches!(self.0, Segment::Field(name) if *name == key) {
                found = Some(value);
            }
        }
        Ok(found)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        let mut i = 0usize;
        while let Some(value) = seq.next_element::<&'de RawValue>()? {
            if matches!(self.0, Segment::Index(index) if *index == i) {
                found = Some(value);
            }
            i += 1;
        }
        Ok(found)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
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

    /// What both lookups give for `path` in `payload`, checked to agree.
    fn both(path: &str, payload: &Value) -> Result<String, ResolveError> {
        let p = CorrelationPath::parse(path).expect("valid");
        let from_tree = p.resolve(payload);
        let from_text = p.resolve_json(&payload.to_string());
        assert_eq!(from_text, from_tree, "{path} in {payload}");
        from_tree
    }

    #[test]
    fn the_text_lookup_agrees_with_the_tree_on_the_examples() {
        assert_eq!(
            both(
                "entry[0].changes[0].value.messages[0].text.body",
                &whatsapp()
            ),
            Ok("hello".into())
        );
        let v = json!({"a": {"b": null, "o": {}, "arr": [1, 2.5, true]}, "n": 42, "f": 1.5});
        for path in [
            "a.b",
            "a.o",
            "a.arr",
            "a.arr[1]",
            "a.arr[2]",
            "a.arr[3]",
            "a[0]",
            "a.arr.x",
            "n",
            "f",
            "missing",
            "a.missing.deeper",
            "n.x",
            "[0]",
        ] {
            let _ = both(path, &v);
        }
        assert_eq!(
            both("[1].id", &json!([{"id": 1}, {"id": "two"}])),
            Ok("two".into())
        );
        assert!(both("x", &json!("just a string")).is_err());
    }

    #[test]
    fn the_text_lookup_takes_the_last_of_duplicate_members_and_unescapes_names() {
        let p = |t: &str| CorrelationPath::parse(t).expect("valid");
        let dup = r#"{"id":"first","nested":{"k":1},"id":"second","nested":{"k":2}}"#;
        let tree: Value = serde_json::from_str(dup).expect("json");
        assert_eq!(p("id").resolve_json(dup), Ok("second".into()));
        assert_eq!(p("id").resolve_json(dup), p("id").resolve(&tree));
        assert_eq!(p("nested.k").resolve_json(dup), Ok("2".into()));
        assert_eq!(
            p("ab").resolve_json(r#"{"a\u0062": "escaped"}"#),
            Ok("escaped".into())
        );
        // Text that is not JSON has nothing at any path.
        assert!(matches!(
            p("a").resolve_json("{not json"),
            Err(ResolveError::MissingField { .. })
        ));
    }

    fn json_strategy() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            (-1e9f64..1e9).prop_map(|f| json!(f)),
            "[a-c\\\"é]{0,4}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-c]{1,2}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn lookup_path_strategy() -> impl Strategy<Value = String> {
        let field = "[a-c]{1,2}".prop_map(Segment::Field);
        let index = (0usize..4).prop_map(Segment::Index);
        prop::collection::vec(prop_oneof![field, index], 1..5).prop_map(|segments| {
            let mut segments = segments;
            // A path starts with a name unless it indexes a top-level array.
            if let Segment::Index(_) = segments[0] {
                if segments.len() > 1 {
                    segments.remove(0);
                }
            }
            CorrelationPath { segments }.to_string()
        })
    }

    proptest! {
        #[test]
        fn the_text_lookup_agrees_with_the_tree(payload in json_strategy(), path in lookup_path_strategy()) {
            let Ok(p) = CorrelationPath::parse(&path) else { return Ok(()) };
            prop_assert_eq!(p.resolve_json(&payload.to_string()), p.resolve(&payload));
        }

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
