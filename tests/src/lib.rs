//! Shared fixtures for the end-to-end tests and the demo: a scene generator that renders vehicles
//! with plates into H.264 video, and helpers that start the real parts (Mosquitto, the server,
//! the appliance) on free ports in a private directory.
pub mod backlog;
pub mod browser;
pub mod console;
pub mod pg_tls;
pub mod photo_video;
pub mod proxy;
pub mod scene;
pub mod smtp;
pub mod stack;
pub mod video;
