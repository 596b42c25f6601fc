//! Address Confidentiality Program plates, kept only as keyed digests (see
//! [`trailer_wire::acp`]: the server computes the same digests from the plates it is given).
pub use trailer_wire::acp::acp_digest;
