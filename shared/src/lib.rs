//! The OCOP Score scoring core.
//!
//! This crate is what assessors' phones, chairs' laptops and the sync server
//! share, so that all three compute the same points, the same star and the same
//! council result from the same code:
//! - [`rubric`]: the score-sheet model (decision, parts A/B/C, sections,
//!   criteria, options, knock-outs, mandatory flags, per-star requirements),
//!   with [`validate`] loading rubric files and reporting every problem with its path;
//! - [`bundled`]: the 26 sheets of 26/2026/QĐ-TTg, the two complete 1048/781
//!   food sheets and the 148 template;
//! - [`score`]: points of one sheet, unanswered criteria, the provisional star;
//! - [`stars`]: the half-open star bands and what caps or voids a star;
//! - [`council`]: mean, spread, quorum and star of a council, order-independent;
//! - [`fixed`]: two-decimal fixed-point numbers (no floats near a threshold);
//! - [`wire`]: the sync protocol types, frozen by golden JSON tests;
//! - [`split`]: a push body's mutations found without decoding them.
//!
//! It is **not** a place for I/O: no files, network, database, async or clock
//! reads. It builds for `wasm32-unknown-unknown` as well as natively, and its
//! dependency tree must stay free of I/O crates (checked in CI).

pub mod bundled;
mod bundled_26_2026;
pub mod council;
pub mod fixed;
pub mod rubric;
pub mod score;
pub mod split;
pub mod stars;
pub mod validate;
pub mod wire;

pub use fixed::Centi;
