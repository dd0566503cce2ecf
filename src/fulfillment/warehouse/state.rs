//! Warehouses and allocation: which warehouse and bin supplies which line.
//!
//! Allocation prefers one warehouse for the whole order (the one with the
//! best priority that can take it all); otherwise each line goes whole to
//! the best warehouse that can take it; only a line no single warehouse can
//! take is split across warehouses, by priority. Inside a warehouse, bins
//! with more available units are drawn first, so lines split over few bins.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::events::{BinCode, BinId, EventLine, ReservationId, Sku, SkuUnits, WarehouseId};

/// Most bins in one warehouse.
pub const WAREHOUSE_BINS_MAX: usize = 10_000;
/// Longest warehouse display name, in characters.
pub const WAREHOUSE_NAME_LEN_MAX: usize = 200;

/// A warehouse: its bins and where it ranks for allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warehouse {
    /// Its id.
    pub id: WarehouseId,
    /// Display name.
    pub name: String,
    /// Lower ranks first.
    pub priority: u32,
    /// Its bins.
    pub bins: BTreeSet<BinCode>,
}

/// Why a warehouse definition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WarehouseError {
    /// A warehouse needs at least one bin and at most [`WAREHOUSE_BINS_MAX`].
    #[error("a warehouse has 1 to {WAREHOUSE_BINS_MAX} bins")]
    BinCount,
    /// The name is empty, too long or has control characters.
    #[error("a warehouse name has 1 to {WAREHOUSE_NAME_LEN_MAX} printable characters")]
    Name,
}

impl Warehouse {
    /// Validates a warehouse definition.
    ///
    /// # Errors
    /// [`WarehouseError::BinCount`] or [`WarehouseError::Name`].
    pub fn new(id: WarehouseId, name: &str, priority: u32, bins: BTreeSet<BinCode>) -> Result<Self, WarehouseError> {
        if bins.is_empty() || bins.len() > WAREHOUSE_BINS_MAX {
            return Err(WarehouseError::BinCount);
        }
        let name = name.trim();
        if name.is_empty() || name.chars().count() > WAREHOUSE_NAME_LEN_MAX || name.chars().any(char::is_control) {
            return Err(WarehouseError::Name);
        }
        Ok(Self { id, name: name.to_owned(), priority, bins })
    }
}

/// Units of a SKU free in one bin, as seen when planning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinStock {
    /// The bin.
    pub bin: BinId,
    /// The SKU.
    pub sku: Sku,
    /// Units free to reserve.
    pub available: u32,
}

/// One planned reservation: `units` of line `line`'s SKU from `bin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedItem {
    /// Index of the order line.
    pub line: u16,
    /// The SKU.
    pub sku: Sku,
    /// The bin.
    pub bin: BinId,
    /// Units to hold.
    pub units: u32,
    /// The reservation's id.
    pub reservation: ReservationId,
}

/// The warehouses' ids, preferred first: lower priority rank, then id.
pub fn ranked<'a>(warehouses: impl IntoIterator<Item = &'a Warehouse>) -> Vec<WarehouseId> {
    let mut ranked: Vec<&Warehouse> = warehouses.into_iter().collect();
    ranked.sort_by(|a, b| (a.priority, &a.id).cmp(&(b.priority, &b.id)));
    ranked.into_iter().map(|wh| wh.id.clone()).collect()
}

/// The units `lines` ask for, per SKU, in SKU order. Lines may repeat a SKU
/// (channel orders): their quantities add up.
pub fn demand(lines: &[EventLine]) -> BTreeMap<&Sku, u64> {
    let mut demand: BTreeMap<&Sku, u64> = BTreeMap::new();
    for line in lines {
        *demand.entry(&line.sku).or_default() += u64::from(line.quantity.get());
    }
    demand
}

/// Plans the reservations for `lines` given the warehouses, preferred first
/// ([`ranked`]), and the free stock per bin. `reservation_id(n)` names the
/// n-th planned item.
///
/// # Errors
/// The units missing per SKU when the stock cannot cover every line.
pub fn allocate(
    lines: &[EventLine],
    ranked: &[WarehouseId],
    stock: &[BinStock],
    mut reservation_id: impl FnMut(u16) -> ReservationId,
) -> Result<Vec<PlannedItem>, Vec<SkuUnits>> {
    // Free units per (warehouse, sku), bins richest first.
    let mut free: BTreeMap<(WarehouseId, Sku), Vec<(BinId, u32)>> = BTreeMap::new();
    for entry in stock.iter().filter(|s| s.available > 0) {
        free.entry((entry.bin.warehouse.clone(), entry.sku.clone()))
            .or_default()
            .push((entry.bin.clone(), entry.available));
    }
    for bins in free.values_mut() {
        bins.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    }
    let total_in = |free: &BTreeMap<(WarehouseId, Sku), Vec<(BinId, u32)>>, wh: &WarehouseId, sku: &Sku| -> u64 {
        free.get(&(wh.clone(), sku.clone())).map_or(0, |bins| bins.iter().map(|(_, n)| u64::from(*n)).sum())
    };

    let demand = demand(lines);
    let whole = ranked.iter().find(|wh| demand.iter().all(|(sku, units)| total_in(&free, wh, sku) >= *units)).cloned();

    let mut plan = Vec::new();
    let mut missing: BTreeMap<Sku, u32> = BTreeMap::new();
    for (index, line) in lines.iter().enumerate() {
        let line_index = u16::try_from(index).unwrap_or(u16::MAX);
        let wanted = line.quantity.get();
        let single = whole
            .clone()
            .or_else(|| ranked.iter().find(|wh| total_in(&free, wh, &line.sku) >= u64::from(wanted)).cloned());
        let candidates: Vec<WarehouseId> = match single {
            Some(id) => vec![id],
            None => ranked.to_vec(),
        };
        let mut left = wanted;
        for warehouse in &candidates {
            let Some(bins) = free.get_mut(&(warehouse.clone(), line.sku.clone())) else { continue };
            for (bin, available) in bins.iter_mut() {
                if left == 0 {
                    break;
                }
                let take = left.min(*available);
                if take == 0 {
                    continue;
                }
                *available -= take;
                left -= take;
                plan.push(PlannedItem {
                    line: line_index,
                    sku: line.sku.clone(),
                    bin: bin.clone(),
                    units: take,
                    reservation: ReservationId::from_raw(0),
                });
            }
        }
        if left > 0 {
            *missing.entry(line.sku.clone()).or_default() += left;
        }
    }
    if !missing.is_empty() {
        return Err(missing.into_iter().map(|(sku, units)| SkuUnits { sku, units }).collect());
    }
    for (n, item) in plan.iter_mut().enumerate() {
        item.reservation = reservation_id(u16::try_from(n).unwrap_or(u16::MAX));
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Quantity;

    fn wh(id: &str, priority: u32, bins: &[&str]) -> Warehouse {
        Warehouse::new(
            WarehouseId::parse(id).unwrap(),
            id,
            priority,
            bins.iter().map(|b| BinCode::parse(b).unwrap()).collect(),
        )
        .unwrap()
    }

    fn stock(bin: &str, sku: &str, available: u32) -> BinStock {
        BinStock { bin: bin.parse().unwrap(), sku: Sku::parse(sku).unwrap(), available }
    }

    fn line(sku: &str, units: u32) -> EventLine {
        EventLine { sku: Sku::parse(sku).unwrap(), quantity: Quantity::new(units).unwrap() }
    }

    fn ids(n: u16) -> ReservationId {
        ReservationId::from_raw(u128::from(n) + 1)
    }

    fn warehouses() -> Vec<Warehouse> {
        vec![wh("east", 1, &["A", "B"]), wh("west", 2, &["A"])]
    }

    #[test]
    fn one_warehouse_takes_the_whole_order_when_it_can() {
        let stock = vec![stock("east/A", "X", 5), stock("west/A", "X", 5), stock("west/A", "Y", 5)];
        let plan = allocate(&[line("X", 2), line("Y", 1)], &ranked(&warehouses()), &stock, ids).unwrap();
        assert!(plan.iter().all(|p| p.bin.warehouse.as_str() == "west"), "only west has both: {plan:?}");
    }

    #[test]
    fn priority_decides_between_warehouses_that_can_each_take_all() {
        let stock = vec![stock("east/A", "X", 5), stock("west/A", "X", 5)];
        let plan = allocate(&[line("X", 2)], &ranked(&warehouses()), &stock, ids).unwrap();
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].bin.warehouse.as_str(), "east");
    }

    #[test]
    fn lines_go_whole_to_different_warehouses_when_no_single_one_can() {
        let stock = vec![stock("east/A", "X", 5), stock("west/A", "Y", 5)];
        let plan = allocate(&[line("X", 2), line("Y", 3)], &ranked(&warehouses()), &stock, ids).unwrap();
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[0].bin.warehouse.as_str(), "east");
        assert_eq!(plan[1].bin.warehouse.as_str(), "west");
    }

    #[test]
    fn a_line_is_split_only_when_no_warehouse_can_take_it() {
        let stock = vec![stock("east/A", "X", 3), stock("east/B", "X", 1), stock("west/A", "X", 2)];
        let plan = allocate(&[line("X", 6)], &ranked(&warehouses()), &stock, ids).unwrap();
        let units: u32 = plan.iter().map(|p| p.units).sum();
        assert_eq!(units, 6);
        assert_eq!(plan[0].bin.to_string(), "east/A", "richest bin of the best warehouse first");
        assert!(plan.iter().any(|p| p.bin.warehouse.as_str() == "west"));
    }

    #[test]
    fn demand_adds_up_the_lines_of_each_sku() {
        let lines = [line("X", 2), line("Y", 1), line("X", 3)];
        let demand: Vec<(String, u64)> = demand(&lines).into_iter().map(|(sku, n)| (sku.to_string(), n)).collect();
        assert_eq!(demand, [("X".to_owned(), 5), ("Y".to_owned(), 1)]);
    }

    #[test]
    fn missing_units_are_reported_per_sku() {
        let stock = vec![stock("east/A", "X", 1)];
        let missing = allocate(&[line("X", 3), line("Y", 1)], &ranked(&warehouses()), &stock, ids).unwrap_err();
        assert_eq!(missing.len(), 2);
        assert_eq!(missing[0].units, 2);
    }

    #[test]
    fn warehouse_needs_bins_and_a_name() {
        assert_eq!(
            Warehouse::new(WarehouseId::parse("w").unwrap(), "W", 1, BTreeSet::new()).unwrap_err(),
            WarehouseError::BinCount
        );
        let bins = [BinCode::parse("A").unwrap()].into_iter().collect();
        assert_eq!(Warehouse::new(WarehouseId::parse("w").unwrap(), " ", 1, bins).unwrap_err(), WarehouseError::Name);
    }
}
