//! Commands that have grown past a few lines, one file each.

pub mod inputs;
pub mod quarantine;
pub mod relay;
pub mod serve;
pub mod user;
