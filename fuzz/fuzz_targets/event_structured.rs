//! Event parsing from a valid Trusted Advisor event (events/01-security-group-port-22-open.json)
//! whose fields the fuzzer keeps, removes or replaces (by shaped strings: times, ARNs, regions,
//! statuses; or by any JSON), so most inputs pass the envelope checks and exercise status, time,
//! resource identity, region, account and item-size handling. The empty input is the valid event.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tarem_fuzz::{EVENT_SKELETON, Field, FuzzJson, FuzzStr, now_from, object_mut, skeleton};
use tarem_shared::finding::finding_from_event;

#[derive(Arbitrary, Debug)]
enum Part<T> {
    Keep(T),
    Remove,
    Replace(FuzzJson),
}

#[derive(Arbitrary, Debug)]
struct Input {
    now_millis: i64,
    source: Field,
    detail_type: Field,
    time: Field,
    region: Field,
    account: Field,
    id: Field,
    detail: Part<Detail>,
}

#[derive(Arbitrary, Debug)]
struct Detail {
    check_name: Field,
    status: Field,
    resource_id: Field,
    item: Part<Item>,
}

#[derive(Arbitrary, Debug)]
struct Item {
    status: Field,
    region: Field,
    resource: Field,
    last_updated_time: Field,
    protocol: Field,
    port: Field,
    source: Field,
    /// A long column, to reach the item-size limit without a huge input. Before `extra`, which
    /// tends to take the rest of the input.
    long_column: Option<(u8, u32)>,
    /// Columns added (or overwriting the ones above), e.g. names that hold no letter.
    extra: Vec<(FuzzStr, FuzzJson)>,
}

fn apply<T>(
    part: &Part<T>,
    parent: &mut serde_json::Map<String, Value>,
    key: &str,
    keep: impl FnOnce(&T, &mut serde_json::Map<String, Value>),
) {
    match part {
        Part::Keep(inner) => keep(inner, object_mut(parent, key)),
        Part::Remove => {
            parent.remove(key);
        }
        Part::Replace(value) => {
            parent.insert(key.to_owned(), value.to_value());
        }
    }
}

fuzz_target!(|input: Input| {
    let mut event = skeleton(EVENT_SKELETON);
    input.source.apply(&mut event, "source");
    input.detail_type.apply(&mut event, "detail-type");
    input.time.apply(&mut event, "time");
    input.region.apply(&mut event, "region");
    input.account.apply(&mut event, "account");
    input.id.apply(&mut event, "id");
    apply(&input.detail, &mut event, "detail", |detail, object| {
        detail.check_name.apply(object, "check-name");
        detail.status.apply(object, "status");
        detail.resource_id.apply(object, "resource_id");
        apply(&detail.item, object, "check-item-detail", |item, object| {
            item.status.apply(object, "Status");
            item.region.apply(object, "Region");
            item.resource.apply(object, "Resource");
            item.last_updated_time.apply(object, "Last Updated Time");
            item.protocol.apply(object, "Protocol");
            item.port.apply(object, "Port");
            item.source.apply(object, "Source");
            for (name, value) in &item.extra {
                object.insert(name.text(), value.to_value());
            }
            if let Some((byte, len)) = item.long_column {
                // Up to ~512 KiB: either side of DynamoDB's 400 KB item limit.
                let len = (len as usize) % (512 * 1024);
                let c = char::from(b'a' + byte % 26);
                object.insert("Notes".into(), Value::String(c.to_string().repeat(len)));
            }
        });
    });
    let _ = finding_from_event(
        &Value::Object(event),
        now_from(input.now_millis),
        &Default::default(),
    );
});
