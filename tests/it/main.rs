//! Integration tests: real engines on temporary stores. One binary (tests/it).

mod api;
mod browser;
mod cancel;
mod distributed;
mod figures;
mod fuzz;
mod gateway;
mod helpers;
mod load;
mod model;
mod recovery;
mod saga;
mod schemathesis;
mod security;
mod storage;
mod torture;
