//! Hits to the agency's dispatch systems, as they arrive: each alert of a target's categories
//! POSTed to its webhook as JSON ([`webhook`]) or mailed to its address through the agency's
//! mail relay ([`mail`]), once; the delivery and its audit entry
//! (`alerts.forwarded`, an access: a hit delivered to a person) committed together. A target
//! that fails is tried again with a growing pause; the others go on.
//!
//! The duty is woken when the writer stores a hit, and looks again every 30 s. A dispatch
//! system on the agency's broker ([`mqtt`]) is served by the server's broker connection
//! instead, with the same choice of hits ([`due`]) and the same audit entry ([`entry`]).
use crate::audit::Entry;
use crate::config::{ForwardConfig, category_key};
use crate::records::{AlertView, Records, RecordsError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

pub mod mail;
pub mod mqtt;
pub mod webhook;

/// Why a hit was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("{0}")]
    Records(#[from] RecordsError),
    #[error("{0}")]
    Delivery(String),
}

/// The host part of an `http(s)://host[:port]/path` address.
pub fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// What a dispatch system receives for one hit. The plate is in it: the receiver is the
/// agency's own system, and the delivery is audited as an access.
pub fn payload(agency: &str, a: &AlertView) -> serde_json::Value {
    serde_json::json!({
        "kind": "alpr-hit",
        "agency": agency,
        "trailer": a.trailer_id,
        "alert_id": a.alert_id,
        "plate": a.plate,
        "list": a.list_name,
        "category": a.category,
        "case_number": a.case_number,
        "seen_at": a.seen_at,
        "lat": a.lat,
        "lon": a.lon,
        "verify": "Confirm the plate against the state systems (MNJIS/NLETS) before any action.",
    })
}

/// The hits due to `target`: received within its `max_age_s` and not yet sent to it, of its
/// categories. One of another category is marked as passed over (at 0), so it is not looked
/// at again.
pub async fn due(
    records: &Records,
    target: &ForwardConfig,
    now: i64,
) -> Result<Vec<AlertView>, RecordsError> {
    let since = now - (target.max_age_s as i64).saturating_mul(1000);
    let mut out = Vec::new();
    for a in records.alerts_to_forward(&target.name, since, 100).await? {
        if takes(target, &a) {
            out.push(a);
        } else {
            let mut s = records.session().await?;
            s.alert_forwarded(&target.name, &a.trailer_id, a.alert_id, 0).await?;
            s.commit().await?;
        }
    }
    Ok(out)
}

/// Whether `target` takes hits of the alert's category.
pub fn takes(target: &ForwardConfig, a: &AlertView) -> bool {
    let wanted = category_key(&a.category);
    target.categories.is_empty() || target.categories.iter().any(|c| category_key(c) == wanted)
}

/// The audit entry of a hit sent to `target` (an access: a hit delivered to a person).
pub fn entry(target: &ForwardConfig, a: &AlertView, now: i64) -> Entry {
    Entry {
        at: now,
        actor: format!("forward:{}", target.name),
        action: "alerts.forwarded".into(),
        purpose: "hit sent to dispatch".into(),
        case_number: a.case_number.clone().unwrap_or_default(),
        detail: format!(
            "alert {} from {} ({}, list {}) to {}",
            a.alert_id, a.trailer_id, a.category, a.list_name, target.name
        ),
        result_count: 1,
    }
}

/// One webhook or mail target's pass: sends each hit due to it, records each delivery with its
/// audit entry. Returns how many were delivered; stops at the first failure (the rest wait for
/// the next).
pub async fn round(
    records: &Records,
    config: &crate::Config,
    target: &ForwardConfig,
    now: i64,
) -> Result<usize, ForwardError> {
    let agency = config.agency.name.as_str();
    let mut sent = 0;
    for a in due(records, target, now).await? {
        // Sent before the session opens (no write lock is held over the network). Should the
        // record then fail, the hit is sent again: a receiver keys hits by trailer and alert id.
        let hit = payload(agency, &a);
        if target.mail_to.is_empty() {
            webhook::post(target, &hit).await
        } else {
            mail::send(&config.bca, &target.mail_to, &hit).await
        }
        .map_err(ForwardError::Delivery)?;
        let mut s = records.session().await?;
        s.alert_forwarded(&target.name, &a.trailer_id, a.alert_id, now).await?;
        s.audit(&entry(target, &a, now)).await?;
        s.commit().await?;
        sent += 1;
    }
    Ok(sent)
}

/// Runs until `shutdown`: each target's round when a hit is stored (`wake`) and every 30 s; a
/// failing target waits 2 s, then twice as long each time, up to 5 minutes.
pub async fn duty(
    records: Records,
    config: crate::Config,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Targets on the broker are served by the broker connection ([`mqtt`]).
    let targets: Vec<&ForwardConfig> =
        config.forward.iter().filter(|t| t.mqtt_client.is_empty()).collect();
    if targets.is_empty() {
        return;
    }
    let mut retry_at = vec![tokio::time::Instant::now(); targets.len()];
    let mut pause =
        vec![
            trailer_wire::backoff::Backoff::new(Duration::from_secs(2), Duration::from_secs(300));
            targets.len()
        ];
    loop {
        for (i, target) in targets.iter().copied().enumerate() {
            if tokio::time::Instant::now() < retry_at[i] {
                continue;
            }
            match round(&records, &config, target, crate::now_ms()).await {
                Ok(n) => {
                    if n > 0 {
                        tracing::info!(target = %target.name, hits = n, "hits sent to dispatch");
                    }
                    pause[i].succeeded();
                }
                Err(e) => {
                    let wait = pause[i].failed(0.0);
                    tracing::warn!(target = %target.name, error = %e, retry_in_s = wait.as_secs(), "cannot send hits to dispatch");
                    retry_at[i] = tokio::time::Instant::now() + wait;
                }
            }
        }
        let next = retry_at.iter().copied().filter(|t| *t > tokio::time::Instant::now()).min();
        let sleep = next.map_or(Duration::from_secs(30), |t| {
            t.saturating_duration_since(tokio::time::Instant::now()).min(Duration::from_secs(30))
        });
        tokio::select! {
            _ = shutdown.changed() => if *shutdown.borrow() { return },
            _ = wake.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}

#[cfg(test)]
mod tests;
