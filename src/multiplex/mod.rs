//! Multiplexing rules: what a statement or a server reply says about session state, and
//! when a client session must stay on one backend connection (design.md §5).

pub mod classify;
pub mod lexer;
pub mod pin;
pub mod tracking;

pub use pin::PinReason;
