//! Public pages: the list of current and previous reader locations (Minn. Stat. 13.824 subd. 5(b)).
//!
//! Built only from the `locations` table, which holds no plate, picture or read: what is public is
//! decided by the query, not by filtering read data.
use crate::records::Records;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::fmt::Write;

#[derive(Clone)]
struct AppState {
    records: Records,
    agency: String,
}

pub fn router(records: Records, agency: String) -> Router {
    Router::new()
        .route("/", get(|| async { axum::response::Redirect::to("/public/locations") }))
        .route("/public/locations", get(html))
        .route("/public/locations.json", get(json))
        .route("/public/locations.csv", get(csv))
        .with_state(AppState { records, agency })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn server_error(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "public page failed");
    (StatusCode::INTERNAL_SERVER_ERROR, "the location list is unavailable").into_response()
}

async fn html(State(s): State<AppState>) -> Response {
    let locs = match s.records.public_locations().await {
        Ok(l) => l,
        Err(e) => return server_error(e),
    };
    let mut body = String::new();
    let _ = write!(
        body,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>ALPR reader locations: {a}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:4px 8px}}</style></head>\
         <body><h1>Automated license plate reader locations</h1><p>{a}. Current and previous locations of \
         stationary readers, with dates (Minn. Stat. 13.824).</p><table><thead><tr><th>Reader</th><th>Location</th>\
         <th>Latitude</th><th>Longitude</th><th>From</th><th>Until</th></tr></thead><tbody>",
        a = escape(&s.agency)
    );
    for l in &locs {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{:.5}</td><td>{:.5}</td><td>{}</td><td>{}</td></tr>",
            escape(&l.reader),
            escape(&l.place),
            l.lat,
            l.lon,
            l.from,
            l.until.as_deref().unwrap_or("current")
        );
    }
    body.push_str("</tbody></table></body></html>");
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

async fn json(State(s): State<AppState>) -> Response {
    match s.records.public_locations().await {
        Ok(l) => axum::Json(l).into_response(),
        Err(e) => server_error(e),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

async fn csv(State(s): State<AppState>) -> Response {
    let locs = match s.records.public_locations().await {
        Ok(l) => l,
        Err(e) => return server_error(e),
    };
    let mut out = String::from("reader,location,latitude,longitude,from,until\n");
    for l in locs {
        let _ = writeln!(
            out,
            "{},{},{:.5},{:.5},{},{}",
            csv_field(&l.reader),
            csv_field(&l.place),
            l.lat,
            l.lon,
            l.from,
            l.until.unwrap_or_default()
        );
    }
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response()
}
