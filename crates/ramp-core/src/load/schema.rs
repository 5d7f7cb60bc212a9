//! Stage one's key check: the schema of the plan's tables and the walk that checks a parsed
//! TOML tree against it.
//!
//! The schema is kept by hand only for the shape of each key (leaf, table, array of tables,
//! table of named tables); the keys themselves are read from the `Raw*` structs' derived
//! `Deserialize` (`fields_of`), so the two cannot drift apart. The walk reports every unknown
//! key and every value of the wrong shape, and removes them, so that deserializing what is
//! left into the raw structs cannot fail on them.

use super::raw::{
    RawBaseline, RawBurnRate, RawCheck, RawControl, RawDeployment, RawFault, RawFeature, RawGate,
    RawGates, RawHook, RawLoad, RawMannWhitney, RawMetrics, RawNext, RawNotify, RawOfrep,
    RawOverhead, RawPlan, RawQueryGate, RawRehearsal, RawRehearsalFault, RawRelative,
    RawRelativeGate, RawReport, RawReportQuery, RawRouter, RawSequential, RawSequentialTest,
    RawServiceModel, RawSimulation, RawStage, RawStageGates, RawStore,
};
use super::validator::Validator;
use serde::de::{self, Deserializer, Visitor};
use std::cell::Cell;
use std::ops::Range;
use toml::de::{DeTable, DeValue};

/// The keys a raw struct accepts, as its derived `Deserialize` lists them.
///
/// Read by asking the derived code to deserialize from a probe that records the field list
/// `deserialize_struct` is called with, so the list can never drift from the struct.
fn fields_of<T: de::DeserializeOwned>() -> &'static [&'static str] {
    /// The probe: records the field list, then fails.
    struct Probe<'a>(&'a Cell<&'static [&'static str]>);
    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.set(fields);
            Err(de::Error::custom("probed"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let fields = Cell::new(&[][..]);
    // The probe always fails; only the recorded list matters.
    let _ = T::deserialize(Probe(&fields));
    fields.get()
}

/// What a key of a raw struct holds, for the stage-one key check.
#[derive(Clone, Copy)]
enum Shape {
    /// A leaf value (its type is checked in stage two).
    Leaf,
    /// An array of leaf values.
    Leaves,
    /// A table.
    Table(Schema),
    /// An array of tables; the label names one entry in messages ("stage" → "stage 2").
    Tables(Schema, &'static str),
    /// A table of named tables (`[flags.NAME]`); the label names one entry ("flag").
    Map(Schema, &'static str),
}

/// The keys of one raw struct and the shape of those that are not leaves.
#[derive(Clone, Copy)]
pub(super) struct Schema {
    /// Every key the struct accepts.
    fields: fn() -> &'static [&'static str],
    /// The keys that hold tables or arrays.
    children: &'static [(&'static str, Shape)],
}

/// One gate table.
const GATE: Schema = Schema {
    fields: fields_of::<RawGate>,
    children: &[],
};
/// One sequential test's table.
const SEQUENTIAL_TEST: Schema = Schema {
    fields: fields_of::<RawSequentialTest>,
    children: &[],
};
/// `[gates.sequential]`.
const SEQUENTIAL: Schema = Schema {
    fields: fields_of::<RawSequential>,
    children: &[
        ("errors", Shape::Table(SEQUENTIAL_TEST)),
        ("latency", Shape::Table(SEQUENTIAL_TEST)),
    ],
};
/// One relative gate's table.
const RELATIVE_GATE: Schema = Schema {
    fields: fields_of::<RawRelativeGate>,
    children: &[],
};
/// `[gates.relative]`.
const RELATIVE: Schema = Schema {
    fields: fields_of::<RawRelative>,
    children: &[
        ("p50_ms", Shape::Table(RELATIVE_GATE)),
        ("p95_ms", Shape::Table(RELATIVE_GATE)),
        ("p99_ms", Shape::Table(RELATIVE_GATE)),
        ("error_rate", Shape::Table(RELATIVE_GATE)),
    ],
};
/// `[gates]`.
const GATES: Schema = Schema {
    fields: fields_of::<RawGates>,
    children: &[
        ("sequential", Shape::Table(SEQUENTIAL)),
        ("relative", Shape::Table(RELATIVE)),
        (
            "burn_rate",
            Shape::Table(Schema {
                fields: fields_of::<RawBurnRate>,
                children: &[],
            }),
        ),
        (
            "mann_whitney",
            Shape::Table(Schema {
                fields: fields_of::<RawMannWhitney>,
                children: &[],
            }),
        ),
        ("p50_ms", Shape::Table(GATE)),
        ("p95_ms", Shape::Table(GATE)),
        ("p99_ms", Shape::Table(GATE)),
        ("error_rate", Shape::Table(GATE)),
        ("throughput_rps", Shape::Table(GATE)),
        (
            "query",
            Shape::Tables(
                Schema {
                    fields: fields_of::<RawQueryGate>,
                    children: &[],
                },
                "query gate",
            ),
        ),
    ],
};
/// A stage's `gates`.
const STAGE_GATES: Schema = Schema {
    fields: fields_of::<RawStageGates>,
    children: &[
        ("p50_ms", Shape::Table(GATE)),
        ("p95_ms", Shape::Table(GATE)),
        ("p99_ms", Shape::Table(GATE)),
        ("error_rate", Shape::Table(GATE)),
        ("throughput_rps", Shape::Table(GATE)),
    ],
};
/// `[simulation]`.
const SIMULATION: Schema = Schema {
    fields: fields_of::<RawSimulation>,
    children: &[
        ("daily_profile", Shape::Leaves),
        (
            "stable",
            Shape::Table(Schema {
                fields: fields_of::<RawServiceModel>,
                children: &[],
            }),
        ),
        (
            "features",
            Shape::Tables(
                Schema {
                    fields: fields_of::<RawFeature>,
                    children: &[],
                },
                "simulation feature",
            ),
        ),
        (
            "overhead",
            Shape::Table(Schema {
                fields: fields_of::<RawOverhead>,
                children: &[],
            }),
        ),
        (
            "load",
            Shape::Table(Schema {
                fields: fields_of::<RawLoad>,
                children: &[],
            }),
        ),
        (
            "faults",
            Shape::Tables(
                Schema {
                    fields: fields_of::<RawFault>,
                    children: &[],
                },
                "simulation fault",
            ),
        ),
    ],
};
/// The whole plan file.
pub(super) const PLAN: Schema = Schema {
    fields: fields_of::<RawPlan>,
    children: &[
        (
            "deployment",
            Shape::Table(Schema {
                fields: fields_of::<RawDeployment>,
                children: &[],
            }),
        ),
        (
            "baseline",
            Shape::Table(Schema {
                fields: fields_of::<RawBaseline>,
                children: &[],
            }),
        ),
        ("gates", Shape::Table(GATES)),
        (
            "stages",
            Shape::Tables(
                Schema {
                    fields: fields_of::<RawStage>,
                    children: &[("gates", Shape::Table(STAGE_GATES))],
                },
                "stage",
            ),
        ),
        ("simulation", Shape::Table(SIMULATION)),
        (
            "rehearsals",
            Shape::Tables(
                Schema {
                    fields: fields_of::<RawRehearsal>,
                    children: &[(
                        "fault",
                        Shape::Table(Schema {
                            fields: fields_of::<RawRehearsalFault>,
                            children: &[],
                        }),
                    )],
                },
                "rehearsal",
            ),
        ),
        (
            "router",
            Shape::Table(Schema {
                fields: fields_of::<RawRouter>,
                children: &[],
            }),
        ),
        (
            "control",
            Shape::Table(Schema {
                fields: fields_of::<RawControl>,
                children: &[],
            }),
        ),
        (
            "metrics",
            Shape::Table(Schema {
                fields: fields_of::<RawMetrics>,
                children: &[],
            }),
        ),
        (
            "checks",
            Shape::Tables(
                Schema {
                    fields: fields_of::<RawCheck>,
                    children: &[],
                },
                "check",
            ),
        ),
        (
            "hooks",
            Shape::Tables(
                Schema {
                    fields: fields_of::<RawHook>,
                    children: &[],
                },
                "hook",
            ),
        ),
        (
            "notify",
            Shape::Tables(
                Schema {
                    fields: fields_of::<RawNotify>,
                    children: &[],
                },
                "notifier",
            ),
        ),
        (
            "flags",
            Shape::Map(
                Schema {
                    fields: raw_flag_keys,
                    // `variants` and `metadata` hold free-form tables: ramp-flags checks them.
                    children: &[],
                },
                "flag",
            ),
        ),
        (
            "store",
            Shape::Table(Schema {
                fields: fields_of::<RawStore>,
                children: &[],
            }),
        ),
        (
            "ofrep",
            Shape::Table(Schema {
                fields: fields_of::<RawOfrep>,
                children: &[],
            }),
        ),
        (
            "next",
            Shape::Table(Schema {
                fields: fields_of::<RawNext>,
                children: &[],
            }),
        ),
        (
            "report",
            Shape::Table(Schema {
                fields: fields_of::<RawReport>,
                children: &[(
                    "queries",
                    Shape::Tables(
                        Schema {
                            fields: fields_of::<RawReportQuery>,
                            children: &[],
                        },
                        "report query",
                    ),
                )],
            }),
        ),
    ],
};

/// The keys of a `[flags.NAME]` table, as ramp-flags defines them.
fn raw_flag_keys() -> &'static [&'static str] {
    ramp_flags::flags::raw::RAW_FLAG_KEYS
}

/// Names a key of the table `ctx` names, in the style of the validation messages:
/// `stages`, `gates.p95_ms`, `simulation.faults`, `stage 2's gates`, `stage 2's gates.p95_ms`.
fn dotted(ctx: &str, key: &str) -> String {
    if ctx.is_empty() {
        key.to_string()
    } else if let Some(section) = ctx.strip_prefix('[').and_then(|c| c.strip_suffix(']')) {
        format!("{section}.{key}")
    } else if ctx.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{ctx}'s {key}")
    } else {
        format!("{ctx}.{key}")
    }
}

/// A parsed TOML value as a message names it ("the integer 5", "a table").
fn describe_value(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(t) => format!("the string {t:?}"),
        DeValue::Integer(i) => format!("the integer {i}"),
        DeValue::Float(x) => format!("the number {x}"),
        DeValue::Boolean(b) => format!("the boolean {b}"),
        DeValue::Datetime(d) => format!("the date-time {d}"),
        DeValue::Array(_) => "an array".into(),
        DeValue::Table(_) => "a table".into(),
    }
}

impl Validator<'_> {
    /// Checks the keys of one table of the parsed tree against `schema`, recursively:
    /// reports every unknown key and every value that should be a table or an array of
    /// tables but is not, and removes them so that deserializing the rest cannot fail on
    /// them. `span` is the table's span and `ctx` names it in messages ("" for the top level).
    pub(super) fn check_keys(
        &mut self,
        table: &mut DeTable<'_>,
        span: &Range<usize>,
        schema: Schema,
        ctx: &str,
    ) {
        let fields = (schema.fields)();
        // The table's start as `removed` records it; the top level has none that a
        // `Spanned` raw struct would carry, so it is `usize::MAX`.
        let at = if ctx.is_empty() {
            usize::MAX
        } else {
            span.start
        };
        let mut remove: Vec<String> = Vec::new();
        for (key, value) in table.iter_mut() {
            let name: &str = key.get_ref();
            if !fields.contains(&name) {
                let place = if ctx.is_empty() {
                    "at the top level".to_string()
                } else {
                    format!("in {ctx}")
                };
                let expected: Vec<String> = fields.iter().map(|f| format!("`{f}`")).collect();
                self.error(
                    key.span(),
                    format!(
                        "unknown key `{name}` {place}; expected one of {}",
                        expected.join(", ")
                    ),
                );
                remove.push(name.to_string());
                continue;
            }
            let shape = schema
                .children
                .iter()
                .find(|(k, _)| *k == name)
                .map_or(Shape::Leaf, |(_, shape)| *shape);
            let value_span = value.span();
            let ok = self.check_shape(shape, value.get_mut(), value_span, ctx, name);
            if !ok {
                self.removed.push((at, name.to_string()));
                remove.push(name.to_string());
            }
        }
        for key in remove {
            table.remove(key.as_str());
        }
    }

    /// Checks that the value of the key `name` of the table `ctx` names has the shape the
    /// schema gives it, recursing into tables; reports a value of the wrong shape and
    /// returns `false` so that `check_keys` removes it. `value_span` is the value's span.
    fn check_shape(
        &mut self,
        shape: Shape,
        value: &mut DeValue<'_>,
        value_span: Range<usize>,
        ctx: &str,
        name: &str,
    ) -> bool {
        match (shape, value) {
            (Shape::Leaf, _) | (Shape::Leaves, DeValue::Array(_)) => true,
            (Shape::Table(child), DeValue::Table(t)) => {
                let child_ctx = if ctx.is_empty() {
                    format!("[{name}]")
                } else {
                    dotted(ctx, name)
                };
                self.check_keys(t, &value_span, child, &child_ctx);
                true
            }
            (Shape::Tables(child, label), DeValue::Array(list)) => {
                match list.iter().position(|e| !e.get_ref().is_table()) {
                    Some(i) => {
                        let e = &list[i];
                        self.error(
                            e.span(),
                            format!(
                                "{label} {}: expected a table, found {}; every entry of {} must be a table",
                                i + 1,
                                describe_value(e.get_ref()),
                                dotted(ctx, name)
                            ),
                        );
                        false
                    }
                    None => {
                        for (i, e) in list.iter_mut().enumerate() {
                            let e_span = e.span();
                            if let DeValue::Table(t) = e.get_mut() {
                                self.check_keys(t, &e_span, child, &format!("{label} {}", i + 1));
                            }
                        }
                        true
                    }
                }
            }
            (Shape::Map(child, label), DeValue::Table(t)) => {
                let mut bad = Vec::new();
                for (k, e) in t.iter_mut() {
                    let e_span = e.span();
                    let entry = format!("{label} {}", k.get_ref());
                    match e.get_mut() {
                        DeValue::Table(inner) => self.check_keys(inner, &e_span, child, &entry),
                        other => {
                            self.error(
                                e_span,
                                format!(
                                    "{entry}: expected a table, found {}",
                                    describe_value(other)
                                ),
                            );
                            bad.push(k.get_ref().to_string());
                        }
                    }
                }
                for k in bad {
                    t.remove(k.as_str());
                }
                true
            }
            (Shape::Map(..), v) => {
                self.error(
                    value_span,
                    format!(
                        "{}: expected a table of named tables, found {}",
                        dotted(ctx, name),
                        describe_value(v)
                    ),
                );
                false
            }
            (Shape::Leaves, v) => {
                self.error(
                    value_span,
                    format!(
                        "{}: expected an array, found {}",
                        dotted(ctx, name),
                        describe_value(v)
                    ),
                );
                false
            }
            (Shape::Table(_), v) => {
                self.error(
                    value_span,
                    format!(
                        "{}: expected a table, found {}",
                        dotted(ctx, name),
                        describe_value(v)
                    ),
                );
                false
            }
            (Shape::Tables(..), v) => {
                let path = dotted(ctx, name);
                self.error(
                    value_span,
                    format!(
                        "{path}: expected an array of tables such as [[{path}]], found {}",
                        describe_value(v)
                    ),
                );
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::tests::{errs, MINIMAL};

    #[test]
    fn unknown_keys_are_named_with_the_expected_ones() {
        let e = errs(&MINIMAL.replace("duration = \"1h\"", "duration = \"1h\"\nwieght = 5"));
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].0, e[0].1), (9, 1));
        assert!(e[0].2.starts_with("unknown key `wieght`"), "{}", e[0].2);
        assert!(
            e[0].2.contains("`weight`") && e[0].2.contains("`checkpoint`"),
            "{}",
            e[0].2
        );
    }

    #[test]
    fn the_key_check_reads_the_keys_from_the_raw_structs() {
        assert_eq!(
            fields_of::<RawStage>(),
            ["weight", "duration", "checkpoint", "gates", "approvals"]
        );
        assert_eq!(
            fields_of::<RawCheck>(),
            ["name", "http", "expect_status", "command", "timeout"]
        );
        assert_eq!(
            fields_of::<RawDeployment>(),
            ["id", "service", "environment", "start"]
        );
        // Every key the schema gives a shape is a key of its struct, and every struct has
        // keys (a probe that failed would leave none and make every key unknown).
        fn walk(schema: Schema, ctx: &str, children: &mut usize) {
            let fields = (schema.fields)();
            assert!(!fields.is_empty(), "{ctx}: no keys");
            for (key, shape) in schema.children {
                assert!(fields.contains(key), "{ctx}: `{key}` is not a key");
                *children += 1;
                if let Shape::Table(s) | Shape::Tables(s, _) | Shape::Map(s, _) = shape {
                    walk(*s, key, children);
                }
            }
        }
        let mut children = 0;
        walk(PLAN, "plan", &mut children);
        assert_eq!(children, 47, "every table and array of the raw structs");
    }
}
