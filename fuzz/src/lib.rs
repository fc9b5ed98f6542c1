//! Shared pieces of the fuzz targets: fuzzer-chosen JSON values and strings, and the valid
//! skeletons (a Trusted Advisor event, a tracker stream record) whose fields the structured
//! targets replace, so that most inputs get past the first checks and reach deep code.
//!
//! The targets assert nothing beyond "no panic" and the properties the brief names; errors from
//! the library are expected and fine.

use arbitrary::Arbitrary;
use chrono::{DateTime, Utc};
use serde_json::{Map, Number, Value};

/// The valid event the structured event target starts from.
pub const EVENT_SKELETON: &str = include_str!("../../events/01-security-group-port-22-open.json");
/// The results handler's sample batch: one INSERT of a tracker row.
pub const STREAM_BATCH: &str = include_str!("../../events/lambda/results-handler.json");

/// Deepest nesting a generated value gets; deeper levels become `null`.
const MAX_DEPTH: usize = 6;

/// Any JSON value.
#[derive(Arbitrary, Debug, Clone)]
pub enum FuzzJson {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(FuzzStr),
    Array(Vec<FuzzJson>),
    Object(Vec<(FuzzStr, FuzzJson)>),
}

impl FuzzJson {
    pub fn to_value(&self) -> Value {
        self.at_depth(0)
    }

    fn at_depth(&self, depth: usize) -> Value {
        if depth > MAX_DEPTH {
            return Value::Null;
        }
        match self {
            FuzzJson::Null => Value::Null,
            FuzzJson::Bool(b) => Value::Bool(*b),
            FuzzJson::Int(n) => Value::from(*n),
            FuzzJson::UInt(n) => Value::from(*n),
            // NaN and infinities are not JSON.
            FuzzJson::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            FuzzJson::Str(s) => Value::String(s.text()),
            FuzzJson::Array(items) => {
                Value::Array(items.iter().map(|v| v.at_depth(depth + 1)).collect())
            }
            FuzzJson::Object(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.text(), v.at_depth(depth + 1)))
                    .collect::<Map<_, _>>(),
            ),
        }
    }
}

/// A string, raw or shaped like the values the parsers look for (times, ARNs, regions, numbers),
/// so that the fuzzer reaches the branches behind those shapes quickly.
#[derive(Arbitrary, Debug, Clone)]
pub enum FuzzStr {
    Raw(String),
    Time {
        year: i32,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        fraction: Option<u32>,
        offset: TimeOffset,
        padding: bool,
    },
    Arn {
        partition: String,
        service: String,
        region: RegionStr,
        account: String,
        resource: String,
    },
    Region(RegionStr),
    Number(FuzzNumber),
    Known(Known),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum TimeOffset {
    Z,
    None,
    Minutes(i16),
    Raw(String),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum RegionStr {
    Valid(u8),
    Raw(String),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum FuzzNumber {
    Int(i64),
    UInt(u64),
    Float(f64),
    Raw(String),
}

/// Strings that mean something to the code under test.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Known {
    Red,
    Yellow,
    Green,
    Ok,
    Warn,
    Error,
    Empty,
    Blank,
    TaSource,
    TaDetailType,
    Event,
    Reconcile,
    Dollar,
}

const REGIONS: [&str; 6] = [
    "us-east-1",
    "eu-west-1",
    "ap-southeast-2",
    "us-gov-west-1",
    "cn-north-1",
    "il-central-1",
];

impl RegionStr {
    fn text(&self) -> String {
        match self {
            RegionStr::Valid(i) => REGIONS[usize::from(*i) % REGIONS.len()].to_owned(),
            RegionStr::Raw(s) => s.clone(),
        }
    }
}

impl FuzzNumber {
    pub fn text(&self) -> String {
        match self {
            FuzzNumber::Int(n) => n.to_string(),
            FuzzNumber::UInt(n) => n.to_string(),
            FuzzNumber::Float(f) => f.to_string(),
            FuzzNumber::Raw(s) => s.clone(),
        }
    }
}

impl FuzzStr {
    pub fn text(&self) -> String {
        match self {
            FuzzStr::Raw(s) => s.clone(),
            FuzzStr::Time {
                year,
                month,
                day,
                hour,
                minute,
                second,
                fraction,
                offset,
                padding,
            } => {
                let mut text =
                    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}");
                if let Some(fraction) = fraction {
                    text.push_str(&format!(".{fraction}"));
                }
                match offset {
                    TimeOffset::Z => text.push('Z'),
                    TimeOffset::None => {}
                    TimeOffset::Minutes(m) => {
                        let sign = if *m < 0 { '-' } else { '+' };
                        let m = m.unsigned_abs();
                        text.push_str(&format!("{sign}{:02}:{:02}", m / 60, m % 60));
                    }
                    TimeOffset::Raw(s) => text.push_str(s),
                }
                if *padding {
                    format!("  {text}\t")
                } else {
                    text
                }
            }
            FuzzStr::Arn {
                partition,
                service,
                region,
                account,
                resource,
            } => format!(
                "arn:{partition}:{service}:{}:{account}:{resource}",
                region.text()
            ),
            FuzzStr::Region(region) => region.text(),
            FuzzStr::Number(n) => n.text(),
            FuzzStr::Known(known) => match known {
                Known::Red => "Red",
                Known::Yellow => "Yellow",
                Known::Green => "Green",
                Known::Ok => "OK",
                Known::Warn => "WARN",
                Known::Error => "ERROR",
                Known::Empty => "",
                Known::Blank => " \t\n",
                Known::TaSource => "aws.trustedadvisor",
                Known::TaDetailType => "Trusted Advisor Check Item Refresh Notification",
                Known::Event => "event",
                Known::Reconcile => "reconcile",
                Known::Dollar => "$",
            }
            .to_owned(),
        }
    }
}

/// What to do with one field of a skeleton. `Keep` is the first variant, so the empty input (and
/// any input that runs out of bytes) leaves the skeleton valid.
#[derive(Arbitrary, Debug, Clone)]
pub enum Field {
    Keep,
    Remove,
    Text(FuzzStr),
    Json(FuzzJson),
}

impl Field {
    /// Applies the change to `object[key]`.
    pub fn apply(&self, object: &mut Map<String, Value>, key: &str) {
        match self {
            Field::Keep => {}
            Field::Remove => {
                object.remove(key);
            }
            Field::Text(text) => {
                object.insert(key.to_owned(), Value::String(text.text()));
            }
            Field::Json(value) => {
                object.insert(key.to_owned(), value.to_value());
            }
        }
    }
}

/// The clock reading handed to the code under test.
pub fn now_from(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap_or(DateTime::UNIX_EPOCH)
}

/// Parses a skeleton constant; they are checked-in, valid JSON objects.
pub fn skeleton(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(object)) => object,
        _ => panic!("skeleton is not a JSON object"),
    }
}

/// `parent[key]` as a mutable object, inserting or replacing anything else by an empty object.
pub fn object_mut<'a>(parent: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = parent
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(object) => object,
        _ => unreachable!("just made an object"),
    }
}
