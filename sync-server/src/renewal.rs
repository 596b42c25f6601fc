//! Trailers' certificates renewed over the link. A trailer whose certificate nears expiry makes a
//! new key and sends a request signed with it ([`trailer_wire::CertRequest`]); the server signs it
//! from the agency's PKI (`[pki] dir`) for that trailer's own name only, and only while the
//! trailer is enrolled, and sends the certificate back as a downlink. Each renewal is in the
//! audit trail with the downlink that carries it (one transaction).
use crate::config::PkiConfig;
use crate::pki::{self, Role};
use crate::records::{Records, RecordsError};
use thiserror::Error;
use trailer_wire::{CertRequest, Downlink};

#[derive(Debug, Error)]
pub enum RenewalError {
    #[error("certificate renewal is not configured here (set pki.dir)")]
    NotConfigured,
    #[error("{0} is not an enrolled trailer")]
    NotEnrolled(String),
    #[error("cannot sign the request of {trailer}: {reason}")]
    Refused { trailer: String, reason: String },
    #[error(transparent)]
    Records(#[from] RecordsError),
}

/// Signs `req` for `trailer` and queues the certificate for it. Returns the downlink's id.
pub async fn renew(
    records: &Records,
    pki: &PkiConfig,
    trailer: &str,
    req: &CertRequest,
    now: i64,
) -> Result<u64, RenewalError> {
    if pki.dir.as_os_str().is_empty() {
        return Err(RenewalError::NotConfigured);
    }
    if !records.is_enrolled(trailer).await? {
        return Err(RenewalError::NotEnrolled(trailer.into()));
    }
    let chain = pki::sign_request(&pki.dir, &req.csr_der, trailer, Role::Trailer, pki.trailer_days)
        .map_err(|e| RenewalError::Refused { trailer: trailer.into(), reason: e.to_string() })?;
    let (_, _, not_after) = pki::describe(&chain)
        .map_err(|e| RenewalError::Refused { trailer: trailer.into(), reason: e.to_string() })?;
    let until = crate::records::iso_date(not_after);
    let summary = format!("certificate renewed until {until}");
    let entry = crate::audit::Entry {
        at: now,
        actor: "sync-server".into(),
        action: "trailer.certificate_renewed".into(),
        purpose: "certificate renewal".into(),
        case_number: String::new(),
        detail: format!("{trailer}: a certificate for its own new key, valid until {until}"),
        result_count: 1,
    };
    Ok(records
        .enqueue_audited(trailer, "certificate", &summary, &entry, now, |downlink_id| {
            Downlink::Certificate { downlink_id, chain_pem: chain }
        })
        .await?)
}
