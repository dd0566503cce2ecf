//! Integration tests: real engines on temporary stores. One binary (tests/it).

mod helpers;
mod cancel;
mod recovery;
mod saga;
