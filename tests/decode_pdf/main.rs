//! PDF decoding: text from documents written with lopdf and by hand, encryption, and hostile
//! input (deep nesting, stream bombs, broken structure). Inputs are built in the tests.

#[allow(dead_code)]
mod common;
mod metadata;
mod pdf;
