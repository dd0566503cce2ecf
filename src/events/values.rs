//! Value types of the published language: time, money, quantities, addresses.
//!
//! Each has private fields and a fallible constructor, so a value that exists
//! is valid ("parse at the boundary, trust inside").

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest quantity of one order line, in units.
pub const QUANTITY_MAX: u32 = 10_000;
/// Longest free-text field of an address, in characters.
pub const ADDRESS_FIELD_LEN_MAX: usize = 200;

/// Milliseconds since the Unix epoch. Time enters the domain as a parameter.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The instant `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// This instant plus `duration` (saturating).
    pub fn plus(self, duration: std::time::Duration) -> Self {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(millis))
    }

    /// How long after `earlier` this instant is (zero if it is not later).
    pub fn since(self, earlier: Timestamp) -> std::time::Duration {
        std::time::Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}

/// Why a value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// Quantity zero or above [`QUANTITY_MAX`].
    #[error("quantity must be between 1 and {QUANTITY_MAX}")]
    Quantity,
    /// Not a three-letter upper-case ISO 4217 code.
    #[error("currency must be three upper-case letters (ISO 4217)")]
    Currency,
    /// Negative amount, or an overflow when adding or multiplying.
    #[error("amount must be between 0 and 10^15 minor units")]
    Amount,
    /// Amounts in different currencies were combined.
    #[error("amounts in different currencies")]
    CurrencyMismatch,
    /// A required address field is empty, too long or has control characters.
    #[error("address field `{0}` must be 1 to {ADDRESS_FIELD_LEN_MAX} printable characters")]
    AddressField(&'static str),
    /// Country is not a two-letter upper-case ISO 3166 code.
    #[error("country must be two upper-case letters (ISO 3166-1 alpha-2)")]
    Country,
}

/// A positive number of units, at most [`QUANTITY_MAX`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Quantity(NonZeroU32);

impl Quantity {
    /// Validates a count of units.
    ///
    /// # Errors
    /// [`ValueError::Quantity`] for 0 or more than [`QUANTITY_MAX`].
    pub fn new(units: u32) -> Result<Self, ValueError> {
        if units > QUANTITY_MAX {
            return Err(ValueError::Quantity);
        }
        NonZeroU32::new(units).map(Self).ok_or(ValueError::Quantity)
    }

    /// The count of units.
    pub fn get(self) -> u32 {
        self.0.get()
    }
}

impl fmt::Debug for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::new(u32::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// An ISO 4217 currency code.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    /// The euro.
    pub const EUR: Currency = Currency(*b"EUR");

    /// Validates a three-letter code.
    ///
    /// # Errors
    /// [`ValueError::Currency`] unless three ASCII upper-case letters.
    pub fn parse(code: &str) -> Result<Self, ValueError> {
        let bytes: [u8; 3] = code.as_bytes().try_into().map_err(|_| ValueError::Currency)?;
        if bytes.iter().all(u8::is_ascii_uppercase) {
            Ok(Self(bytes))
        } else {
            Err(ValueError::Currency)
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // INVARIANT: built only from three ASCII upper-case letters.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Currency {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Largest amount, in minor units (10^15: ten trillion euros).
pub const AMOUNT_MAX: i64 = 1_000_000_000_000_000;

/// An amount of money in minor units (cents) of one currency. Never a float.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Money {
    amount: i64,
    currency: Currency,
}

impl Money {
    /// Validates an amount in minor units.
    ///
    /// # Errors
    /// [`ValueError::Amount`] when negative or above [`AMOUNT_MAX`].
    pub fn new(amount: i64, currency: Currency) -> Result<Self, ValueError> {
        if (0..=AMOUNT_MAX).contains(&amount) {
            Ok(Self { amount, currency })
        } else {
            Err(ValueError::Amount)
        }
    }

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Self { amount: 0, currency }
    }

    /// The amount in minor units.
    pub fn amount(self) -> i64 {
        self.amount
    }

    /// The currency.
    pub fn currency(self) -> Currency {
        self.currency
    }

    /// The sum of two amounts of the same currency.
    ///
    /// # Errors
    /// [`ValueError::CurrencyMismatch`] or [`ValueError::Amount`] on overflow.
    pub fn checked_add(self, other: Money) -> Result<Money, ValueError> {
        if self.currency != other.currency {
            return Err(ValueError::CurrencyMismatch);
        }
        let sum = self.amount.checked_add(other.amount).ok_or(ValueError::Amount)?;
        Money::new(sum, self.currency)
    }

    /// This amount less `other` (same currency, never below zero).
    ///
    /// # Errors
    /// [`ValueError::CurrencyMismatch`] or [`ValueError::Amount`] when it would go negative.
    pub fn checked_sub(self, other: Money) -> Result<Money, ValueError> {
        if self.currency != other.currency {
            return Err(ValueError::CurrencyMismatch);
        }
        Money::new(self.amount - other.amount, self.currency)
    }

    /// This amount times a number of units.
    ///
    /// # Errors
    /// [`ValueError::Amount`] on overflow.
    pub fn times(self, units: u32) -> Result<Money, ValueError> {
        let product = self.amount.checked_mul(i64::from(units)).ok_or(ValueError::Amount)?;
        Money::new(product, self.currency)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02} {}", self.amount / 100, self.amount % 100, self.currency)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            amount: i64,
            currency: Currency,
        }
        let raw = Raw::deserialize(deserializer)?;
        Money::new(raw.amount, raw.currency).map_err(serde::de::Error::custom)
    }
}

/// A delivery address. Shared, not copied: an order, its fulfillment order
/// and the events between them hold the same one (a clone is a reference
/// count, not five strings).
#[derive(Clone, PartialEq, Eq)]
pub struct Address(std::sync::Arc<AddressFields>);

/// The fields of an [`Address`], serialized as the address itself.
#[derive(PartialEq, Eq, Serialize)]
struct AddressFields {
    name: String,
    line1: String,
    city: String,
    postal_code: String,
    country: String,
}

impl Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

fn field(name: &'static str, value: &str) -> Result<String, ValueError> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > ADDRESS_FIELD_LEN_MAX || trimmed.chars().any(char::is_control) {
        Err(ValueError::AddressField(name))
    } else {
        Ok(trimmed.to_owned())
    }
}

impl Address {
    /// Validates an address.
    ///
    /// # Errors
    /// [`ValueError::AddressField`] for an empty, long or control-character field;
    /// [`ValueError::Country`] unless a two-letter upper-case code.
    pub fn new(name: &str, line1: &str, city: &str, postal_code: &str, country: &str) -> Result<Self, ValueError> {
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(ValueError::Country);
        }
        Ok(Self(std::sync::Arc::new(AddressFields {
            name: field("name", name)?,
            line1: field("line1", line1)?,
            city: field("city", city)?,
            postal_code: field("postal_code", postal_code)?,
            country: country.to_owned(),
        })))
    }

    /// The recipient's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The street line.
    pub fn line1(&self) -> &str {
        &self.0.line1
    }

    /// The city.
    pub fn city(&self) -> &str {
        &self.0.city
    }

    /// The postal code.
    pub fn postal_code(&self) -> &str {
        &self.0.postal_code
    }

    /// The two-letter country code.
    pub fn country(&self) -> &str {
        &self.0.country
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Personal data stays out of logs: only the country is shown.
        write!(f, "Address({}, …)", self.0.country)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            name: String,
            line1: String,
            city: String,
            postal_code: String,
            country: String,
        }
        let raw = Raw::deserialize(deserializer)?;
        Address::new(&raw.name, &raw.line1, &raw.city, &raw.postal_code, &raw.country).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_refuses_zero_and_excess() {
        assert!(Quantity::new(0).is_err());
        assert!(Quantity::new(QUANTITY_MAX + 1).is_err());
        assert_eq!(Quantity::new(3).map(Quantity::get), Ok(3));
    }

    #[test]
    fn money_never_mixes_currencies_or_overflows() {
        let eur = Money::new(1999, Currency::EUR).unwrap();
        let usd = Money::new(1, Currency::parse("USD").unwrap()).unwrap();
        assert_eq!(eur.checked_add(usd), Err(ValueError::CurrencyMismatch));
        assert_eq!(eur.times(3).map(Money::amount), Ok(5997));
        assert_eq!(Money::new(AMOUNT_MAX, Currency::EUR).unwrap().times(2), Err(ValueError::Amount));
        assert!(Money::new(-1, Currency::EUR).is_err());
        assert!(Currency::parse("eur").is_err());
    }

    #[test]
    fn an_address_serializes_as_its_fields_and_reads_back() {
        let address = Address::new("Ada", "1 Main St", "Paris", "75001", "FR").unwrap();
        let json = serde_json::to_string(&address).unwrap();
        assert_eq!(json, r#"{"name":"Ada","line1":"1 Main St","city":"Paris","postal_code":"75001","country":"FR"}"#);
        assert_eq!(serde_json::from_str::<Address>(&json).unwrap(), address);
        let bytes = postcard::to_allocvec(&address).unwrap();
        assert_eq!(bytes, b"\x03Ada\x091 Main St\x05Paris\x0575001\x02FR", "postcard: five strings, as before");
        assert_eq!(postcard::from_bytes::<Address>(&bytes).unwrap(), address);
    }

    #[test]
    fn address_requires_every_field_and_a_country_code() {
        assert!(Address::new("Ada", "1 Main St", "Paris", "75001", "FR").is_ok());
        assert_eq!(Address::new("", "1", "P", "1", "FR"), Err(ValueError::AddressField("name")));
        assert_eq!(Address::new("A", "1", "P", "1", "France"), Err(ValueError::Country));
    }
}
