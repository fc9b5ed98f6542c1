//! Stream-image decoding from raw bytes: a DynamoDB stream record (or a whole batch under
//! "Records", as Lambda delivers it) must decode or give a DecodeError, never panic.
//! Seeded from events/lambda/results-handler.json.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tarem_shared::stream::decode_record;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    match value.get("Records").and_then(Value::as_array) {
        Some(records) => {
            for record in records {
                let _ = decode_record(record);
            }
        }
        None => {
            let _ = decode_record(&value);
        }
    }
});
