//! The operator console over MQTT (issue 7, under construction): operators publish JSON
//! requests on `console/{user}/req` and read responses on `console/{user}/resp`. So far: the
//! role matrix ([`roles`]), the request envelope ([`protocol`]) and the dispatcher that runs a
//! request for a user from the users table and audits it ([`dispatch`]). The MQTT wiring, the
//! remaining commands (hotlists, ACP, release requests), retained live topics and an
//! interactive console follow; [`client`] is the one-shot client `sync-server console` uses.
pub mod client;
pub mod dispatch;
pub mod protocol;
pub mod roles;
