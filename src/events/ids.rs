//! Typed identifiers shared by both contexts.
//!
//! Random identifiers are 128-bit: 48 bits of milliseconds since the Unix epoch
//! followed by 80 random bits (the ULID layout), so they sort roughly by
//! creation time and cannot be guessed. They print as `prefix_` plus 32 hex
//! digits and parse back from that form only; serde goes through the string.
//!
//! Operator-chosen names (a SKU, a warehouse, a bin code) are validated
//! strings: 1 to [`NAME_LEN_MAX`] characters of `[A-Za-z0-9._-]`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Timestamp;

/// Longest operator-chosen name (SKU, warehouse id, bin code), in bytes.
pub const NAME_LEN_MAX: usize = 64;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The prefix before `_` is not the one this kind of id uses.
    #[error("expected an id starting with `{expected}_`")]
    WrongPrefix {
        /// The prefix this id kind uses.
        expected: &'static str,
    },
    /// The part after the prefix is not 32 hex digits.
    #[error("the id must end in 32 hexadecimal digits")]
    BadDigits,
    /// A name is empty, too long or has characters outside `[A-Za-z0-9._-]`.
    #[error("a name must be 1 to {NAME_LEN_MAX} characters of letters, digits, '.', '_' or '-'")]
    BadName,
}

/// 128 random bits from the operating system's generator, for secrets.
///
/// # Errors
/// When the operating system's generator fails (it does not on Linux once booted).
pub fn random_secret() -> Result<u128, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(u128::from_le_bytes(bytes))
}

/// 80 random bits from the operating system's generator.
fn random_bits() -> u128 {
    let mut bytes = [0u8; 16];
    // The OS generator does not fail on Linux once booted; if it ever did, the
    // identifier would still be unique through the time prefix and a process counter.
    if getrandom::fill(&mut bytes).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(1);
        bytes[..8].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    }
    u128::from_le_bytes(bytes) & ((1u128 << 80) - 1)
}

/// Builds a fresh 128-bit identifier for the instant `now`.
pub(crate) fn fresh_raw(now: Timestamp) -> u128 {
    (u128::from(now.as_millis() & 0xFFFF_FFFF_FFFF) << 80) | random_bits()
}

/// `n` as 32 lower-case hex digits (what `{:032x}` prints, without the
/// formatter's padding logic: ids are printed for every record key).
fn hex32(n: u128) -> Hex32 {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 32];
    for (i, digit) in digits.iter_mut().enumerate() {
        *digit = DIGITS[((n >> (4 * (31 - i))) & 0xF) as usize];
    }
    Hex32(digits)
}

/// 32 hex digits on the stack.
struct Hex32([u8; 32]);

impl Hex32 {
    fn as_str(&self) -> &str {
        // Only ASCII digits and letters were written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

macro_rules! random_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(u128);

        impl $name {
            /// The prefix this id prints with.
            pub const PREFIX: &'static str = $prefix;

            /// A new random id stamped with `now`.
            pub fn generate(now: Timestamp) -> Self {
                Self(fresh_raw(now))
            }

            /// The id with these 128 bits (stores and tests).
            pub const fn from_raw(raw: u128) -> Self {
                Self(raw)
            }

            /// The 128 bits of the id (store keys).
            pub const fn as_raw(self) -> u128 {
                self.0
            }

            /// The id derived from `base` and a small discriminator: a deterministic child id.
            pub fn derived(base: u128, salt: u32) -> Self {
                // Mixing keeps derived ids distinct for different salts while keeping
                // the time prefix of the base, so they still sort by creation time.
                let mixed = base ^ (u128::from(salt).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835) >> 48);
                Self(mixed)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str($prefix)?;
                f.write_str("_")?;
                f.write_str(hex32(self.0).as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let digits = s
                    .strip_prefix($prefix)
                    .and_then(|rest| rest.strip_prefix('_'))
                    .ok_or(IdError::WrongPrefix { expected: $prefix })?;
                if digits.len() != 32 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(IdError::BadDigits);
                }
                u128::from_str_radix(digits, 16).map(Self).map_err(|_| IdError::BadDigits)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                if serializer.is_human_readable() {
                    serializer.collect_str(self)
                } else {
                    serializer.serialize_u128(self.0)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                if deserializer.is_human_readable() {
                    let text = String::deserialize(deserializer)?;
                    text.parse().map_err(serde::de::Error::custom)
                } else {
                    u128::deserialize(deserializer).map(Self)
                }
            }
        }
    };
}

random_id!(
    /// A customer's order in the e-commerce context.
    OrderId,
    "ord"
);
random_id!(
    /// Fulfillment's unit of work for one order from one channel.
    FulfillmentOrderId,
    "ful"
);
random_id!(
    /// One parcel: a warehouse allocation packed and handed to a carrier.
    ShipmentId,
    "shp"
);
random_id!(
    /// One integration event; receivers dedupe on it.
    EventId,
    "evt"
);
random_id!(
    /// A hold on a bin's stock.
    ReservationId,
    "rsv"
);
random_id!(
    /// A customer account.
    CustomerId,
    "cus"
);

impl FulfillmentOrderId {
    /// The fulfillment order that serves e-commerce order `order` (one per order from the web channel).
    pub fn for_order(order: OrderId) -> Self {
        Self::from_raw(order.as_raw())
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= NAME_LEN_MAX
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

macro_rules! name_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        ///
        /// Shared, not copied: a clone is a reference count (names travel in
        /// every plan item, hold, action and event line).
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(std::sync::Arc<str>);

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl $name {
            /// Validates and wraps a name.
            ///
            /// # Errors
            /// [`IdError::BadName`] when empty, longer than [`NAME_LEN_MAX`] or with other characters.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                if valid_name(s) {
                    Ok(Self(std::sync::Arc::from(s)))
                } else {
                    Err(IdError::BadName)
                }
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_id!(
    /// A stock keeping unit: one sellable product variant.
    Sku
);
name_id!(
    /// A warehouse, named by the operator (`wh-east`).
    WarehouseId
);
name_id!(
    /// A bin's code inside its warehouse (`A-01`).
    BinCode
);

/// A warehouse bin: the warehouse and the bin's code in it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BinId {
    /// The warehouse holding the bin.
    pub warehouse: WarehouseId,
    /// The bin's code in that warehouse.
    pub code: BinCode,
}

impl BinId {
    /// The bin `code` of `warehouse`.
    pub fn new(warehouse: WarehouseId, code: BinCode) -> Self {
        Self { warehouse, code }
    }
}

impl fmt::Display for BinId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.warehouse, self.code)
    }
}

impl fmt::Debug for BinId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for BinId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (warehouse, code) = s.split_once('/').ok_or(IdError::BadName)?;
        Ok(Self::new(WarehouseId::parse(warehouse)?, BinCode::parse(code)?))
    }
}

/// A pick task: move one reservation's quantity out of its bin. Named by its
/// fulfillment order and its position there.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PickTaskId {
    /// The fulfillment order the task belongs to.
    pub fulfillment_order: FulfillmentOrderId,
    /// The task's index in that order, from 0.
    pub index: u16,
}

impl fmt::Display for PickTaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pck_{:032x}.{}", self.fulfillment_order.as_raw(), self.index)
    }
}

impl fmt::Debug for PickTaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for PickTaskId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.strip_prefix("pck_").ok_or(IdError::WrongPrefix { expected: "pck" })?;
        let (digits, index) = rest.split_once('.').ok_or(IdError::BadDigits)?;
        let order: FulfillmentOrderId = format!("ful_{digits}").parse()?;
        let index = index.parse().map_err(|_| IdError::BadDigits)?;
        Ok(Self { fulfillment_order: order, index })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_round_trip_through_their_text_form() {
        let id = OrderId::generate(Timestamp::from_millis(1_700_000_000_000));
        let text = id.to_string();
        assert!(text.starts_with("ord_"));
        assert_eq!(text.parse::<OrderId>(), Ok(id));
        assert!(text.replace("ord_", "shp_").parse::<OrderId>().is_err());
        assert_eq!("ord_xyz".parse::<OrderId>(), Err(IdError::BadDigits));
    }

    #[test]
    fn ids_print_as_their_prefix_and_32_hex_digits() {
        for raw in [0, 1, 0xabc, u128::MAX, 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef] {
            assert_eq!(OrderId::from_raw(raw).to_string(), format!("ord_{raw:032x}"));
        }
    }

    #[test]
    fn names_reject_empty_long_and_odd_characters() {
        assert!(Sku::parse("SKU-1.a_b").is_ok());
        assert_eq!(Sku::parse(""), Err(IdError::BadName));
        assert_eq!(Sku::parse("a b"), Err(IdError::BadName));
        assert_eq!(Sku::parse(&"x".repeat(NAME_LEN_MAX + 1)), Err(IdError::BadName));
    }

    #[test]
    fn names_serialize_as_their_text_and_read_back() {
        let sku = Sku::parse("MUG").unwrap();
        assert_eq!(serde_json::to_string(&sku).unwrap(), r#""MUG""#);
        assert_eq!(serde_json::from_str::<Sku>(r#""MUG""#).unwrap(), sku);
        assert!(serde_json::from_str::<Sku>(r#""a b""#).is_err(), "read back through the same check");
        let bytes = postcard::to_allocvec(&sku).unwrap();
        assert_eq!(bytes, b"\x03MUG", "postcard: a string, as before");
        assert_eq!(postcard::from_bytes::<Sku>(&bytes).unwrap(), sku);
        assert_eq!(sku.clone(), sku);
    }

    #[test]
    fn pick_task_ids_round_trip() {
        let id = PickTaskId { fulfillment_order: FulfillmentOrderId::from_raw(42), index: 3 };
        assert_eq!(id.to_string().parse::<PickTaskId>(), Ok(id));
    }

    #[test]
    fn bin_ids_round_trip() {
        let bin: BinId = "wh-east/A-01".parse().unwrap();
        assert_eq!(bin.to_string(), "wh-east/A-01");
    }
}
