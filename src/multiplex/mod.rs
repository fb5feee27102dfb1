//! Multiplexing rules: what a statement or a server reply says about session state, the
//! state a session carries from backend to backend, and when a client session must stay
//! on one backend connection.

pub mod classify;
pub mod connection_scope;
pub mod deferred;
pub mod handshake_state;
pub mod held;
pub mod hold;
pub mod lexer;
pub mod pin;
pub mod scope;
pub mod session_state;
pub mod statements;
pub mod tracking;
pub mod variables;

pub use pin::PinReason;
pub use variables::Variables;
