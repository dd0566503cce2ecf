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
        if u64::from(self.reserved) + u64::from(self.picked) > u64::from(self.on_hand) {
            return Err(BinError::Invariant("reserved + picked <= on_hand"));
        }
        let accounted = i128::from(self.on_hand) + i128::from(self.shipped) + i128::from(self.adjusted_out);
        if accounted != i128::from(self.received) {
            return Err(BinError::Invariant("received = on_hand + shipped + adjusted_out"));
        }
        Ok(())
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
mod tests {
    use super::*;

    fn sku() -> Sku {
        Sku::parse("SKU-1").unwrap()
    }

    fn bin_with(units: u32) -> Bin {
        Bin::new("wh/A-01".parse().unwrap()).receive(&sku(), units).unwrap()
    }

    fn rid(n: u128) -> ReservationId {
        ReservationId::from_raw(n)
    }

    #[test]
    fn in_place_decisions_match_the_pure_ones_and_errors_change_nothing() {
        let start = bin_with(10).reserve(rid(1), &sku(), 3).unwrap().reserve(rid(2), &sku(), 2).unwrap();
        let start = start.pick(rid(2), 2).unwrap();
        // (description, pure, in place)
        type Pure = Box<dyn Fn(&Bin) -> Result<Bin, BinError>>;
        type InPlace = Box<dyn Fn(&mut Bin) -> Result<bool, BinError>>;
        let cases: Vec<(&str, Pure, InPlace)> = vec![
            (
                "reserve",
                Box::new(|b| b.reserve(rid(3), &sku(), 4)),
                Box::new(|b| b.reserve_in_place(rid(3), &sku(), 4)),
            ),
            ("repeat", Box::new(|b| b.reserve(rid(1), &sku(), 3)), Box::new(|b| b.reserve_in_place(rid(1), &sku(), 3))),
            (
                "conflict",
                Box::new(|b| b.reserve(rid(1), &sku(), 1)),
                Box::new(|b| b.reserve_in_place(rid(1), &sku(), 1)),
            ),
            ("short", Box::new(|b| b.reserve(rid(4), &sku(), 9)), Box::new(|b| b.reserve_in_place(rid(4), &sku(), 9))),
            ("zero", Box::new(|b| b.reserve(rid(4), &sku(), 0)), Box::new(|b| b.reserve_in_place(rid(4), &sku(), 0))),
            (
                "unstocked",
                Box::new(|b| b.reserve(rid(4), &Sku::parse("B").unwrap(), 1)),
                Box::new(|b| b.reserve_in_place(rid(4), &Sku::parse("B").unwrap(), 1)),
            ),
            ("release", Box::new(|b| Ok(b.release(rid(1)))), Box::new(|b| Ok(b.release_in_place(rid(1))))),
            ("release picked", Box::new(|b| Ok(b.release(rid(2)))), Box::new(|b| Ok(b.release_in_place(rid(2))))),
            ("expire", Box::new(|b| Ok(b.expire(rid(1)))), Box::new(|b| Ok(b.expire_in_place(rid(1))))),
            ("expire unknown", Box::new(|b| Ok(b.expire(rid(9)))), Box::new(|b| Ok(b.expire_in_place(rid(9))))),
            ("pick short", Box::new(|b| b.pick(rid(1), 1)), Box::new(|b| b.pick_in_place(rid(1), 1))),
            ("pick none", Box::new(|b| b.pick(rid(1), 0)), Box::new(|b| b.pick_in_place(rid(1), 0))),
            ("over-pick", Box::new(|b| b.pick(rid(1), 4)), Box::new(|b| b.pick_in_place(rid(1), 4))),
            ("pick again", Box::new(|b| b.pick(rid(2), 2)), Box::new(|b| b.pick_in_place(rid(2), 2))),
            ("restock", Box::new(|b| Ok(b.restock(rid(2)))), Box::new(|b| Ok(b.restock_in_place(rid(2))))),
            ("restock reserved", Box::new(|b| Ok(b.restock(rid(1)))), Box::new(|b| Ok(b.restock_in_place(rid(1))))),
            ("ship", Box::new(|b| Ok(b.ship(rid(2)))), Box::new(|b| Ok(b.ship_in_place(rid(2))))),
            ("ship reserved", Box::new(|b| Ok(b.ship(rid(1)))), Box::new(|b| Ok(b.ship_in_place(rid(1))))),
        ];
        for (what, pure, in_place) in cases {
            let mut bin = start.clone();
            match (pure(&start), in_place(&mut bin)) {
                (Ok(next), Ok(changed)) => {
                    assert_eq!(bin, next, "{what}: the same bin");
                    assert_eq!(changed, next != start, "{what}: says whether it changed");
                }
                (Err(expected), Err(got)) => {
                    assert_eq!(got, expected, "{what}: the same error");
                    assert_eq!(bin, start, "{what}: an error changes nothing");
                }
                (pure, in_place) => panic!("{what}: {pure:?} but in place {in_place:?}"),
            }
            bin.check_invariants().unwrap();
        }
    }

    #[test]
    fn reserving_more_than_available_fails_and_changes_nothing() {
        let bin = bin_with(5).reserve(rid(1), &sku(), 4).unwrap();
        let err = bin.reserve(rid(2), &sku(), 2).unwrap_err();
        assert_eq!(err, BinError::InsufficientStock { sku: sku(), available: 1, requested: 2 });
        assert_eq!(bin.level(&sku()).available(), 1);
    }

    #[test]
    fn reserve_is_idempotent_per_id_and_refuses_other_terms() {
        let bin = bin_with(5).reserve(rid(1), &sku(), 2).unwrap();
        assert_eq!(bin.reserve(rid(1), &sku(), 2).unwrap(), bin);
        assert_eq!(bin.reserve(rid(1), &sku(), 3).unwrap_err(), BinError::ReservationConflict(rid(1)));
    }

    #[test]
    fn release_and_expire_return_units_once() {
        let bin = bin_with(5).reserve(rid(1), &sku(), 2).unwrap();
        let released = bin.release(rid(1));
        assert_eq!(released.level(&sku()).available(), 5);
        assert_eq!(released.release(rid(1)), released);
        let expired = bin.expire(rid(1));
        assert_eq!(expired.expired(), 1);
        assert_eq!(expired.expire(rid(1)).expired(), 1);
    }

    #[test]
    fn pick_then_ship_takes_units_out_of_the_bin() {
        let bin = bin_with(5).reserve(rid(1), &sku(), 2).unwrap().pick(rid(1), 2).unwrap();
        assert_eq!(bin.level(&sku()).picked, 2);
        assert_eq!(bin.pick(rid(1), 2).unwrap(), bin, "a repeated pick changes nothing");
        let shipped = bin.ship(rid(1));
        let level = shipped.level(&sku());
        assert_eq!((level.on_hand, level.picked, level.shipped), (3, 0, 2));
        assert_eq!(shipped.ship(rid(1)), shipped);
    }

    #[test]
    fn a_short_pick_writes_off_the_missing_units() {
        let bin = bin_with(5).reserve(rid(1), &sku(), 3).unwrap().pick(rid(1), 1).unwrap();
        let level = bin.level(&sku());
        assert_eq!((level.on_hand, level.reserved, level.picked, level.adjusted_out), (3, 0, 1, 2));
        assert!(bin.check_invariants().is_ok());
    }

    #[test]
    fn over_pick_is_refused() {
        let bin = bin_with(5).reserve(rid(1), &sku(), 2).unwrap();
        assert_eq!(bin.pick(rid(1), 3).unwrap_err(), BinError::OverPick { reserved: 2, picked: 3 });
    }

    #[test]
    fn restock_puts_picked_units_back() {
        let bin = bin_with(5).reserve(rid(1), &sku(), 2).unwrap().pick(rid(1), 2).unwrap().restock(rid(1));
        assert_eq!(bin.level(&sku()).available(), 5);
        assert!(bin.holds().is_empty());
    }

    #[test]
    fn adjustment_cannot_go_below_held_units() {
        let bin = bin_with(5).reserve(rid(1), &sku(), 4).unwrap();
        assert_eq!(bin.adjust(&sku(), -2).unwrap_err(), BinError::AdjustmentBelowHeld { sku: sku(), held: 4 });
        let adjusted = bin.adjust(&sku(), -1).unwrap();
        assert_eq!(adjusted.level(&sku()).on_hand, 4);
        assert!(adjusted.check_invariants().is_ok());
    }

    #[test]
    fn zero_quantities_are_refused() {
        assert_eq!(bin_with(1).receive(&sku(), 0).unwrap_err(), BinError::ZeroQuantity);
        assert_eq!(bin_with(1).reserve(rid(1), &sku(), 0).unwrap_err(), BinError::ZeroQuantity);
    }
}
