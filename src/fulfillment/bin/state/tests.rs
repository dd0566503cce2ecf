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
        ("reserve", Box::new(|b| b.reserve(rid(3), &sku(), 4)), Box::new(|b| b.reserve_in_place(rid(3), &sku(), 4))),
        ("repeat", Box::new(|b| b.reserve(rid(1), &sku(), 3)), Box::new(|b| b.reserve_in_place(rid(1), &sku(), 3))),
        ("conflict", Box::new(|b| b.reserve(rid(1), &sku(), 1)), Box::new(|b| b.reserve_in_place(rid(1), &sku(), 1))),
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
fn the_books_of_several_bins_balance_and_count_what_was_oversold() {
    let sku = Sku::parse("S").unwrap();
    let mut one = Bin::new("wh/A".parse().unwrap()).receive(&sku, 10).unwrap();
    one.reserve_in_place(ReservationId::from_raw(1), &sku, 4).unwrap();
    let two = Bin::new("wh/B".parse().unwrap()).receive(&sku, 5).unwrap().adjust(&sku, -2).unwrap();
    let mut book = StockBook::default();
    book.add(&one.level(&sku));
    book.add(&two.level(&sku));
    assert_eq!((book.received, book.on_hand, book.held, book.available, book.written_off), (15, 13, 4, 9, 2));
    assert!(book.check().is_ok());
    assert_eq!(book.oversold(), 0);
    let broken = StockBook { held: 14, ..book };
    assert!(book.check().is_ok() && broken.check().is_err(), "more held than on hand");
    assert_eq!(StockBook { shipped: 10, ..book }.oversold(), 1, "13 came in and stayed: 10 shipped and 4 held");
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
