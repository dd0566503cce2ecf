//! Payments: the [`PaymentGateway`] trait and a simulated gateway.
//!
//! Every call carries an idempotency key derived from the order
//! (`auth:{order}`, `capture:{order}`, `void:{order}`, `refund:{order}:{n}`):
//! a gateway that sees a key again answers as it did the first time, so a
//! retried capture never charges twice.
//!
//! [`SimulatedGateway`] follows that contract and keeps a ledger that tests
//! check for double charges. It decides by the payment token:
//!
//! | token | behaviour |
//! |---|---|
//! | `tok_decline` | authorization declined |
//! | `tok_decline_capture` | authorized, capture declined |
//! | `tok_capture_unavailable` | authorized, capture always fails as unavailable (retried) |
//! | `tok_flaky` | every operation fails as unavailable on its first two attempts |
//! | `tok_reply_lost` | every operation is applied, but the first reply per key is lost (unavailable) |
//! | `tok_slow` | the first attempt per key hangs for [`SLOW_REPLY`] (the caller times out), then is not applied |
//! | anything else | approved |
//!
//! With [`SimulatedGateway::with_journal`] its ledger survives restarts: each
//! decided operation is appended to a JSON-lines file and synced before the
//! reply, and replayed when the gateway is opened again — like a real
//! payment provider, which outlives the engine's process.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::events::bus::BoxFuture;
use crate::events::Money;

/// The gateway's reference for an authorization.
pub type AuthorizationId = String;

/// Why a payment operation did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PaymentError {
    /// The gateway said no; retrying will not help.
    #[error("declined: {0}")]
    Declined(String),
    /// A void was asked for after the authorization was captured: refund instead.
    #[error("already captured")]
    AlreadyCaptured,
    /// The gateway did not answer or failed; retry with the same key.
    #[error("gateway unavailable: {0}")]
    Unavailable(String),
}

/// A payment service provider.
pub trait PaymentGateway: Send + Sync + std::fmt::Debug + 'static {
    /// Holds `amount` on the customer's payment method.
    fn authorize(
        &self,
        key: String,
        token: String,
        amount: Money,
    ) -> BoxFuture<'_, Result<AuthorizationId, PaymentError>>;
    /// Takes `amount` of a held authorization.
    fn capture(
        &self,
        key: String,
        authorization: AuthorizationId,
        amount: Money,
    ) -> BoxFuture<'_, Result<(), PaymentError>>;
    /// Releases a held authorization that was not captured.
    fn void(&self, key: String, authorization: AuthorizationId) -> BoxFuture<'_, Result<(), PaymentError>>;
    /// Gives back `amount` of a captured authorization.
    fn refund(
        &self,
        key: String,
        authorization: AuthorizationId,
        amount: Money,
    ) -> BoxFuture<'_, Result<(), PaymentError>>;
    /// The gateway's own ledger check, where it keeps one: rule breaks found
    /// (double capture, capture above the hold, …). `None` when it cannot tell.
    fn audit(&self) -> Option<Vec<String>> {
        None
    }
}

/// How long a `tok_slow` call hangs on its first attempt.
pub const SLOW_REPLY: Duration = Duration::from_secs(3600);

/// One authorization in the simulated gateway's ledger.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The token it was made with.
    pub token: String,
    /// Amount held, in minor units.
    pub authorized: i64,
    /// Successful captures (must never exceed 1).
    pub captures: u32,
    /// Amount captured, in minor units.
    pub captured: i64,
    /// Amount refunded, in minor units.
    pub refunded: i64,
    /// Whether it was voided.
    pub voided: bool,
}

/// Ordered maps, not hash maps: they grow a node at a time. A hash map
/// doubles and rehashes every key at once, under the gateway's one lock,
/// stalling every payment (and so every saga) while it does.
#[derive(Debug, Default)]
struct Ledger {
    entries: BTreeMap<AuthorizationId, LedgerEntry>,
    /// First answer per idempotency key, replayed on repeats.
    answers: BTreeMap<String, Result<Option<AuthorizationId>, PaymentError>>,
    /// Attempts per key, for the flaky token.
    attempts: BTreeMap<String, u32>,
    next: u64,
}

/// A gateway whose calls give up after `timeout`, answering
/// [`PaymentError::Unavailable`] (the operation may or may not have happened;
/// it is retried under the same idempotency key).
#[derive(Debug)]
pub struct TimeLimited {
    inner: std::sync::Arc<dyn PaymentGateway>,
    timeout: Duration,
}

impl TimeLimited {
    /// `inner`, with every call limited to `timeout`.
    pub fn new(inner: std::sync::Arc<dyn PaymentGateway>, timeout: Duration) -> Self {
        Self { inner, timeout }
    }

    fn limit<'a, T: Send + 'a>(
        &self,
        call: BoxFuture<'a, Result<T, PaymentError>>,
    ) -> BoxFuture<'a, Result<T, PaymentError>> {
        let timeout = self.timeout;
        Box::pin(async move {
            tokio::time::timeout(timeout, call).await.unwrap_or_else(|_| {
                Err(PaymentError::Unavailable(format!("no answer within {} ms", timeout.as_millis())))
            })
        })
    }
}

impl PaymentGateway for TimeLimited {
    fn authorize(
        &self,
        key: String,
        token: String,
        amount: Money,
    ) -> BoxFuture<'_, Result<AuthorizationId, PaymentError>> {
        self.limit(self.inner.authorize(key, token, amount))
    }

    fn capture(
        &self,
        key: String,
        authorization: AuthorizationId,
        amount: Money,
    ) -> BoxFuture<'_, Result<(), PaymentError>> {
        self.limit(self.inner.capture(key, authorization, amount))
    }

    fn void(&self, key: String, authorization: AuthorizationId) -> BoxFuture<'_, Result<(), PaymentError>> {
        self.limit(self.inner.void(key, authorization))
    }

    fn refund(
        &self,
        key: String,
        authorization: AuthorizationId,
        amount: Money,
    ) -> BoxFuture<'_, Result<(), PaymentError>> {
        self.limit(self.inner.refund(key, authorization, amount))
    }

    fn audit(&self) -> Option<Vec<String>> {
        self.inner.audit()
    }
}

/// One line of the journal: an operation's decided answer and the
/// authorization it left behind.
#[derive(Debug, Serialize, Deserialize)]
struct JournalLine {
    key: String,
    answer: Result<Option<AuthorizationId>, PaymentError>,
    authorization: Option<(AuthorizationId, LedgerEntry)>,
}

/// An in-memory gateway with the rules in the module docs.
#[derive(Debug, Default)]
pub struct SimulatedGateway {
    ledger: Mutex<Ledger>,
    outage: std::sync::atomic::AtomicBool,
    journal: Option<Mutex<std::fs::File>>,
}

impl SimulatedGateway {
    /// A gateway with an empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// A gateway whose ledger is kept in `path` (created if absent, replayed if present).
    ///
    /// # Errors
    /// The file cannot be read, parsed or opened for appending.
    pub fn with_journal(path: &std::path::Path) -> std::io::Result<Self> {
        let mut ledger = Ledger::default();
        if path.exists() {
            let file = std::fs::File::open(path)?;
            for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
                let line = line?;
                let Ok(entry) = serde_json::from_str::<JournalLine>(&line) else {
                    // A torn last line (a crash mid-append) was never answered: skip it.
                    tracing::warn!(path = %path.display(), line = n + 1, "unreadable gateway journal line skipped");
                    continue;
                };
                if let Some((id, state)) = entry.authorization {
                    if let Some(number) = id.strip_prefix("auth_").and_then(|n| n.parse::<u64>().ok()) {
                        ledger.next = ledger.next.max(number);
                    }
                    ledger.entries.insert(id, state);
                }
                ledger.answers.insert(entry.key, entry.answer);
            }
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self { ledger: Mutex::new(ledger), journal: Some(Mutex::new(file)), ..Self::default() })
    }

    /// Starts (`true`) or ends an outage: while it lasts every call fails as unavailable.
    pub fn set_outage(&self, down: bool) {
        self.outage.store(down, std::sync::atomic::Ordering::SeqCst);
    }

    /// A copy of the ledger, by authorization.
    pub fn ledger(&self) -> BTreeMap<AuthorizationId, LedgerEntry> {
        self.ledger.lock().map(|l| l.entries.clone()).unwrap_or_default()
    }

    /// Ledger rule breaks: more than one capture, capture above the hold,
    /// refund above the capture, capture of a voided authorization.
    pub fn violations(&self) -> Vec<String> {
        let mut found = Vec::new();
        for (id, entry) in self.ledger() {
            if entry.captures > 1 {
                found.push(format!("{id}: captured {} times", entry.captures));
            }
            if entry.captured > entry.authorized {
                found.push(format!("{id}: captured more than authorized"));
            }
            if entry.refunded > entry.captured {
                found.push(format!("{id}: refunded more than captured"));
            }
            if entry.voided && entry.captured > 0 {
                found.push(format!("{id}: voided after capture"));
            }
        }
        found
    }

    fn run(
        &self,
        key: String,
        subject: Subject<'_>,
        operation: impl FnOnce(&mut Ledger) -> Result<Option<AuthorizationId>, PaymentError>,
    ) -> Reply {
        if self.outage.load(std::sync::atomic::Ordering::SeqCst) {
            return Reply::Now(Err(PaymentError::Unavailable("simulated outage".to_owned())));
        }
        let Ok(mut ledger) = self.ledger.lock() else {
            return Reply::Now(Err(PaymentError::Unavailable("ledger poisoned".to_owned())));
        };
        if let Some(answer) = ledger.answers.get(&key) {
            return Reply::Now(answer.clone());
        }
        let token = match subject {
            Subject::Token(token) => token.to_owned(),
            Subject::Authorization(id) => ledger.entries.get(id).map(|e| e.token.clone()).unwrap_or_default(),
        };
        let first_attempt = {
            let attempts = ledger.attempts.entry(key.clone()).or_insert(0);
            *attempts += 1;
            *attempts == 1
        };
        match token.as_str() {
            "tok_flaky" if ledger.attempts.get(&key).is_some_and(|n| *n <= 2) => {
                // Not saved: a transient failure is retried under the same key.
                return Reply::Now(Err(PaymentError::Unavailable("simulated timeout".to_owned())));
            }
            "tok_slow" if first_attempt => return Reply::Hang,
            _ => {}
        }
        let answer = operation(&mut ledger);
        if !matches!(answer, Err(PaymentError::Unavailable(_))) {
            let id: Option<&str> = match (subject, &answer) {
                (Subject::Authorization(id), _) => Some(id),
                (_, Ok(Some(id))) => Some(id),
                _ => None,
            };
            let authorization = id.and_then(|id| ledger.entries.get(id).map(|entry| (id.to_owned(), entry.clone())));
            if let Err(err) = self.append(&JournalLine { key: key.clone(), answer: answer.clone(), authorization }) {
                // Not durable, so not decided: the caller retries under the same key.
                tracing::error!(cause = %err, "gateway journal write failed");
                return Reply::Now(Err(PaymentError::Unavailable(format!("journal: {err}"))));
            }
            ledger.answers.insert(key, answer.clone());
            if token == "tok_reply_lost" && first_attempt {
                return Reply::Now(Err(PaymentError::Unavailable("simulated lost reply".to_owned())));
            }
        }
        Reply::Now(answer)
    }

    fn append(&self, line: &JournalLine) -> std::io::Result<()> {
        let Some(journal) = &self.journal else { return Ok(()) };
        let mut text = serde_json::to_vec(line).map_err(std::io::Error::other)?;
        text.push(b'\n');
        let mut file = journal.lock().map_err(|_| std::io::Error::other("journal lock poisoned"))?;
        file.write_all(&text)?;
        file.sync_data()
    }

    /// Runs `operation` on authorization `id` under `key`; `missing` answers for an unknown one.
    fn on_entry(
        &self,
        key: String,
        id: &str,
        missing: Result<(), PaymentError>,
        operation: impl FnOnce(&mut LedgerEntry) -> Result<(), PaymentError>,
    ) -> BoxFuture<'_, Result<(), PaymentError>> {
        let reply = self.run(key, Subject::Authorization(id), |ledger| match ledger.entries.get_mut(id) {
            Some(entry) => operation(entry).map(|()| None),
            None => missing.map(|()| None),
        });
        Box::pin(async move { reply.wait().await.map(|_| ()) })
    }
}

/// The gateway's reply: now, or never (a hung call the caller must time out).
#[derive(Debug)]
enum Reply {
    Now(Result<Option<AuthorizationId>, PaymentError>),
    Hang,
}

impl Reply {
    async fn wait(self) -> Result<Option<AuthorizationId>, PaymentError> {
        match self {
            Reply::Now(answer) => answer,
            Reply::Hang => {
                tokio::time::sleep(SLOW_REPLY).await;
                Err(PaymentError::Unavailable("simulated hang".to_owned()))
            }
        }
    }
}

/// What a call is about: a new payment method, or an existing authorization.
#[derive(Debug, Clone, Copy)]
enum Subject<'a> {
    Token(&'a str),
    Authorization(&'a str),
}

fn unknown() -> Result<(), PaymentError> {
    Err(PaymentError::Declined("unknown authorization".to_owned()))
}

impl PaymentGateway for SimulatedGateway {
    fn audit(&self) -> Option<Vec<String>> {
        Some(self.violations())
    }

    fn authorize(
        &self,
        key: String,
        token: String,
        amount: Money,
    ) -> BoxFuture<'_, Result<AuthorizationId, PaymentError>> {
        let reply = self.run(key, Subject::Token(&token), |ledger| {
            if token == "tok_decline" {
                return Err(PaymentError::Declined("card declined".to_owned()));
            }
            ledger.next += 1;
            let id = format!("auth_{}", ledger.next);
            let entry = LedgerEntry { token: token.clone(), authorized: amount.amount(), ..LedgerEntry::default() };
            ledger.entries.insert(id.clone(), entry);
            Ok(Some(id))
        });
        Box::pin(async move {
            reply.wait().await.and_then(|id| id.ok_or_else(|| PaymentError::Unavailable("no id".to_owned())))
        })
    }

    fn capture(
        &self,
        key: String,
        authorization: AuthorizationId,
        amount: Money,
    ) -> BoxFuture<'_, Result<(), PaymentError>> {
        self.on_entry(key, &authorization, unknown(), |entry| {
            match entry.token.as_str() {
                "tok_decline_capture" => return Err(PaymentError::Declined("insufficient funds".to_owned())),
                "tok_capture_unavailable" => return Err(PaymentError::Unavailable("simulated outage".to_owned())),
                _ => {}
            }
            if entry.voided {
                return Err(PaymentError::Declined("authorization voided".to_owned()));
            }
            if amount.amount() > entry.authorized {
                return Err(PaymentError::Declined("amount above authorization".to_owned()));
            }
            entry.captures += 1;
            entry.captured += amount.amount();
            Ok(())
        })
    }

    fn void(&self, key: String, authorization: AuthorizationId) -> BoxFuture<'_, Result<(), PaymentError>> {
        // Voiding an unknown authorization leaves nothing held: done.
        self.on_entry(key, &authorization, Ok(()), |entry| {
            if entry.captures > 0 {
                return Err(PaymentError::AlreadyCaptured);
            }
            entry.voided = true;
            Ok(())
        })
    }

    fn refund(
        &self,
        key: String,
        authorization: AuthorizationId,
        amount: Money,
    ) -> BoxFuture<'_, Result<(), PaymentError>> {
        self.on_entry(key, &authorization, unknown(), |entry| {
            if entry.refunded + amount.amount() > entry.captured {
                return Err(PaymentError::Declined("refund above captured amount".to_owned()));
            }
            entry.refunded += amount.amount();
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Currency;

    fn eur(amount: i64) -> Money {
        Money::new(amount, Currency::EUR).unwrap()
    }

    #[tokio::test]
    async fn a_repeated_capture_key_charges_once() {
        let gateway = SimulatedGateway::new();
        let auth = gateway.authorize("auth:1".into(), "tok_visa".into(), eur(1000)).await.unwrap();
        gateway.capture("capture:1".into(), auth.clone(), eur(1000)).await.unwrap();
        gateway.capture("capture:1".into(), auth.clone(), eur(1000)).await.unwrap();
        assert_eq!(gateway.ledger()[&auth].captures, 1);
        assert!(gateway.violations().is_empty());
    }

    #[tokio::test]
    async fn voiding_a_captured_authorization_asks_for_a_refund() {
        let gateway = SimulatedGateway::new();
        let auth = gateway.authorize("auth:2".into(), "tok_visa".into(), eur(500)).await.unwrap();
        gateway.capture("capture:2".into(), auth.clone(), eur(500)).await.unwrap();
        assert_eq!(gateway.void("void:2".into(), auth.clone()).await, Err(PaymentError::AlreadyCaptured));
        gateway.refund("refund:2:1".into(), auth.clone(), eur(500)).await.unwrap();
        assert!(gateway.refund("refund:2:2".into(), auth, eur(1)).await.is_err());
    }

    #[tokio::test]
    async fn flaky_token_fails_twice_then_succeeds_under_the_same_key() {
        let gateway = SimulatedGateway::new();
        for _ in 0..2 {
            assert!(matches!(
                gateway.authorize("auth:3".into(), "tok_flaky".into(), eur(1)).await,
                Err(PaymentError::Unavailable(_))
            ));
        }
        assert!(gateway.authorize("auth:3".into(), "tok_flaky".into(), eur(1)).await.is_ok());
    }
}
