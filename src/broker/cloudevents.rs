//! Integration events on the wire between processes: CloudEvents 1.0 in the
//! JSON event format, so a channel written in any language can produce or
//! consume them.
//!
//! ```json
//! {"specversion":"1.0","id":"evt_…","source":"orderdock/ecommerce",
//!  "type":"orderdock.order_placed.v1","subject":"ord_…",
//!  "time":"2026-11-29T21:30:00.123Z","datacontenttype":"application/json",
//!  "sequence":3,"data":{"order_placed":{…}}}
//! ```
//!
//! `id` is the event id (receivers dedupe on it), `subject` the order id,
//! `sequence` (an extension attribute) the event's position among its
//! sender's events for that order, and the `.v1` of `type` the schema version.

use serde::{Deserialize, Serialize};

use crate::events::{ContextName, EventEnvelope, IntegrationEvent, Timestamp};

/// The CloudEvents version written and accepted.
pub const SPEC_VERSION: &str = "1.0";
/// Prefix of every event type (`orderdock.<kind>.v<schema>`).
pub const TYPE_PREFIX: &str = "orderdock.";

/// Why bytes are not an Orderdock CloudEvent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not JSON of the CloudEvents shape, or a field of the wrong type.
    #[error("not a CloudEvent: {0}")]
    Shape(String),
    /// A CloudEvents attribute has a value Orderdock does not produce.
    #[error("bad {attribute}: {value}")]
    Attribute {
        /// The attribute.
        attribute: &'static str,
        /// Its value.
        value: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    specversion: String,
    id: String,
    source: String,
    #[serde(rename = "type")]
    kind: String,
    subject: String,
    time: String,
    datacontenttype: String,
    sequence: u32,
    data: IntegrationEvent,
}

/// The `source` attribute of events sent by `context`.
pub fn source(context: ContextName) -> String {
    format!("orderdock/{}", context.as_str())
}

/// The NATS subject an event is published on: `orderdock.<context>.<kind>`.
pub fn subject(envelope: &EventEnvelope) -> String {
    format!("orderdock.{}.{}", envelope.source.as_str(), envelope.event.kind())
}

/// Encodes `envelope` as a CloudEvent (JSON).
///
/// # Errors
/// Only if serialization fails, which would be a programming error.
pub fn encode(envelope: &EventEnvelope) -> Result<Vec<u8>, serde_json::Error> {
    let wire = Wire {
        specversion: SPEC_VERSION.to_owned(),
        id: envelope.event_id.to_string(),
        source: source(envelope.source),
        kind: format!("{TYPE_PREFIX}{}.v{}", envelope.event.kind(), envelope.schema_version),
        subject: envelope.order_id.to_string(),
        time: rfc3339(envelope.occurred_at),
        datacontenttype: "application/json".to_owned(),
        sequence: envelope.sequence,
        data: envelope.event.clone(),
    };
    serde_json::to_vec(&wire)
}

/// Decodes a CloudEvent written by [`encode`] (or by another producer of the same shape).
///
/// # Errors
/// [`DecodeError`] naming what is wrong; nothing here panics on any input.
pub fn decode(bytes: &[u8]) -> Result<EventEnvelope, DecodeError> {
    let wire: Wire = serde_json::from_slice(bytes).map_err(|err| DecodeError::Shape(err.to_string()))?;
    let bad = |attribute: &'static str, value: &str| DecodeError::Attribute { attribute, value: value.to_owned() };
    if wire.specversion != SPEC_VERSION {
        return Err(bad("specversion", &wire.specversion));
    }
    let source = match wire.source.as_str() {
        "orderdock/ecommerce" => ContextName::Ecommerce,
        "orderdock/fulfillment" => ContextName::Fulfillment,
        other => return Err(bad("source", other)),
    };
    let (kind, version) = wire
        .kind
        .strip_prefix(TYPE_PREFIX)
        .and_then(|rest| rest.rsplit_once(".v"))
        .ok_or_else(|| bad("type", &wire.kind))?;
    if kind != wire.data.kind() {
        return Err(bad("type", &wire.kind));
    }
    let schema_version: u16 = version.parse().map_err(|_| bad("type", &wire.kind))?;
    Ok(EventEnvelope {
        event_id: wire.id.parse().map_err(|_| bad("id", &wire.id))?,
        order_id: wire.subject.parse().map_err(|_| bad("subject", &wire.subject))?,
        sequence: wire.sequence,
        occurred_at: parse_rfc3339(&wire.time).ok_or_else(|| bad("time", &wire.time))?,
        source,
        schema_version,
        event: wire.data,
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01 (`civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2026-11-29T21:30:00.123Z`.
pub fn rfc3339(at: Timestamp) -> String {
    let millis = i64::try_from(at.as_millis()).unwrap_or(i64::MAX);
    let (days, rest) = (millis.div_euclid(86_400_000), millis.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second, milli) = (rest / 3_600_000, rest / 60_000 % 60, rest / 1000 % 60, rest % 1000);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}Z")
}

/// Reads the UTC form [`rfc3339`] writes (`…Z`, with or without milliseconds).
pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut date_parts = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (date_parts.next()??, date_parts.next()??, date_parts.next()??);
    let (clock, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut clock_parts = clock.split(':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (clock_parts.next()??, clock_parts.next()??, clock_parts.next()??);
    if date_parts.next().is_some() || clock_parts.next().is_some() || fraction.is_empty() || fraction.len() > 9 {
        return None;
    }
    let in_range = (1970..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && (0..24).contains(&hour)
        && (0..60).contains(&minute)
        && (0..61).contains(&second);
    if !in_range || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let milli: i64 = format!("{fraction:0<3}")[..3].parse().ok()?;
    let millis = days_from_civil(year, month, day) * 86_400_000 + ((hour * 60 + minute) * 60 + second) * 1000 + milli;
    u64::try_from(millis).ok().map(Timestamp::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventId, OrderId, EVENT_SCHEMA_VERSION};

    fn envelope() -> EventEnvelope {
        EventEnvelope {
            event_id: EventId::from_raw(0x1234_5678_9abc),
            order_id: OrderId::from_raw(42),
            sequence: 3,
            occurred_at: Timestamp::from_millis(1_795_987_800_123),
            source: ContextName::Ecommerce,
            schema_version: EVENT_SCHEMA_VERSION,
            event: IntegrationEvent::PaymentCaptured {
                amount: crate::events::Money::new(1200, crate::events::Currency::EUR).unwrap(),
            },
        }
    }

    #[test]
    fn an_envelope_survives_the_wire_and_names_its_type_and_subject() {
        let bytes = encode(&envelope()).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["type"], "orderdock.payment_captured.v1");
        assert_eq!(json["source"], "orderdock/ecommerce");
        assert_eq!(json["subject"], OrderId::from_raw(42).to_string());
        assert_eq!(json["id"], EventId::from_raw(0x1234_5678_9abc).to_string());
        assert_eq!(json["time"], "2026-11-29T21:30:00.123Z");
        assert_eq!(decode(&bytes).unwrap(), envelope());
        assert_eq!(subject(&envelope()), "orderdock.ecommerce.payment_captured");
    }

    #[test]
    fn foreign_or_inconsistent_events_are_refused() {
        let good: serde_json::Value = serde_json::from_slice(&encode(&envelope()).unwrap()).unwrap();
        for (field, value) in [
            ("specversion", serde_json::json!("0.3")),
            ("source", serde_json::json!("elsewhere")),
            ("type", serde_json::json!("orderdock.order_placed.v1")),
            ("type", serde_json::json!("payment_captured")),
            ("subject", serde_json::json!("nobody")),
            ("time", serde_json::json!("yesterday")),
            ("id", serde_json::json!(7)),
        ] {
            let mut bad = good.clone();
            bad[field] = value;
            assert!(decode(&serde_json::to_vec(&bad).unwrap()).is_err(), "{field} accepted");
        }
        assert!(decode(b"{").is_err());
    }

    #[test]
    fn times_round_trip_across_centuries_and_leap_days() {
        for millis in [0, 951_782_400_000, 1_709_164_800_999, 4_102_444_799_999, 253_402_300_799_000] {
            let at = Timestamp::from_millis(millis);
            assert_eq!(parse_rfc3339(&rfc3339(at)), Some(at), "{}", rfc3339(at));
        }
        assert_eq!(rfc3339(Timestamp::from_millis(951_782_400_000)), "2000-02-29T00:00:00.000Z");
        assert_eq!(parse_rfc3339("2026-11-29T21:30:00Z"), Some(Timestamp::from_millis(1_795_987_800_000)));
        assert_eq!(parse_rfc3339("2026-13-01T00:00:00Z"), None);
    }
}
