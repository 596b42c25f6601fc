//! The operator console over MQTT (issue 7, under construction): operators publish JSON
//! requests on `console/{user}/req` and read responses on `console/{user}/resp`. So far: the
//! role matrix ([`roles`]) and the request envelope ([`protocol`]); the dispatcher over MQTT,
//! the users table with written authorisations and the console command follow.
pub mod protocol;
pub mod roles;
