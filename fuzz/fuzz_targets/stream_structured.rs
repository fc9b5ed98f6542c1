//! Stream-image decoding from the valid INSERT record of events/lambda/results-handler.json whose
//! envelope fields and image attributes the fuzzer keeps, removes or replaces, with typed
//! DynamoDB attributes (S, N, BOOL, NULL, M, L, SS, NS, B) or any JSON, so most inputs reach
//! serde_dynamo's item decoding of the Finding. The empty input is the valid record.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use tarem_fuzz::{Field, FuzzJson, FuzzNumber, FuzzStr, STREAM_BATCH, object_mut, skeleton};
use tarem_shared::stream::decode_record;

/// A DynamoDB attribute in its typed JSON.
#[derive(Arbitrary, Debug)]
enum Attr {
    S(FuzzStr),
    N(FuzzNumber),
    Bool(bool),
    Null(bool),
    M(Vec<(FuzzStr, Attr)>),
    L(Vec<Attr>),
    Ss(Vec<FuzzStr>),
    Ns(Vec<FuzzNumber>),
    B(String),
    /// Several type tags in one attribute, or an unknown one.
    Odd(Vec<(FuzzStr, FuzzJson)>),
}

impl Attr {
    fn to_value(&self, depth: usize) -> Value {
        if depth > 5 {
            return json!({"NULL": true});
        }
        match self {
            Attr::S(s) => json!({"S": s.text()}),
            Attr::N(n) => json!({"N": n.text()}),
            Attr::Bool(b) => json!({"BOOL": b}),
            Attr::Null(b) => json!({"NULL": b}),
            Attr::M(entries) => json!({"M": entries
                .iter()
                .map(|(k, v)| (k.text(), v.to_value(depth + 1)))
                .collect::<Map<_, _>>()}),
            Attr::L(items) => {
                json!({"L": items.iter().map(|v| v.to_value(depth + 1)).collect::<Vec<_>>()})
            }
            Attr::Ss(items) => json!({"SS": items.iter().map(FuzzStr::text).collect::<Vec<_>>()}),
            Attr::Ns(items) => {
                json!({"NS": items.iter().map(FuzzNumber::text).collect::<Vec<_>>()})
            }
            Attr::B(text) => json!({"B": text}),
            Attr::Odd(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.text(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum AttrChange {
    Keep,
    Remove,
    Attr(Attr),
    Json(FuzzJson),
}

/// The attributes of a tracker row (crates/shared/src/finding.rs, `Finding`).
const ROW_ATTRIBUTES: [&str; 13] = [
    "hashKey",
    "resource",
    "checkName",
    "resourceStatus",
    "lastUpdatedTime",
    "lastUpdatedTimeEpoch",
    "findingTimeMillis",
    "region",
    "accountId",
    "checkItemDetail",
    "source",
    "eventId",
    "trackedAt",
];

#[derive(Arbitrary, Debug)]
enum Image {
    /// The sample row with some attributes changed.
    Row {
        changes: [AttrChange; 13],
        extra: Vec<(FuzzStr, Attr)>,
    },
    Remove,
    Json(FuzzJson),
}

#[derive(Arbitrary, Debug)]
struct Input {
    event_name: Field,
    event_id: Field,
    event_source: Field,
    aws_region: Field,
    creation_time: Field,
    sequence_number: Field,
    size_bytes: Field,
    view_type: Field,
    keys: Field,
    new_image: Image,
    /// Absent in the sample (an INSERT); `Row` adds one built from the new image's row.
    old_image: Option<Image>,
}

fn build_image(image: &Image, row: &Map<String, Value>) -> Option<Value> {
    match image {
        Image::Row { changes, extra } => {
            let mut row = row.clone();
            for (change, name) in changes.iter().zip(ROW_ATTRIBUTES) {
                match change {
                    AttrChange::Keep => {}
                    AttrChange::Remove => {
                        row.remove(name);
                    }
                    AttrChange::Attr(attr) => {
                        row.insert(name.to_owned(), attr.to_value(0));
                    }
                    AttrChange::Json(value) => {
                        row.insert(name.to_owned(), value.to_value());
                    }
                }
            }
            for (name, attr) in extra {
                row.insert(name.text(), attr.to_value(0));
            }
            Some(Value::Object(row))
        }
        Image::Remove => None,
        Image::Json(value) => Some(value.to_value()),
    }
}

fuzz_target!(|input: Input| {
    let batch = skeleton(STREAM_BATCH);
    let Some(Value::Object(mut record)) = batch
        .get("Records")
        .and_then(|records| records.get(0))
        .cloned()
    else {
        panic!("the sample batch has no record");
    };
    input.event_name.apply(&mut record, "eventName");
    input.event_id.apply(&mut record, "eventID");
    input.event_source.apply(&mut record, "eventSource");
    input.aws_region.apply(&mut record, "awsRegion");
    let change = object_mut(&mut record, "dynamodb");
    input
        .creation_time
        .apply(change, "ApproximateCreationDateTime");
    input.sequence_number.apply(change, "SequenceNumber");
    input.size_bytes.apply(change, "SizeBytes");
    input.view_type.apply(change, "StreamViewType");
    input.keys.apply(change, "Keys");
    let row = match change.get("NewImage") {
        Some(Value::Object(row)) => row.clone(),
        _ => Map::new(),
    };
    match build_image(&input.new_image, &row) {
        Some(image) => change.insert("NewImage".into(), image),
        None => change.remove("NewImage"),
    };
    if let Some(old) = &input.old_image {
        if let Some(image) = build_image(old, &row) {
            change.insert("OldImage".into(), image);
        }
    }
    let _ = decode_record(&Value::Object(record));
});
