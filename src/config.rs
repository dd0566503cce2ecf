//! The configuration file (TOML) read by `orderdock serve --config`.
//! Every field is optional; the defaults are the library's.

use std::time::Duration;

use serde::Deserialize;

use crate::fulfillment::fulfillment_order::ShortPickPolicy;
use crate::http::HttpConfig;
use crate::Config;

/// The file's shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[http]`.
    #[serde(default)]
    pub http: HttpSection,
    /// `[fulfillment]`.
    #[serde(default)]
    pub fulfillment: FulfillmentSection,
    /// `[payments]`.
    #[serde(default)]
    pub payments: PaymentsSection,
}

/// `[payments]`: the payment gateway.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentsSection {
    /// Milliseconds to wait for the gateway before a call counts as unanswered (retried). Default 10000.
    pub timeout_ms: Option<u64>,
}

/// `[http]`: the edge's limits.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Requests handled at once before shedding with 503. Default 1024.
    pub concurrency_max: Option<usize>,
    /// Request timeout in milliseconds (408 after it). Default 30000.
    pub request_timeout_ms: Option<u64>,
    /// Requests per second per API key. Default 10000.
    pub rate_per_key: Option<u32>,
    /// Burst per API key. Default 20000.
    pub burst_per_key: Option<u32>,
    /// Carrier webhook HMAC secret. Default: generated into `<data-dir>/carrier.key`.
    pub carrier_secret: Option<String>,
}

/// `[fulfillment]`: saga behaviour.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FulfillmentSection {
    /// Reservation time-to-live in seconds. Default 900.
    pub reservation_ttl_secs: Option<u64>,
    /// Simulated operators and carrier. Default false.
    pub autopilot: Option<bool>,
    /// On autopilot, whether the simulated carrier also moves shipments on.
    pub carrier_autopilot: Option<bool>,
    /// Pause between simulated carrier steps in milliseconds. Default 10.
    pub carrier_step_delay_ms: Option<u64>,
    /// Idle seconds before an actor passivates. Default 30.
    pub idle_after_secs: Option<u64>,
    /// `reallocate` or `ship_partial`. Default `reallocate`.
    pub short_pick: Option<ShortPickPolicy>,
}

/// Why the file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Not readable.
    #[error("cannot read {path}: {cause}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        cause: String,
    },
    /// Not valid TOML or an unknown field.
    #[error("invalid configuration: {0}")]
    Parse(String),
}

impl FileConfig {
    /// Parses TOML text.
    ///
    /// # Errors
    /// [`ConfigError::Parse`].
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|err| ConfigError::Parse(err.to_string()))
    }

    /// Reads and parses a file.
    ///
    /// # Errors
    /// [`ConfigError`].
    pub fn read(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| ConfigError::Read { path: path.display().to_string(), cause: err.to_string() })?;
        Self::parse(&text)
    }

    /// Applies the file over `engine` and `http` defaults.
    pub fn apply(&self, engine: &mut Config, http: &mut HttpConfig) {
        if let Some(ms) = self.payments.timeout_ms {
            engine.payment_timeout = Duration::from_millis(ms.max(1));
        }
        let f = &self.fulfillment;
        if let Some(secs) = f.reservation_ttl_secs {
            engine.fulfillment.reservation_ttl = Duration::from_secs(secs);
        }
        if let Some(on) = f.autopilot {
            engine.fulfillment.autopilot = on;
        }
        if let Some(on) = f.carrier_autopilot {
            engine.fulfillment.carrier_autopilot = on;
        }
        if let Some(ms) = f.carrier_step_delay_ms {
            engine.fulfillment.carrier_step_delay = Duration::from_millis(ms);
        }
        if let Some(secs) = f.idle_after_secs {
            engine.fulfillment.idle_after = Duration::from_secs(secs);
        }
        if let Some(policy) = f.short_pick {
            engine.fulfillment.short_pick = policy;
        }
        let h = &self.http;
        if let Some(n) = h.concurrency_max {
            http.concurrency_max = n.max(1);
        }
        if let Some(ms) = h.request_timeout_ms {
            http.request_timeout = Duration::from_millis(ms.max(1));
        }
        if let Some(n) = h.rate_per_key {
            http.rate_per_key = n;
        }
        if let Some(n) = h.burst_per_key {
            http.burst_per_key = n;
        }
        if let Some(secret) = &h.carrier_secret {
            http.carrier_secret = secret.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_override_defaults_and_refuse_unknown_fields() {
        let file = FileConfig::parse("[fulfillment]\nautopilot = true\ncarrier_autopilot = false\nreservation_ttl_secs = 60\nshort_pick = \"ship_partial\"\n[http]\nrate_per_key = 5\n").unwrap();
        let (mut engine, mut http) = (Config::default(), HttpConfig::default());
        file.apply(&mut engine, &mut http);
        assert!(engine.fulfillment.autopilot);
        assert!(!engine.fulfillment.carrier_on_autopilot());
        assert_eq!(engine.fulfillment.reservation_ttl, Duration::from_secs(60));
        assert_eq!(engine.fulfillment.short_pick, ShortPickPolicy::ShipPartial);
        assert_eq!(http.rate_per_key, 5);
        assert!(FileConfig::parse("[http]\nbogus = 1\n").is_err());
    }
}
