//! Stage one's leaf values: what a raw struct holds for a single TOML value, as written.
//!
//! Every leaf type here accepts any TOML value and keeps one of the wrong type as `Wrong(what
//! was found)`, so that deserializing the raw structs never fails on a value's type; stage
//! two reports the wrong value together with every other error. Kept apart from the raw
//! structs because these types decide what counts as a number, a rate, a duration or a
//! string, while the raw structs only say where each may appear.

use super::validator::fmt_num;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use toml::value::Datetime;
use toml::Spanned;

/// Any TOML value, as a leaf value's deserializer sees it: scalars with their value, arrays
/// and tables only by kind (a leaf never wants them, and says so in stage two).
#[derive(Debug, Clone)]
enum Scalar {
    /// A TOML integer.
    Int(i64),
    /// A TOML float (or an integer too large for `i64`).
    Float(f64),
    /// A TOML string.
    Str(String),
    /// A TOML boolean.
    Bool(bool),
    /// A TOML date-time, date or time.
    Datetime(Datetime),
    /// A TOML array.
    Array,
    /// A TOML table.
    Table,
}

impl Scalar {
    /// The value as a message names it ("the string \"abc\"", "an array").
    fn describe(&self) -> String {
        match self {
            Scalar::Int(i) => format!("the integer {i}"),
            Scalar::Float(x) => format!("the number {}", fmt_num(*x)),
            Scalar::Str(t) => format!("the string {t:?}"),
            Scalar::Bool(b) => format!("the boolean {b}"),
            Scalar::Datetime(d) => format!("the date-time {d}"),
            Scalar::Array => "an array".into(),
            Scalar::Table => "a table".into(),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any TOML value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(i64::try_from(v).map_or(Scalar::Float(v as f64), Scalar::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<Scalar, A::Error> {
                Ok(Scalar::Array)
            }
            // The TOML deserializer hands a native date-time over as a one-entry map that
            // `Datetime`'s own `Deserialize` knows how to read; any other map is a table.
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar, A::Error> {
                Ok(
                    match Datetime::deserialize(de::value::MapAccessDeserializer::new(map)) {
                        Ok(dt) => Scalar::Datetime(dt),
                        Err(_) => Scalar::Table,
                    },
                )
            }
        }
        d.deserialize_any(V)
    }
}

/// Implements `Deserialize` for a leaf type through `Scalar`, so that a value of the wrong
/// type becomes the leaf's `Wrong` variant (reported in stage two) instead of an error.
macro_rules! leaf_from_scalar {
    ($t:ty) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Scalar::deserialize(d).map(<$t>::from)
            }
        }
    };
}

/// A number written as a TOML integer or float, so that `145` and `145.0` mean the same.
#[derive(Debug, Clone)]
pub(super) enum Num {
    /// A TOML integer or float.
    Num(f64),
    /// Any other value, described for the message.
    Wrong(String),
}

impl From<Scalar> for Num {
    fn from(v: Scalar) -> Num {
        match v {
            Scalar::Int(i) => Num::Num(i as f64),
            Scalar::Float(x) => Num::Num(x),
            other => Num::Wrong(other.describe()),
        }
    }
}

leaf_from_scalar!(Num);

/// A value that may be a number or a string: rates (`"0.28%"` or `0.0028`) and gate
/// thresholds (a rate for `error_rate`, a number for the others). Which one is right is
/// decided in stage two, where the error can be collected with the others.
#[derive(Debug, Clone)]
pub(super) enum NumOrText {
    /// A TOML integer or float.
    Num(f64),
    /// A TOML string.
    Text(String),
    /// Any other value, described for the message.
    Wrong(String),
}

impl From<Scalar> for NumOrText {
    fn from(v: Scalar) -> NumOrText {
        match v {
            Scalar::Int(i) => NumOrText::Num(i as f64),
            Scalar::Float(x) => NumOrText::Num(x),
            Scalar::Str(t) => NumOrText::Text(t),
            other => NumOrText::Wrong(other.describe()),
        }
    }
}

leaf_from_scalar!(NumOrText);

/// A duration as written: normally a string such as `"15m"`; a bare number is kept apart
/// only so that stage two can say which unit is missing.
#[derive(Debug, Clone)]
pub(super) enum Dur {
    /// A TOML string, parsed with `Span::parse`.
    Text(String),
    /// A TOML number, which is always an error (it has no unit).
    Num(f64),
    /// Any other value, described for the message.
    Wrong(String),
}

impl From<Scalar> for Dur {
    fn from(v: Scalar) -> Dur {
        match v {
            Scalar::Str(t) => Dur::Text(t),
            Scalar::Int(i) => Dur::Num(i as f64),
            Scalar::Float(x) => Dur::Num(x),
            other => Dur::Wrong(other.describe()),
        }
    }
}

leaf_from_scalar!(Dur);

/// The deployment start: an RFC 3339 string or a native TOML offset date-time.
#[derive(Debug, Clone)]
pub(super) enum StartValue {
    /// A TOML string, parsed as a TOML date-time in stage two.
    Text(String),
    /// A native TOML date-time (`start = 2025-10-06T18:00:00Z`).
    Datetime(Datetime),
    /// Any other value, described for the message.
    Wrong(String),
}

impl From<Scalar> for StartValue {
    fn from(v: Scalar) -> StartValue {
        match v {
            Scalar::Str(t) => StartValue::Text(t),
            Scalar::Datetime(dt) => StartValue::Datetime(dt),
            other => StartValue::Wrong(other.describe()),
        }
    }
}

leaf_from_scalar!(StartValue);

/// A string value: names, ids, scopes and cohorts.
#[derive(Debug, Clone)]
pub(super) enum Text {
    /// A TOML string.
    Text(String),
    /// Any other value, described for the message.
    Wrong(String),
}

impl From<Scalar> for Text {
    fn from(v: Scalar) -> Text {
        match v {
            Scalar::Str(t) => Text::Text(t),
            other => Text::Wrong(other.describe()),
        }
    }
}

leaf_from_scalar!(Text);

/// A string or an array of strings, as written: a command's argv, a stage's approvals and a
/// hook's events. The array keeps each entry's span, so that a bad entry is blamed where it
/// is; a single string is kept apart so that stage two can accept it (`on = "rollback"`) or
/// explain why it is wrong (a command is never a shell string).
#[derive(Debug, Clone)]
pub(super) enum TextList {
    /// A TOML string.
    One(String),
    /// A TOML array; each entry is a lenient string, so a wrong entry is reported in stage two.
    Many(Vec<S<Text>>),
    /// Any other value, described for the message.
    Wrong(String),
}

impl<'de> Deserialize<'de> for TextList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TextList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<TextList, E> {
                Ok(TextList::Wrong(Scalar::Bool(v).describe()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<TextList, E> {
                Ok(TextList::Wrong(Scalar::Int(v).describe()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<TextList, E> {
                Ok(TextList::Wrong(
                    i64::try_from(v)
                        .map_or(Scalar::Float(v as f64), Scalar::Int)
                        .describe(),
                ))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<TextList, E> {
                Ok(TextList::Wrong(Scalar::Float(v).describe()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TextList, E> {
                Ok(TextList::One(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TextList, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = seq.next_element::<S<Text>>()? {
                    out.push(entry);
                }
                Ok(TextList::Many(out))
            }
            // As in `Scalar`: a native date-time arrives as a one-entry map.
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TextList, A::Error> {
                let found = match Datetime::deserialize(de::value::MapAccessDeserializer::new(map))
                {
                    Ok(dt) => Scalar::Datetime(dt),
                    Err(_) => Scalar::Table,
                };
                Ok(TextList::Wrong(found.describe()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A spanned value, the form every blameable raw field takes.
pub(super) type S<T> = Spanned<T>;
