//! Time as a dependency: actors read a [`Clock`], domain functions take a
//! [`Timestamp`] parameter.

use std::fmt::Debug;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::events::Timestamp;

/// A source of the current time.
pub trait Clock: Send + Sync + Debug + 'static {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let millis = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        Timestamp::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
    }
}
