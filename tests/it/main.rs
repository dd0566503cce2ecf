//! Integration tests: real engines on temporary stores. One binary (tests/it).

mod api;
mod cancel;
mod helpers;
mod load;
mod recovery;
mod saga;
