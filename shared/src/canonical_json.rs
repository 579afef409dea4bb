//! Canonical JSON: the byte form outbound action calls are signed over (docs/actions.md, "Canonical
//! JSON").
//!
//! Object keys are sorted by code point at every depth; there is no insignificant whitespace; strings
//! are escaped as JSON requires with every character outside printable ASCII written as `\uXXXX`
//! (lowercase hex, surrogate pairs beyond the BMP) and `/`, `<`, `>`, `&` left alone; integers are
//! written as they are and other numbers in their shortest round-trip decimal form, with Python's
//! `repr` layout (`299.99`, `100.0`, `1e-05`, `1e+16`). These are exactly the bytes Python's
//! `json.dumps(value, separators=(",", ":"))` produces for the same value when the object keys arrive
//! in sorted order — which they do, because the body is sent in canonical form too.

use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

/// The canonical form of `value`.
pub fn to_string(value: &Value) -> String {
    let mut out = String::with_capacity(128);
    write_value(&mut out, value);
    out
}

/// Appends the canonical form of `value` to `out`.
pub fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map),
    }
}

fn write_object(out: &mut String, map: &Map<String, Value>) {
    // `str` order is byte order of UTF-8, which is code-point order.
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    out.push('{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, key);
        out.push(':');
        write_value(out, value);
    }
    out.push('}');
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    // Writing to a String cannot fail.
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

fn write_number(out: &mut String, n: &Number) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        write_float(out, f);
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, fixed notation when the decimal
/// exponent is in -4..16 (always with a fractional part), else `d.ddde±XX`.
fn write_float(out: &mut String, f: f64) {
    // `{:e}` gives the shortest round-trip digits: `-2.9999e2`, `1e-5`, `0e0`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if negative {
        out.push('-');
    }
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        if point <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-point) as usize));
            out.push_str(&digits);
        } else {
            let point = point as usize;
            if digits.len() <= point {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', point - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..point]);
                out.push('.');
                out.push_str(&digits[point..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exp.unsigned_abs());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(text: &str) -> String {
        to_string(&serde_json::from_str(text).expect("test JSON"))
    }

    #[test]
    fn keys_are_sorted_at_every_depth_without_whitespace() {
        assert_eq!(
            canon(r#"{ "b": 1, "a": { "z": [1, {"y": 2, "x": 3}], "c": null } }"#),
            r#"{"a":{"c":null,"z":[1,{"x":3,"y":2}]},"b":1}"#
        );
    }

    #[test]
    fn keys_sort_by_code_point_not_utf16() {
        // U+FF21 sorts before U+1F600 by code point; in UTF-16 the surrogate 0xD83D sorts first.
        let v = json!({"\u{1F600}": 1, "\u{FF21}": 2, "Z": 3, "a": 4});
        assert_eq!(
            to_string(&v),
            r#"{"Z":3,"a":4,"\uff21":2,"\ud83d\ude00":1}"#
        );
    }

    #[test]
    fn strings_escape_non_ascii_and_controls_but_not_html_characters() {
        let v = json!("café \"q\" \\ / <a&b> \n\t\u{7f}\u{1} 😀");
        assert_eq!(
            to_string(&v),
            r#""caf\u00e9 \"q\" \\ / <a&b> \n\t\u007f\u0001 \ud83d\ude00""#
        );
    }

    #[test]
    fn numbers_follow_python_repr() {
        for (input, expected) in [
            ("299.99", "299.99"),
            ("100.0", "100.0"),
            ("100", "100"),
            ("-7", "-7"),
            ("18446744073709551615", "18446744073709551615"),
            ("0.0001", "0.0001"),
            ("0.00001", "1e-05"),
            ("1.5e-7", "1.5e-07"),
            ("1e15", "1000000000000000.0"),
            ("1e16", "1e+16"),
            ("123456789012345678.5", "1.2345678901234568e+17"),
            ("-0.0", "-0.0"),
            ("0.1", "0.1"),
            ("2.5e300", "2.5e+300"),
        ] {
            assert_eq!(canon(input), expected, "{input}");
        }
    }

    #[test]
    fn worked_example_nested_object() {
        assert_eq!(
            canon(
                r#"{"parameters":{"to":"ana@example.com","amount":299.99,"items":[{"sku":"A-1","qty":2}]},"action_name":"send_invoice","timestamp":1767225600}"#
            ),
            r#"{"action_name":"send_invoice","parameters":{"amount":299.99,"items":[{"qty":2,"sku":"A-1"}],"to":"ana@example.com"},"timestamp":1767225600}"#
        );
    }

    mod props {
        use std::io::Write as _;
        use std::process::{Command, Stdio};

        use proptest::prelude::*;
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        use serde_json::{Map, Number, Value};

        use super::super::to_string;

        /// Any JSON value serde_json can hold: every integer, every finite float, any text
        /// (control characters, non-BMP), nested arrays and objects.
        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(|n| Value::Number(n.into())),
                any::<u64>().prop_map(|n| Value::Number(n.into())),
                any::<f64>()
                    .prop_filter_map("finite", Number::from_f64)
                    .prop_map(Value::Number),
                any::<String>().prop_map(Value::String),
            ];
            leaf.prop_recursive(4, 48, 6, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    proptest::collection::vec((any::<String>(), inner), 0..6).prop_map(|entries| {
                        Value::Object(entries.into_iter().collect::<Map<_, _>>())
                    }),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn canonical_form_is_ascii_parses_back_and_is_stable(value in json_value()) {
                let text = to_string(&value);
                prop_assert!(text.is_ascii(), "{}", text);
                let back: Value = serde_json::from_str(&text).expect("canonical JSON parses");
                prop_assert_eq!(&back, &value);
                prop_assert_eq!(to_string(&back), text);
            }
        }

        /// Python's `json.dumps(json.loads(ours), separators=(",", ":"))` — the receiver's side of
        /// Flowent's documented check — gives back exactly our bytes for random values, in one
        /// python3 process for all of them.
        #[test]
        fn python_reproduces_our_bytes_for_random_values() {
            let mut runner = TestRunner::deterministic();
            let strategy = json_value();
            let lines: Vec<String> = (0..400)
                .map(|_| to_string(&strategy.new_tree(&mut runner).expect("value").current()))
                .collect();
            let script = "import json, sys\n\
                for line in sys.stdin.read().splitlines():\n\
                \x20   print(json.dumps(json.loads(line), separators=(',', ':')))\n";
            let mut child = Command::new("python3")
                .args(["-c", script])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("python3 must be installed to run this test");
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(lines.join("\n").as_bytes()).expect("write");
            drop(stdin);
            let out = child.wait_with_output().expect("python3 ran");
            assert!(out.status.success(), "python3 failed");
            let theirs = String::from_utf8(out.stdout).expect("python prints ASCII");
            let theirs: Vec<&str> = theirs.lines().collect();
            assert_eq!(theirs.len(), lines.len());
            for (ours, theirs) in lines.iter().zip(theirs) {
                assert_eq!(ours, theirs);
            }
        }
    }
}
