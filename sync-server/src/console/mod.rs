//! The operator console over MQTT: operators publish JSON requests on `console/{user}/req`
//! and read responses on `console/{user}/resp` (the broker binds each to their own topics), and
//! read their role's live, retained topics under `console/{user}/live/`.
//!
//! - [`protocol`]: the request and response envelope, and why a payload is refused (pure).
//! - [`dispatch`]: one request for one user, run by [`crate::commands`] as `console:{user}`.
//! - [`live`]: the live topics each role sees, published only when they change.
//! - [`client`]: the console client `sync-server console` uses; [`interactive`] its
//!   line-by-line mode with tables and prompts.
pub mod client;
pub mod dispatch;
pub mod downloads;
pub mod interactive;
pub mod live;
pub mod protocol;
pub mod terminal;
pub use crate::commands::roles;
