//! Cross-crate test support for OCOP Score.
//!
//! What it is: tools the tests in `tests/tests/` share — a fault-injecting
//! HTTP proxy that sits between real devices ([`ocop_app::Device`]) and a real
//! sync server on 127.0.0.1, and helpers to start and restart servers.
//!
//! What it is not: a mock. Every byte a device sends reaches the real server
//! (or is dropped on purpose by the proxy, as a flaky network would).

pub mod proxy;
pub mod world;
