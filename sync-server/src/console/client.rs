//! The console's client end: one request over the broker with the operator's own certificate,
//! and its response (matched by id). Used by `sync-server console`.
use super::protocol::Response;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use trailer_wire::client::{Poller, tls_config};

#[derive(Debug, Error)]
pub enum ConsoleError {
    #[error(transparent)]
    Tls(#[from] trailer_wire::client::ClientError),
    #[error("broker {0}: {1}")]
    Broker(String, String),
    #[error("no answer within {0} s: is the server running, and is the user granted a role?")]
    Timeout(u64),
}

/// Where the broker is and who the operator is.
#[derive(Debug, Clone)]
pub struct Operator {
    pub host: String,
    pub port: u16,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CN of `cert`: the broker binds it to `console/{user}/…`.
    pub user: String,
}

/// Sends `request` (a JSON object with an `id`) and returns the response with that id.
pub async fn ask(
    op: &Operator,
    request: &serde_json::Value,
    within: Duration,
) -> Result<Response, ConsoleError> {
    let id = request.get("id").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let tls = tls_config(&op.ca, &op.cert, &op.key)?;
    let client_id = format!("console-{}-{}", op.user, std::process::id());
    let mut opts = MqttOptions::new(client_id, op.host.clone(), op.port);
    opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(tls))))
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_session(true)
        .set_max_packet_size(8 * 1024 * 1024, 512 * 1024);
    let (client, events) = AsyncClient::new(opts, 16);
    let mut poller = Poller::spawn(events, 16);
    let resp_topic = format!("console/{}/resp", op.user);
    let broker = format!("{}:{}", op.host, op.port);
    let answer = tokio::time::timeout(within, async {
        loop {
            match poller.next().await {
                None => {
                    return Err(ConsoleError::Broker(broker.clone(), "connection closed".into()));
                }
                Some(Err(e)) => return Err(ConsoleError::Broker(broker.clone(), e.to_string())),
                Some(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                    client
                        .subscribe(&resp_topic, QoS::AtLeastOnce)
                        .await
                        .map_err(|e| ConsoleError::Broker(broker.clone(), e.to_string()))?;
                }
                Some(Ok(Event::Incoming(Packet::SubAck(_)))) => {
                    let body = serde_json::to_vec(request).unwrap_or_default();
                    let topic = format!("console/{}/req", op.user);
                    client
                        .publish(topic, QoS::AtLeastOnce, false, body)
                        .await
                        .map_err(|e| ConsoleError::Broker(broker.clone(), e.to_string()))?;
                }
                Some(Ok(Event::Incoming(Packet::Publish(p)))) if p.topic == resp_topic => {
                    if let Ok(r) = serde_json::from_slice::<Response>(&p.payload)
                        && r.id == id
                    {
                        return Ok(r);
                    }
                }
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .map_err(|_| ConsoleError::Timeout(within.as_secs()))?;
    poller.disconnect(&client, Duration::from_secs(2)).await;
    answer
}
