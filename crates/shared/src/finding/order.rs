//! The total order of a finding's states (module docs of [`crate::finding`], "Order").

use super::Status;

/// A finding's place in the total order of its states (module docs, "Order"): item time, then
/// event time, then status rank. The one comparison both table adapters use: the in-memory one
/// compares these values, DynamoDB compares their [`Order::encode`]d strings, which sort the
/// same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Order {
    item_millis: i64,
    event_millis: i64,
    rank: u8,
}

/// Fifteen digits of milliseconds reach the year 33658: every encoded key has the same width, so
/// string order is numeric order.
const ORDER_MAX_MILLIS: i64 = 999_999_999_999_999;

impl Order {
    /// The order of an observation. Event times are at least 1 ms, so every observation sorts
    /// after a [legacy](Order::legacy) row with the same item time.
    pub fn new(item_millis: i64, event_millis: i64, status: Status) -> Self {
        Self {
            item_millis: item_millis.clamp(0, ORDER_MAX_MILLIS),
            event_millis: event_millis.clamp(1, ORDER_MAX_MILLIS),
            rank: status.rank(),
        }
    }

    /// A row written by another tool (AWS's reference writes only `lastUpdatedTimeEpoch`): its
    /// item time, nothing else known.
    pub fn legacy(item_millis: i64) -> Self {
        Self {
            item_millis: item_millis.clamp(0, ORDER_MAX_MILLIS),
            event_millis: 0,
            rank: 0,
        }
    }

    /// `iiiiiiiiiiiiiii.eeeeeeeeeeeeeee.r`: fixed width, so strings compare as the values do.
    pub fn encode(&self) -> String {
        format!(
            "{:015}.{:015}.{}",
            self.item_millis, self.event_millis, self.rank
        )
    }

    pub fn decode(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let (item, event, rank) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || item.len() != 15 || event.len() != 15 || rank.len() != 1 {
            return None;
        }
        Some(Self {
            item_millis: item.parse().ok()?,
            event_millis: event.parse().ok()?,
            rank: rank.parse().ok()?,
        })
    }

    pub fn item_millis(&self) -> i64 {
        self.item_millis
    }
}

/// A stored row's place in the order, from its attributes: its order key; a row without one
/// (another tool's) is a [legacy](Order::legacy) row at `findingTimeMillis`, else at
/// `lastUpdatedTimeEpoch` seconds. `None` when the row has none of them.
pub fn stored_order(
    order_key: Option<&str>,
    finding_time_millis: Option<i64>,
    epoch_seconds: Option<i64>,
) -> Option<Order> {
    order_key.and_then(Order::decode).or_else(|| {
        finding_time_millis
            .or(epoch_seconds.map(|seconds| seconds.saturating_mul(1000)))
            .map(Order::legacy)
    })
}

/// What a tracker write does with a finding, given the stored row's order: the one rule both
/// table adapters follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Later in the order (or no row yet): it replaces the row.
    Newer,
    /// The very same observation: nothing changes.
    Same,
    /// Earlier in the order: dropped.
    Older,
}

pub fn placement(new: Order, stored: Option<Order>) -> Placement {
    match stored {
        None => Placement::Newer,
        Some(stored) => match new.cmp(&stored) {
            std::cmp::Ordering::Greater => Placement::Newer,
            std::cmp::Ordering::Equal => Placement::Same,
            std::cmp::Ordering::Less => Placement::Older,
        },
    }
}
