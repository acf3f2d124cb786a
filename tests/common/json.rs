//! A small JSON reader for the fixtures' meta.json files. Numbers keep their text, so a u64 seed
//! and a float Python wrote with repr read back exactly (`Json::u64`, `Json::f64`).

use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(String),
    Str(String),
    Array(Vec<Json>),
    Object(BTreeMap<String, Json>),
}

impl Json {
    /// Parse `text`; a malformed file panics with where it went wrong (test fixtures only).
    pub fn parse(text: &str) -> Json {
        let b = text.as_bytes();
        let mut at = 0;
        let v = value(b, &mut at);
        skip(b, &mut at);
        assert_eq!(at, b.len(), "JSON: trailing text at byte {at}");
        v
    }

    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(m) => m.get(key),
            _ => None,
        }
    }

    /// The member `key` of an object, which must be there.
    pub fn at(&self, key: &str) -> &Json {
        self.get(key).unwrap_or_else(|| panic!("JSON: no member {key:?}"))
    }

    pub fn array(&self) -> &[Json] {
        match self {
            Json::Array(v) => v,
            other => panic!("JSON: not an array: {other:?}"),
        }
    }

    pub fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            other => panic!("JSON: not a string: {other:?}"),
        }
    }

    fn number(&self) -> &str {
        match self {
            Json::Number(s) => s,
            other => panic!("JSON: not a number: {other:?}"),
        }
    }

    pub fn f64(&self) -> f64 {
        self.number().parse().expect("JSON: a float")
    }

    pub fn u64(&self) -> u64 {
        self.number().parse().expect("JSON: an unsigned integer")
    }

    pub fn usize(&self) -> usize {
        self.number().parse().expect("JSON: an unsigned integer")
    }

    /// An array of unsigned integers (a shape).
    pub fn usizes(&self) -> Vec<usize> {
        self.array().iter().map(Json::usize).collect()
    }
}

fn skip(b: &[u8], at: &mut usize) {
    while *at < b.len() && b[*at].is_ascii_whitespace() {
        *at += 1;
    }
}

fn expect(b: &[u8], at: &mut usize, c: u8) {
    skip(b, at);
    assert!(b.get(*at) == Some(&c), "JSON: expected '{}' at byte {at}", c as char);
    *at += 1;
}

fn value(b: &[u8], at: &mut usize) -> Json {
    skip(b, at);
    match b.get(*at) {
        Some(b'{') => {
            *at += 1;
            let mut m = BTreeMap::new();
            skip(b, at);
            if b.get(*at) == Some(&b'}') {
                *at += 1;
                return Json::Object(m);
            }
            loop {
                skip(b, at);
                let Json::Str(key) = value(b, at) else {
                    panic!("JSON: a key that is not a string before byte {at}")
                };
                expect(b, at, b':');
                m.insert(key, value(b, at));
                skip(b, at);
                *at += 1;
                match b.get(*at - 1) {
                    Some(b',') => continue,
                    Some(b'}') => return Json::Object(m),
                    _ => panic!("JSON: expected ',' or '}}' at byte {}", *at - 1),
                }
            }
        }
        Some(b'[') => {
            *at += 1;
            let mut v = Vec::new();
            skip(b, at);
            if b.get(*at) == Some(&b']') {
                *at += 1;
                return Json::Array(v);
            }
            loop {
                v.push(value(b, at));
                skip(b, at);
                *at += 1;
                match b.get(*at - 1) {
                    Some(b',') => continue,
                    Some(b']') => return Json::Array(v),
                    _ => panic!("JSON: expected ',' or ']' at byte {}", *at - 1),
                }
            }
        }
        Some(b'"') => {
            *at += 1;
            let mut s = String::new();
            loop {
                let c = *b.get(*at).expect("JSON: an unterminated string");
                *at += 1;
                match c {
                    b'"' => return Json::Str(s),
                    b'\\' => {
                        let e = b[*at];
                        *at += 1;
                        match e {
                            b'n' => s.push('\n'),
                            b't' => s.push('\t'),
                            b'r' => s.push('\r'),
                            b'b' => s.push('\u{8}'),
                            b'f' => s.push('\u{c}'),
                            b'u' => {
                                let hex = std::str::from_utf8(&b[*at..*at + 4]).expect("JSON: \\u escape");
                                *at += 4;
                                s.push(
                                    char::from_u32(u32::from_str_radix(hex, 16).expect("hex")).unwrap_or('\u{fffd}'),
                                );
                            }
                            other => s.push(other as char),
                        }
                    }
                    _ => {
                        // copy a whole UTF-8 sequence
                        let start = *at - 1;
                        while *at < b.len() && (b[*at] & 0xC0) == 0x80 {
                            *at += 1;
                        }
                        s.push_str(std::str::from_utf8(&b[start..*at]).expect("JSON: UTF-8"));
                    }
                }
            }
        }
        Some(b't') if b[*at..].starts_with(b"true") => {
            *at += 4;
            Json::Bool(true)
        }
        Some(b'f') if b[*at..].starts_with(b"false") => {
            *at += 5;
            Json::Bool(false)
        }
        Some(b'n') if b[*at..].starts_with(b"null") => {
            *at += 4;
            Json::Null
        }
        // Python writes NaN, Infinity and -Infinity for non-finite floats, which f64 parses
        Some(c) if *c == b'-' || *c == b'N' || *c == b'I' || c.is_ascii_digit() => {
            let start = *at;
            while *at < b.len() && (b[*at].is_ascii_alphanumeric() || matches!(b[*at], b'-' | b'+' | b'.')) {
                *at += 1;
            }
            Json::Number(std::str::from_utf8(&b[start..*at]).unwrap().to_string())
        }
        _ => panic!("JSON: unexpected input at byte {at}"),
    }
}
