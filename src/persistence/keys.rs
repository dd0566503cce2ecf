/// (kind, id) -> versioned snapshot bytes.
pub(crate) const SNAPSHOT: u8 = 1;
/// (kind, id) of every aggregate whose saga is not terminal (empty value): what recovery resumes.
pub(crate) const OPEN: u8 = 2;
/// event id -> encoded envelope, until the receiver has acknowledged it.
pub(crate) const OUTBOX: u8 = 3;
// 4 was an inbox of applied event ids: they are kept in each aggregate's snapshot.
/// (order id, step id) -> encoded saga step.
pub(crate) const STEP: u8 = 5;
/// idempotency key -> encoded record.
pub(crate) const IDEMPOTENCY: u8 = 6;
/// Parts keyed (kind, id, part number), the layout before [`PART`]:
/// [`super::Store::open`] rewrites them.
pub(crate) const PART_BY_ID: u8 = 7;
/// (kind, part number, id) -> encoded part of a snapshot kept in rows of
/// its own, so that a change to one part writes that row only (a bin's
/// holds). The number comes first: part numbers are time-ordered ids (a
/// hold's is its order's), so the parts written in one commit — holds in
/// a hundred bins — share a few leaves of the tree instead of one leaf per
/// aggregate. Reading one aggregate's parts reads its whole kind's
/// ([`super::Store::record`]); bins are all read at start.
pub(crate) const PART: u8 = 8;

/// `tag`, `kind`, a zero byte, `id`: a kind's records sort together, by id.
pub(crate) fn named(tag: u8, kind: &str, id: &str) -> Vec<u8> {
    let mut key = kind_prefix(tag, kind);
    key.extend_from_slice(id.as_bytes());
    key
}

/// The prefix of every [`named`] key of `kind`.
pub(crate) fn kind_prefix(tag: u8, kind: &str) -> Vec<u8> {
    debug_assert!(!kind.as_bytes().contains(&0), "a record kind has no zero byte");
    let mut key = Vec::with_capacity(2 + kind.len() + 32);
    key.push(tag);
    key.extend_from_slice(kind.as_bytes());
    key.push(0);
    key
}

/// The key of part `part` of `(kind, id)`: [`kind_prefix`], the number
/// big-endian, the id.
pub(crate) fn part(kind: &str, id: &str, part: u128) -> Vec<u8> {
    let mut key = kind_prefix(PART, kind);
    key.extend_from_slice(&part.to_be_bytes());
    key.extend_from_slice(id.as_bytes());
    key
}

/// A [`part`] key after its [`kind_prefix`], read back as (number, id);
/// `None` when it is too short to be one.
pub(crate) fn split_part(rest: &[u8]) -> Option<(u128, &[u8])> {
    let (number, id) = rest.split_first_chunk::<16>()?;
    Some((u128::from_be_bytes(*number), id))
}

/// A [`PART_BY_ID`] key read back as (kind, id, number); `None` when malformed.
pub(crate) fn split_part_by_id(key: &[u8]) -> Option<(&str, &str, u128)> {
    let rest = key.strip_prefix(&[PART_BY_ID])?;
    let zero = rest.iter().position(|byte| *byte == 0)?;
    let (kind, rest) = (&rest[..zero], &rest[zero + 1..]);
    let (rest, number) = rest.split_last_chunk::<16>()?;
    let id = rest.strip_suffix(&[0])?;
    Some((std::str::from_utf8(kind).ok()?, std::str::from_utf8(id).ok()?, u128::from_be_bytes(*number)))
}

/// `tag` and a number, big-endian so that numbers sort as bytes do.
pub(crate) fn number(tag: u8, n: u128) -> [u8; 17] {
    let mut key = [0; 17];
    key[0] = tag;
    key[1..].copy_from_slice(&n.to_be_bytes());
    key
}

/// An order's saga step.
pub(crate) fn step(order: u128, step: u128) -> [u8; 33] {
    let mut key = [0; 33];
    key[0] = STEP;
    key[1..17].copy_from_slice(&order.to_be_bytes());
    key[17..].copy_from_slice(&step.to_be_bytes());
    key
}

/// `tag` and a text key.
pub(crate) fn text(tag: u8, text: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + text.len());
    key.push(tag);
    key.extend_from_slice(text.as_bytes());
    key
}

/// The first key after every key that starts with `prefix` (`None`: no such key).
pub(crate) fn after_prefix(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}
