//! maildlp — outbound e-mail data-loss-prevention engine.
//!
//! Layers, each knowing nothing of the ones above it:
//! - [`decode`]: raw message bytes → text segments with a location (MIME parts, attachments,
//!   archives, Office/PDF/RTF text), plus encrypted and unscannable parts.
//! - [`detect`]: text → matches of sensitive kinds (patterns from `patterns/*.toml`).
//! - [`scan`]: ties decode and detect together into a [`scan::ScanReport`] per message.
//! - front ends (`mailbox` reading, `report` printing, the CLI) call the engine, never the reverse.

pub mod decode;
pub mod detect;
pub mod filter;
pub mod limits;
pub mod mailbox;
pub mod mask;
pub mod metrics;
pub mod milter;
pub mod model;
pub mod notify;
pub mod policy;
pub mod quarantine;
pub mod relay;
pub mod replay;
pub mod report;
pub mod scan;
pub mod web;
