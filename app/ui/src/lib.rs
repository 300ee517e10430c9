//! The OCOP Score app's screens (Leptos 0.8, client-side rendered, compiled
//! to wasm and shown by the Tauri shell in `app/shell`).
//!
//! What it is: routes (`routes/`), components (`components/`), one typed
//! module over the shell's commands ([`api`]), and plain-Rust logic the
//! tests run natively ([`i18n`], [`format`], [`enrol`], [`view`]). Scores and
//! stars are computed here by `ocop-shared`, the same code as the server's.
//!
//! What it is not: storage or sync. Everything it shows comes from the
//! device core through [`api`]; nothing is kept only in the page.

pub mod api;
pub mod app;
mod components;
pub mod dto;
pub mod enrol;
pub mod format;
pub mod i18n;
mod routes;
pub mod view;
