//! A warehouse bin's stock: two-phase, per SKU.
//!
//! `on_hand` counts the units physically in the bin. A reservation holds
//! some of them for a fulfillment order; a pick turns the hold into picked
//! units (still in the bin's care until they ship, or go back to stock).
//! Per SKU, always: `reserved + picked <= on_hand` — so `available =
//! on_hand - reserved - picked` never goes below zero: no oversell.
//!
//! Every operation on a reservation is keyed by its id and idempotent: a
//! repeat of reserve answers as the first did; release, expire, pick,
//! restock and ship of an id the bin no longer holds change nothing (only
//! the owning fulfillment order resolves its reservations, and it never
//! resolves one twice in different ways).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::events::{BinId, ReservationId, Sku};

/// Most distinct SKUs in one bin.
pub const BIN_SKUS_MAX: usize = 1_000;
/// Most units of one SKU in one bin.
pub const BIN_UNITS_MAX: u32 = 1_000_000_000;
/// Most units one receipt or adjustment may move (checked where a person's
/// request comes in).
pub const RECEIPT_UNITS_MAX: u32 = 1_000_000;

/// Counters of one SKU in one bin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Level {
    /// Units physically in the bin.
    pub on_hand: u32,
    /// Units held by reservations.
    pub reserved: u32,
    /// Units picked and waiting to ship.
    pub picked: u32,
    /// Units ever received.
    pub received: u64,
    /// Units ever shipped.
    pub shipped: u64,
    /// Net units written off (positive) or found (negative) by adjustments and short picks.
    pub adjusted_out: i64,
}

impl Level {
    /// Units free to reserve.
    pub fn available(&self) -> u32 {
        self.on_hand.saturating_sub(self.reserved).saturating_sub(self.picked)
    }

    /// Checks the counters' own rules (what every write of a hold checks).
    ///
    /// # Errors
    /// [`BinError::Invariant`] naming the broken rule.
    pub fn check(&self) -> Result<(), BinError> {
        StockBook::of(self).check()
    }
}

/// The books of one SKU's stock, in one bin or summed over many: what
/// stock conservation is checked on, by a bin's writes, the engine's audit
/// and `orderdock inspect` alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StockBook {
    /// Units ever received.
    pub received: u64,
    /// Units physically there.
    pub on_hand: u64,
    /// Units reserved or picked.
    pub held: u64,
    /// Units free to reserve.
    pub available: u64,
    /// Units ever shipped.
    pub shipped: u64,
    /// Net units written off (negative: found).
    pub written_off: i64,
}

impl StockBook {
    /// The books of one level.
    pub fn of(level: &Level) -> StockBook {
        let mut book = StockBook::default();
        book.add(level);
        book
    }

    /// Adds a level (another bin's) to the books.
    pub fn add(&mut self, level: &Level) {
        self.received += level.received;
        self.on_hand += u64::from(level.on_hand);
        self.held += u64::from(level.reserved) + u64::from(level.picked);
        self.available += u64::from(level.available());
        self.shipped += level.shipped;
        self.written_off += level.adjusted_out;
    }

    /// Conservation: received = on hand + shipped + written off, and no
    /// more held than on hand.
    ///
    /// # Errors
    /// [`BinError::Invariant`] naming the broken rule.
    pub fn check(&self) -> Result<(), BinError> {
        if self.held > self.on_hand {
            return Err(BinError::Invariant("reserved + picked <= on_hand"));
        }
        let accounted = i128::from(self.on_hand) + i128::from(self.shipped) + i128::from(self.written_off);
        if accounted != i128::from(self.received) {
            return Err(BinError::Invariant("received = on_hand + shipped + adjusted_out"));
        }
        Ok(())
    }

    /// Units shipped or held beyond what came in and was not written off.
    pub fn oversold(&self) -> u64 {
        let had = self.received.saturating_sub(u64::try_from(self.written_off.max(0)).unwrap_or(0));
        (self.shipped + self.held).saturating_sub(had)
    }
}

/// A hold on a bin's stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hold {
    /// Reserved, not picked.
    Reserved {
        /// The SKU.
        sku: Sku,
        /// Units held.
        units: u32,
    },
    /// Picked; the units leave with the shipment or go back to stock.
    Picked {
        /// The SKU.
        sku: Sku,
        /// Units picked.
        units: u32,
    },
}

/// A bin's stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bin {
    id: BinId,
    levels: BTreeMap<Sku, Level>,
    holds: BTreeMap<ReservationId, Hold>,
    expired: u64,
}

/// What one reservation command changes in a bin: the counters of one SKU,
/// one hold and the count of expiries. Decided from the bin as it is and
/// applied once its write is queued ([`Bin::apply`]): a bin keeps every
/// picked hold until its shipment leaves, so a copy of it per command would
/// cost as much as the bin is large.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldChange {
    /// The reservation.
    pub id: ReservationId,
    /// The SKU whose counters change.
    pub sku: Sku,
    /// Its counters after the change.
    pub level: Level,
    /// The hold after the change (`None`: gone).
    pub hold: Option<Hold>,
    /// Reservations expired, after the change.
    pub expired: u64,
}

/// A rule the bin refused to break.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BinError {
    /// Fewer units available than asked for.
    #[error("insufficient stock of {sku}: {available} available, {requested} requested")]
    InsufficientStock {
        /// The SKU.
        sku: Sku,
        /// Units free.
        available: u32,
        /// Units asked for.
        requested: u32,
    },
    /// The reservation id is held for another SKU or quantity.
    #[error("reservation {0} already exists with other terms")]
    ReservationConflict(ReservationId),
    /// A pick of more units than reserved.
    #[error("picked {picked} units but only {reserved} were reserved")]
    OverPick {
        /// Units reserved.
        reserved: u32,
        /// Units said to be picked.
        picked: u32,
    },
    /// An adjustment would take on-hand below what is held, or below zero.
    #[error("adjustment would leave {sku} below the {held} units held")]
    AdjustmentBelowHeld {
        /// The SKU.
        sku: Sku,
        /// Units reserved or picked.
        held: u32,
    },
    /// Too many units or SKUs in the bin.
    #[error("bin capacity exceeded ({BIN_SKUS_MAX} SKUs, {BIN_UNITS_MAX} units each)")]
    Capacity,
    /// Zero units.
    #[error("quantity must be positive")]
    ZeroQuantity,
    /// A snapshot broke an invariant.
    #[error("invariant violated: {0}")]
    Invariant(&'static str),
}

impl Bin {
    /// An empty bin.
    pub fn new(id: BinId) -> Self {
        Self { id, levels: BTreeMap::new(), holds: BTreeMap::new(), expired: 0 }
    }

    /// A bin from its parts as stored (its counters and its holds are
    /// written apart). The caller checks the result with [`Self::check_invariants`].
    pub fn from_parts(
        id: BinId,
        levels: BTreeMap<Sku, Level>,
        holds: BTreeMap<ReservationId, Hold>,
        expired: u64,
    ) -> Self {
        Self { id, levels, holds, expired }
    }

    /// The bin's id.
    pub fn id(&self) -> &BinId {
        &self.id
    }

    /// Counters per SKU.
    pub fn levels(&self) -> &BTreeMap<Sku, Level> {
        &self.levels
    }

    /// The counters of `sku` (zero if never stocked).
    pub fn level(&self, sku: &Sku) -> Level {
        self.levels.get(sku).copied().unwrap_or_default()
    }

    /// The holds by reservation id.
    pub fn holds(&self) -> &BTreeMap<ReservationId, Hold> {
        &self.holds
    }

    /// Reservations that expired here.
    pub fn expired(&self) -> u64 {
        self.expired
    }

    fn level_mut(&mut self, sku: &Sku) -> Result<&mut Level, BinError> {
        if !self.levels.contains_key(sku) && self.levels.len() >= BIN_SKUS_MAX {
            return Err(BinError::Capacity);
        }
        Ok(self.levels.entry(sku.clone()).or_default())
    }

    /// Puts `units` of `sku` into the bin.
    ///
    /// # Errors
    /// [`BinError::ZeroQuantity`], [`BinError::Capacity`].
    pub fn receive(&self, sku: &Sku, units: u32) -> Result<Bin, BinError> {
        if units == 0 {
            return Err(BinError::ZeroQuantity);
        }
        let mut next = self.clone();
        let level = next.level_mut(sku)?;
        level.on_hand = level.on_hand.checked_add(units).filter(|n| *n <= BIN_UNITS_MAX).ok_or(BinError::Capacity)?;
        level.received += u64::from(units);
        next.debug_check();
        Ok(next)
    }

    /// Counts `delta` units in (positive) or out (negative) after a stock take.
    ///
    /// # Errors
    /// [`BinError::AdjustmentBelowHeld`] when it would go below the units held.
    pub fn adjust(&self, sku: &Sku, delta: i32) -> Result<Bin, BinError> {
        if delta == 0 {
            return Err(BinError::ZeroQuantity);
        }
        let mut next = self.clone();
        let level = next.level_mut(sku)?;
        let held = level.reserved + level.picked;
        let target = i64::from(level.on_hand) + i64::from(delta);
        if target < i64::from(held) {
            return Err(BinError::AdjustmentBelowHeld { sku: sku.clone(), held });
        }
        level.on_hand = u32::try_from(target).ok().filter(|n| *n <= BIN_UNITS_MAX).ok_or(BinError::Capacity)?;
        level.adjusted_out -= i64::from(delta);
        next.debug_check();
        Ok(next)
    }

    /// Holds `units` of `sku` under `id`. A repeat with the same terms succeeds and changes nothing.
    ///
    /// # Errors
    /// [`BinError::InsufficientStock`], [`BinError::ReservationConflict`], [`BinError::ZeroQuantity`].
    pub fn reserve(&self, id: ReservationId, sku: &Sku, units: u32) -> Result<Bin, BinError> {
        let (next, outcome) = self.copy_with(|next| next.reserve_in_place(id, sku, units));
        outcome.map(|_| next)
    }

    /// Lets a reservation go (void). Unknown ids change nothing.
    pub fn release(&self, id: ReservationId) -> Bin {
        self.copy_with(|next| next.release_in_place(id)).0
    }

    /// Lets a reservation go because its time ran out. Unknown ids change nothing.
    pub fn expire(&self, id: ReservationId) -> Bin {
        self.copy_with(|next| next.expire_in_place(id)).0
    }

    /// Records the pick of a reservation: `picked` of its units were found.
    /// A short pick writes off the missing units (they were not in the bin).
    /// Unknown or already picked ids change nothing.
    ///
    /// # Errors
    /// [`BinError::OverPick`] when `picked` exceeds the reservation.
    pub fn pick(&self, id: ReservationId, picked: u32) -> Result<Bin, BinError> {
        let (next, outcome) = self.copy_with(|next| next.pick_in_place(id, picked));
        outcome.map(|_| next)
    }

    /// Puts picked units back into stock (cancelled after pick). Unknown ids change nothing.
    pub fn restock(&self, id: ReservationId) -> Bin {
        self.copy_with(|next| next.restock_in_place(id)).0
    }

    /// The picked units left with their shipment. Unknown ids change nothing.
    pub fn ship(&self, id: ReservationId) -> Bin {
        self.copy_with(|next| next.ship_in_place(id)).0
    }

    /// A copy of the bin with an in-place decision applied (the pure form of
    /// it), and what the decision said. A refused decision changes nothing.
    fn copy_with<T>(&self, decide: impl FnOnce(&mut Bin) -> T) -> (Bin, T) {
        let mut next = self.clone();
        let outcome = decide(&mut next);
        (next, outcome)
    }

    // The same decisions as changes, for the bin's actor ([`HoldChange`]).
    // Each checks everything and changes nothing; `None`: nothing to change.

    /// What [`Self::reserve`] changes.
    ///
    /// # Errors
    /// As [`Self::reserve`].
    pub fn reserve_change(&self, id: ReservationId, sku: &Sku, units: u32) -> Result<Option<HoldChange>, BinError> {
        if units == 0 {
            return Err(BinError::ZeroQuantity);
        }
        match self.holds.get(&id) {
            Some(Hold::Reserved { sku: held_sku, units: held }) if held_sku == sku && *held == units => {
                return Ok(None)
            }
            Some(Hold::Reserved { .. } | Hold::Picked { .. }) => return Err(BinError::ReservationConflict(id)),
            None => {}
        }
        let mut level = self.level(sku);
        let available = level.available();
        if available < units {
            return Err(BinError::InsufficientStock { sku: sku.clone(), available, requested: units });
        }
        level.reserved += units;
        let hold = Some(Hold::Reserved { sku: sku.clone(), units });
        Ok(Some(HoldChange { id, sku: sku.clone(), level, hold, expired: self.expired }))
    }

    /// What [`Self::release`] changes.
    pub fn release_change(&self, id: ReservationId) -> Option<HoldChange> {
        let Some(Hold::Reserved { sku, units }) = self.holds.get(&id) else { return None };
        let mut level = self.level(sku);
        level.reserved = level.reserved.saturating_sub(*units);
        Some(HoldChange { id, sku: sku.clone(), level, hold: None, expired: self.expired })
    }

    /// What [`Self::expire`] changes.
    pub fn expire_change(&self, id: ReservationId) -> Option<HoldChange> {
        self.release_change(id).map(|change| HoldChange { expired: self.expired + 1, ..change })
    }

    /// What [`Self::pick`] changes.
    ///
    /// # Errors
    /// As [`Self::pick`].
    pub fn pick_change(&self, id: ReservationId, picked: u32) -> Result<Option<HoldChange>, BinError> {
        let Some(Hold::Reserved { sku, units }) = self.holds.get(&id) else { return Ok(None) };
        let units = *units;
        if picked > units {
            return Err(BinError::OverPick { reserved: units, picked });
        }
        let mut level = self.level(sku);
        level.reserved -= units;
        let missing = units - picked;
        level.on_hand -= missing;
        level.adjusted_out += i64::from(missing);
        level.picked += picked;
        let hold = (picked > 0).then(|| Hold::Picked { sku: sku.clone(), units: picked });
        Ok(Some(HoldChange { id, sku: sku.clone(), level, hold, expired: self.expired }))
    }

    /// What [`Self::restock`] changes.
    pub fn restock_change(&self, id: ReservationId) -> Option<HoldChange> {
        match self.holds.get(&id)? {
            Hold::Picked { sku, units } => {
                let mut level = self.level(sku);
                level.picked = level.picked.saturating_sub(*units);
                Some(HoldChange { id, sku: sku.clone(), level, hold: None, expired: self.expired })
            }
            Hold::Reserved { .. } => self.release_change(id),
        }
    }

    /// What [`Self::ship`] changes.
    pub fn ship_change(&self, id: ReservationId) -> Option<HoldChange> {
        let Some(Hold::Picked { sku, units }) = self.holds.get(&id) else { return None };
        let mut level = self.level(sku);
        level.picked = level.picked.saturating_sub(*units);
        level.on_hand = level.on_hand.saturating_sub(*units);
        level.shipped += u64::from(*units);
        Some(HoldChange { id, sku: sku.clone(), level, hold: None, expired: self.expired })
    }

    /// Applies a change decided from this bin as it is.
    pub fn apply(&mut self, change: HoldChange) {
        let HoldChange { id, sku, level, hold, expired } = change;
        self.levels.insert(sku, level);
        match hold {
            Some(hold) => self.holds.insert(id, hold),
            None => self.holds.remove(&id),
        };
        self.expired = expired;
        self.debug_check();
    }

    fn apply_if(&mut self, change: Option<HoldChange>) -> bool {
        let changed = change.is_some();
        if let Some(change) = change {
            self.apply(change);
        }
        changed
    }

    /// [`Self::reserve`] in place.
    ///
    /// # Errors
    /// As [`Self::reserve`]; the bin is then unchanged.
    pub fn reserve_in_place(&mut self, id: ReservationId, sku: &Sku, units: u32) -> Result<bool, BinError> {
        let change = self.reserve_change(id, sku, units)?;
        Ok(self.apply_if(change))
    }

    /// [`Self::release`] in place.
    pub fn release_in_place(&mut self, id: ReservationId) -> bool {
        let change = self.release_change(id);
        self.apply_if(change)
    }

    /// [`Self::expire`] in place.
    pub fn expire_in_place(&mut self, id: ReservationId) -> bool {
        let change = self.expire_change(id);
        self.apply_if(change)
    }

    /// [`Self::pick`] in place.
    ///
    /// # Errors
    /// As [`Self::pick`]; the bin is then unchanged.
    pub fn pick_in_place(&mut self, id: ReservationId, picked: u32) -> Result<bool, BinError> {
        let change = self.pick_change(id, picked)?;
        Ok(self.apply_if(change))
    }

    /// [`Self::restock`] in place.
    pub fn restock_in_place(&mut self, id: ReservationId) -> bool {
        let change = self.restock_change(id);
        self.apply_if(change)
    }

    /// [`Self::ship`] in place.
    pub fn ship_in_place(&mut self, id: ReservationId) -> bool {
        let change = self.ship_change(id);
        self.apply_if(change)
    }

    fn debug_check(&self) {
        debug_assert!(self.check_invariants().is_ok(), "{:?}", self.check_invariants());
    }

    /// Checks the bin's invariants (after a read, and before the write of a
    /// person's command).
    ///
    /// # Errors
    /// [`BinError::Invariant`] naming the broken rule.
    pub fn check_invariants(&self) -> Result<(), BinError> {
        self.check_levels()?;
        let mut reserved: BTreeMap<&Sku, u32> = BTreeMap::new();
        let mut picked: BTreeMap<&Sku, u32> = BTreeMap::new();
        for hold in self.holds.values() {
            match hold {
                Hold::Reserved { sku, units } => *reserved.entry(sku).or_default() += units,
                Hold::Picked { sku, units } => *picked.entry(sku).or_default() += units,
            }
        }
        for (sku, level) in &self.levels {
            if reserved.get(sku).copied().unwrap_or(0) != level.reserved {
                return Err(BinError::Invariant("reserved equals the sum of reservations"));
            }
            if picked.get(sku).copied().unwrap_or(0) != level.picked {
                return Err(BinError::Invariant("picked equals the sum of picked holds"));
            }
        }
        if reserved.keys().chain(picked.keys()).any(|sku| !self.levels.contains_key(*sku)) {
            return Err(BinError::Invariant("holds name stocked SKUs"));
        }
        Ok(())
    }

    /// The invariants of the counters alone, in time linear in the SKUs
    /// (not the holds): what every write of a hold or pick checks. The
    /// `*_in_place` decisions move a hold's units and the hold together, so
    /// the holds' sums stay equal to the counters; [`Self::check_invariants`]
    /// proves it on every read, and after every decision in debug builds.
    ///
    /// # Errors
    /// [`BinError::Invariant`] naming the broken rule.
    pub fn check_levels(&self) -> Result<(), BinError> {
        self.levels.values().try_for_each(Level::check)
    }
}

#[cfg(test)]
mod tests;
