//! What the public may see (Minn. Stat. 13.824 subd. 5, subd. 6): the agency's page, the list of
//! reader locations on a map, the log of use and the audit trail in plain words, as HTML pages
//! (charts and map as inline SVG, no script, no outside asset), CSV, JSON and GeoJSON, served
//! over HTTP and exported as static files for the city's website.
//!
//! Every page is built from tables that hold no plate, picture or read: the location history,
//! the log-of-use tallies, the periods of use and the audit trail without its classified
//! fields. What is public is decided by the queries, not by filtering read data. Rendering is
//! pure (data in, text out; maud escapes every value), so the server and the export share it.
use crate::now_ms;
use crate::records::{Records, RecordsError, uselog};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use std::sync::Arc;

pub mod agency;
pub mod audit;
pub mod chart;
pub mod export;
pub mod layout;
pub mod locations;
pub mod log;
pub mod map;

pub use layout::{Agency, Links};

#[derive(Clone)]
struct AppState {
    records: Records,
    agency: Arc<Agency>,
}

/// How much of the server the public may take at once.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests answered at once; more get 503 with `Retry-After`.
    pub max_in_flight: usize,
    /// A request taking longer is cut off with 503.
    pub timeout: std::time::Duration,
}

impl Limits {
    pub fn from_config(http: &crate::config::HttpConfig) -> Limits {
        Limits {
            max_in_flight: http.public_max_in_flight.max(1),
            timeout: std::time::Duration::from_millis(http.public_timeout_ms.max(1)),
        }
    }
}

/// Refuses a request beyond `limits.max_in_flight` at once, and cuts one off after
/// `limits.timeout`: a crowd at the public pages gets "try again" rather than a server that
/// stops taking in reads.
async fn limited(
    State((permits, limits)): State<(Arc<tokio::sync::Semaphore>, Limits)>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let busy = || {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5"), (header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "The public pages are busy; try again in a few seconds.\n",
        )
            .into_response()
    };
    let Ok(_permit) = permits.try_acquire() else { return busy() };
    match tokio::time::timeout(limits.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => busy(),
    }
}

/// The public pages over `records` (a read-only pool: [`Records::read_only`]), within `limits`.
pub fn limited_router(records: Records, agency: Agency, limits: Limits) -> Router {
    within(router(records, agency), limits)
}

/// `app` answering within `limits`.
pub fn within(app: Router, limits: Limits) -> Router {
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_in_flight));
    app.layer(axum::middleware::from_fn_with_state((permits, limits), limited))
}

pub fn router(records: Records, agency: Agency) -> Router {
    Router::new()
        .route("/", get(|| async { axum::response::Redirect::to("/public/agency") }))
        .route("/public", get(|| async { axum::response::Redirect::to("/public/agency") }))
        .route("/public/", get(agency_html))
        .route("/public/agency", get(agency_html))
        .route("/public/locations", get(locations_html))
        .route("/public/locations.json", get(locations_json))
        .route("/public/locations.csv", get(locations_csv))
        .route("/public/locations.geojson", get(locations_geojson))
        .route("/public/log", get(log_html))
        .route("/public/log.json", get(log_json))
        .route("/public/log.csv", get(log_csv))
        .route("/public/audit", get(audit_html))
        .route("/public/audit.json", get(audit_json))
        .route("/public/audit.csv", get(audit_csv))
        .route("/public/audits.json", get(audits_json))
        .with_state(AppState { records, agency: Arc::new(agency) })
}

fn server_error(e: RecordsError) -> Response {
    tracing::error!(error = %e, "public page failed");
    (StatusCode::INTERNAL_SERVER_ERROR, "this page is unavailable; try again later").into_response()
}

fn with_type(content_type: &'static str, body: String) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

const HTML: &str = "text/html; charset=utf-8";
const CSV: &str = "text/csv; charset=utf-8";
const JSON: &str = "application/json";

async fn locations_html(State(s): State<AppState>) -> Response {
    let listed = async {
        Ok::<_, crate::records::RecordsError>((
            s.records.public_locations(now_ms()).await?,
            s.records.withheld_locations().await?,
        ))
    };
    match listed.await {
        Ok((l, withheld)) => with_type(HTML, locations::html(&l, withheld, &s.agency, Links(""))),
        Err(e) => server_error(e),
    }
}

async fn locations_json(State(s): State<AppState>) -> Response {
    match s.records.public_locations(now_ms()).await {
        Ok(l) => with_type(JSON, locations::json(&l)),
        Err(e) => server_error(e),
    }
}

async fn locations_csv(State(s): State<AppState>) -> Response {
    match s.records.public_locations(now_ms()).await {
        Ok(l) => with_type(CSV, locations::csv(&l)),
        Err(e) => server_error(e),
    }
}

async fn locations_geojson(State(s): State<AppState>) -> Response {
    match s.records.public_locations(now_ms()).await {
        Ok(l) => with_type("application/geo+json", locations::geojson(&l)),
        Err(e) => server_error(e),
    }
}

/// `?from=YYYY-MM-DD&to=YYYY-MM-DD`: the log's local days (default: the last 365).
#[derive(Debug, Deserialize)]
struct Range {
    from: Option<String>,
    to: Option<String>,
}

/// A real calendar day written `YYYY-MM-DD`.
pub fn valid_day(d: &str) -> bool {
    d.len() == 10
        && d.bytes()
            .enumerate()
            .all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() })
        && d.parse::<jiff::civil::Date>().is_ok()
}

/// The days of a request, or the last 365 local days up to today.
pub fn log_range(
    rules: &crate::records::Rules,
    from: Option<String>,
    to: Option<String>,
    now: i64,
) -> Result<(String, String), String> {
    let to = to.unwrap_or_else(|| uselog::local_day_hour(rules, now).0);
    let from = from.unwrap_or_else(|| uselog::local_day_hour(rules, now - 364 * 86_400_000).0);
    if !valid_day(&from) || !valid_day(&to) {
        return Err("from and to are dates: YYYY-MM-DD".into());
    }
    if from > to {
        return Err("from is after to".into());
    }
    Ok((from, to))
}

async fn use_log(s: &AppState, r: Range) -> Result<uselog::UseLog, Response> {
    let now = now_ms();
    let (from, to) = log_range(s.records.rules(), r.from, r.to, now)
        .map_err(|e| (StatusCode::BAD_REQUEST, e).into_response())?;
    s.records.use_log(&from, &to, now).await.map_err(server_error)
}

async fn log_html(State(s): State<AppState>, Query(r): Query<Range>) -> Response {
    match use_log(&s, r).await {
        Ok(l) => with_type(HTML, log::html(&l, &s.agency, Links(""))),
        Err(e) => e,
    }
}

async fn log_json(State(s): State<AppState>, Query(r): Query<Range>) -> Response {
    match use_log(&s, r).await {
        Ok(l) => with_type(JSON, log::json(&l)),
        Err(e) => e,
    }
}

async fn log_csv(State(s): State<AppState>, Query(r): Query<Range>) -> Response {
    match use_log(&s, r).await {
        Ok(l) => with_type(CSV, log::csv(&l)),
        Err(e) => e,
    }
}

/// `?before=MS`: the page of the audit trail before a time (default: the newest).
#[derive(Debug, Deserialize)]
struct Before {
    before: Option<i64>,
}

async fn agency_html(State(s): State<AppState>) -> Response {
    match audit::Oversight::of(&s.records, now_ms()).await {
        Ok(o) => with_type(HTML, agency::html(&s.agency, &o, Links(""))),
        Err(e) => server_error(e),
    }
}

async fn audit_html(State(s): State<AppState>, Query(b): Query<Before>) -> Response {
    let oversight = match audit::Oversight::of(&s.records, now_ms()).await {
        Ok(o) => o,
        Err(e) => return server_error(e),
    };
    let tz = &s.records.rules().time_zone;
    match s.records.audit_public(b.before, audit::PAGE).await {
        Ok(e) => with_type(HTML, audit::html(&e, &oversight, tz, &s.agency, Links(""))),
        Err(e) => server_error(e),
    }
}

/// The audits' published results and a suspension in force.
async fn audits_json(State(s): State<AppState>) -> Response {
    match audit::Oversight::of(&s.records, now_ms()).await {
        Ok(o) => with_type(JSON, serde_json::to_string(&o).unwrap_or_default()),
        Err(e) => server_error(e),
    }
}

async fn audit_json(State(s): State<AppState>, Query(b): Query<Before>) -> Response {
    match s.records.audit_public(b.before, audit::PAGE).await {
        Ok(e) => with_type(JSON, audit::json(&e, &s.records.rules().time_zone)),
        Err(e) => server_error(e),
    }
}

async fn audit_csv(State(s): State<AppState>, Query(b): Query<Before>) -> Response {
    match s.records.audit_public(b.before, audit::PAGE).await {
        Ok(e) => with_type(CSV, audit::csv(&e, &s.records.rules().time_zone)),
        Err(e) => server_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ranges_are_checked() {
        let rules = crate::records::Rules::default();
        let now = 1_795_404_600_000; // 2026-11-22 21:30 in Minnesota
        assert_eq!(
            log_range(&rules, None, None, now),
            Ok(("2025-11-23".into(), "2026-11-22".into()))
        );
        assert!(log_range(&rules, Some("2026-13".into()), None, now).is_err());
        assert!(log_range(&rules, Some("2026-02-31".into()), None, now).is_err());
        assert!(
            log_range(&rules, Some("2026-02-01".into()), Some("2026-01-01".into()), now).is_err()
        );
        assert!(log_range(&rules, Some("2026-01-01' OR 1=1".into()), None, now).is_err());
    }

    /// Beyond its share of requests at once the public is told to come back (503 with
    /// Retry-After), and a request that takes too long is cut off; what is in flight finishes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_public_gets_its_share_and_no_more() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let gate = Arc::new(tokio::sync::Notify::new());
        let entered = Arc::new(AtomicUsize::new(0));
        let (opened, count) = (gate.clone(), entered.clone());
        let app = Router::new()
            .route(
                "/slow",
                get(move || {
                    let (gate, count) = (opened.clone(), count.clone());
                    async move {
                        count.fetch_add(1, Ordering::SeqCst);
                        gate.notified().await;
                        "done"
                    }
                }),
            )
            .route("/never", get(std::future::pending::<&'static str>));
        let serve = |limits: Limits, app: Router| async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(async move { axum::serve(listener, within(app, limits)).await });
            addr
        };
        let get = |addr: std::net::SocketAddr, path: &'static str| async move {
            let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let ask = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            c.write_all(ask.as_bytes()).await.expect("write");
            let mut out = String::new();
            c.read_to_string(&mut out).await.expect("read");
            out
        };
        let one = Limits { max_in_flight: 1, timeout: std::time::Duration::from_secs(60) };
        let addr = serve(one, app.clone()).await;
        let first = tokio::spawn(get(addr, "/slow"));
        while entered.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // The first holds the only permit: a second is refused at once, and never entered.
        let second = get(addr, "/slow").await;
        assert!(second.starts_with("HTTP/1.1 503"), "{second}");
        assert!(second.to_ascii_lowercase().contains("retry-after: 5"), "{second}");
        assert_eq!(entered.load(Ordering::SeqCst), 1);
        gate.notify_waiters();
        let first = first.await.expect("first");
        assert!(first.starts_with("HTTP/1.1 200") && first.ends_with("done"), "{first}");
        // A request that never finishes is cut off, and frees its permit.
        let short = Limits { max_in_flight: 1, timeout: std::time::Duration::from_millis(200) };
        let addr = serve(short, app).await;
        assert!(get(addr, "/never").await.starts_with("HTTP/1.1 503"));
        let again = tokio::spawn(get(addr, "/slow"));
        while entered.load(Ordering::SeqCst) == 1 {
            tokio::task::yield_now().await;
        }
        gate.notify_waiters();
        let again = again.await.expect("again");
        assert!(again.starts_with("HTTP/1.1 200"), "the permit came back: {again}");
    }
}
