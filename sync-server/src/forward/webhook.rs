//! One JSON POST to a dispatch system's webhook: HTTP/1.1 over TLS (rustls; the target's CA
//! file, or the public web roots), or plain HTTP to a receiver on this machine. Any 2xx answer
//! is a delivery; anything else, or no answer within 10 s, is not.
use crate::config::ForwardConfig;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Posts `body` to the target's webhook.
pub async fn post(target: &ForwardConfig, body: &serde_json::Value) -> Result<(), String> {
    tokio::time::timeout(TIMEOUT, send(target, body))
        .await
        .map_err(|_| format!("{}: no answer within {} s", target.webhook, TIMEOUT.as_secs()))?
}

async fn send(target: &ForwardConfig, body: &serde_json::Value) -> Result<(), String> {
    let url = &target.webhook;
    let (tls, rest) = match url.split_once("://") {
        Some(("https", rest)) => (true, rest),
        Some(("http", rest)) => (false, rest),
        _ => return Err(format!("{url}: not an http(s) address")),
    };
    let (authority, path) =
        rest.split_once('/').map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let host = super::host_of(url);
    let port = authority
        .rsplit_once(':')
        .filter(|(_, p)| !p.contains(']'))
        .map(|(_, p)| p.parse::<u16>().map_err(|_| format!("{url}: bad port")))
        .transpose()?
        .unwrap_or(if tls { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("{url}: cannot connect: {e}"))?;
    let body = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nUser-Agent: trailer-alpr-sync-server\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if tls {
        let config = client_config(target)?;
        let name = rustls_pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| format!("{url}: {e}"))?;
        let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("{url}: TLS: {e}"))?;
        exchange(stream, head.as_bytes(), &body, url).await
    } else {
        exchange(tcp, head.as_bytes(), &body, url).await
    }
}

/// Writes the request, reads the status line.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    head: &[u8],
    body: &[u8],
    url: &str,
) -> Result<(), String> {
    let io = |e: std::io::Error| format!("{url}: {e}");
    s.write_all(head).await.map_err(io)?;
    s.write_all(body).await.map_err(io)?;
    s.flush().await.map_err(io)?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 512];
    while !answer.windows(2).any(|w| w == b"\r\n") && answer.len() < 4096 {
        let n = s.read(&mut buf).await.map_err(io)?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&answer);
    let status = line.lines().next().unwrap_or_default();
    let code = status.split(' ').nth(1).and_then(|c| c.parse::<u16>().ok());
    match code {
        Some(200..=299) => Ok(()),
        Some(_) => Err(format!("{url} answered {status:?}")),
        None => Err(format!("{url}: no HTTP answer")),
    }
}

fn client_config(target: &ForwardConfig) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    if target.ca.as_os_str().is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    } else {
        use rustls_pki_types::pem::PemObject;
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(&target.ca)
            .map_err(|e| format!("{}: {e}", target.ca.display()))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("{}: {e}", target.ca.display()))?;
            roots.add(cert).map_err(|e| format!("{}: {e}", target.ca.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
