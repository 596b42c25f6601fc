//! One hit as an e-mail to a dispatch centre's mailbox, through the agency's mail relay: the
//! hit's fields as plain text, the subject saying what and where.
use crate::config::BcaConfig;
use lettre::message::Mailbox;

/// Mails `hit` (the [`super::payload`]) to `to`.
pub async fn send(relay: &BcaConfig, to: &str, hit: &serde_json::Value) -> Result<(), String> {
    let text = |k: &str| match &hit[k] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    };
    let subject = format!(
        "ALPR hit: {} {} on {} at trailer {}",
        text("category"),
        text("plate"),
        text("list"),
        text("trailer")
    );
    let mut body = String::new();
    for k in [
        "agency",
        "trailer",
        "alert_id",
        "plate",
        "list",
        "category",
        "case_number",
        "seen_at",
        "lat",
        "lon",
    ] {
        body.push_str(&format!("{k}: {}\n", text(k)));
    }
    body.push_str(&format!("\n{}\n", text("verify")));
    let mailbox = |a: &str| a.parse::<Mailbox>().map_err(|e| format!("{a:?}: {e}"));
    let message = lettre::Message::builder()
        .from(mailbox(&relay.from)?)
        .to(mailbox(to)?)
        .subject(subject)
        .body(body)
        .map_err(|e| e.to_string())?;
    crate::bca::send_smtp(relay, message).await.map(|_| ()).map_err(|e| e.to_string())
}
