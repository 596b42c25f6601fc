//! The console's JSON envelope: a request `{"id", "command", "purpose", "case", "args"}` on
//! `console/{user}/req`, a response `{"id", "ok", "error" | "data"}` on `console/{user}/resp`.
//! Pure: [`parse`] turns any payload into a request or the error response to send back, so
//! a malformed request gets a clear answer and never a crash.
use super::roles::{COMMANDS, needs_purpose_and_case};
use serde::{Deserialize, Serialize};

/// Requests larger than this are refused unread (a hotlist upload is chunked).
pub const MAX_REQUEST: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Chosen by the console; echoed in the response (1-64 printable characters).
    pub id: String,
    pub command: String,
    /// Why the data is accessed and for which case: required where the law asks for them.
    #[serde(default)]
    pub purpose: String,
    #[serde(default)]
    pub case: String,
    #[serde(default)]
    pub args: serde_json::Value,
    /// For an answer too large for one message: the first row wanted ([`Page`]).
    #[serde(default)]
    pub page: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub id: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "serde_json::Value::is_null", default)]
    pub data: serde_json::Value,
    /// Present when `data` is one page of a longer answer.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub page: Option<Page>,
}

/// One page of an answer that no single message could carry: rows `from..from + returned` of
/// `total`; the next page is asked for with `"page": next`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    pub from: usize,
    pub returned: usize,
    pub total: usize,
    pub next: Option<usize>,
}

/// The part of `response` that fits in `max` bytes, from row `from` of its data: an answer
/// larger than the broker carries is paged, never sent whole (the broker would refuse it, and
/// the operator get nothing). A single row or a non-list too large is an error that says so.
pub fn fit(mut response: Response, from: usize, max: usize) -> Response {
    let size = |r: &Response| serde_json::to_vec(r).map_or(usize::MAX, |v| v.len());
    if from == 0 && size(&response) <= max {
        return response;
    }
    let serde_json::Value::Array(rows) = std::mem::take(&mut response.data) else {
        return Response::error(
            &response.id,
            format!(
                "the answer is larger than one message can carry ({max} bytes): narrow the request"
            ),
        );
    };
    let total = rows.len();
    let rest = &rows[from.min(total)..];
    // The longest prefix that fits (sizes grow with the prefix: a binary search).
    let (mut lo, mut hi) = (0usize, rest.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let mut probe = response.clone();
        probe.data = serde_json::Value::Array(rest[..mid].to_vec());
        probe.page = Some(Page { from, returned: mid, total, next: Some(from + mid) });
        if size(&probe) <= max { lo = mid } else { hi = mid - 1 }
    }
    if lo == 0 && !rest.is_empty() {
        return Response::error(
            &response.id,
            format!("one row of the answer is larger than one message can carry ({max} bytes)"),
        );
    }
    let next = (from + lo < total).then_some(from + lo);
    response.data = serde_json::Value::Array(rest[..lo].to_vec());
    response.page = Some(Page { from, returned: lo, total, next });
    response
}

impl Response {
    pub fn error(id: &str, message: impl Into<String>) -> Response {
        Response {
            id: id.into(),
            ok: false,
            error: Some(message.into()),
            data: serde_json::Value::Null,
            page: None,
        }
    }

    pub fn ok(id: &str, data: serde_json::Value) -> Response {
        Response { id: id.into(), ok: true, error: None, data, page: None }
    }
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_graphic())
}

/// The request in `payload`, or the response that says what is wrong with it (with the
/// request's id when one could be read).
pub fn parse(payload: &[u8]) -> Result<Request, Box<Response>> {
    if payload.len() > MAX_REQUEST {
        return Err(Box::new(Response::error("", format!("request over {MAX_REQUEST} bytes"))));
    }
    let request: Request = serde_json::from_slice(payload).map_err(|e| {
        // Echo the id if the payload is JSON with one, so the console can match the error.
        let id = serde_json::from_slice::<serde_json::Value>(payload)
            .ok()
            .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_string))
            .filter(|i| valid_id(i))
            .unwrap_or_default();
        Box::new(Response::error(&id, format!("malformed request: {e}")))
    })?;
    if !valid_id(&request.id) {
        return Err(Box::new(Response::error("", "id: 1-64 printable ASCII characters")));
    }
    if !COMMANDS.contains(&request.command.as_str()) {
        return Err(Box::new(Response::error(
            &request.id,
            format!("unknown command {:?}; commands: {}", request.command, COMMANDS.join(", ")),
        )));
    }
    if needs_purpose_and_case(&request.command)
        && (request.purpose.trim().is_empty() || request.case.trim().is_empty())
    {
        return Err(Box::new(Response::error(
            &request.id,
            format!("{} needs a purpose and a case number (Minn. Stat. 13.824)", request.command),
        )));
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_too_large_is_paged_and_never_sent_whole() {
        let rows: Vec<serde_json::Value> =
            (0..100).map(|i| serde_json::json!({"n": i, "text": "x".repeat(100)})).collect();
        let whole = Response::ok("r1", serde_json::Value::Array(rows));
        let max = 2000;
        let mut from = 0;
        let mut seen = 0;
        loop {
            let r = fit(whole.clone(), from, max);
            assert!(serde_json::to_vec(&r).expect("json").len() <= max, "a page fits");
            let page = r.page.expect("paged");
            assert_eq!((page.from, page.total), (from, 100));
            assert!(page.returned > 0);
            assert_eq!(r.data[0]["n"], from, "in order");
            seen += page.returned;
            match page.next {
                Some(n) => from = n,
                None => break,
            }
        }
        assert_eq!(seen, 100, "every row, once");
        let small = Response::ok("r2", serde_json::json!([1, 2]));
        assert_eq!(fit(small.clone(), 0, max), small, "what fits goes as it is");
        let blob = Response::ok("r3", serde_json::json!({"x": "y".repeat(5000)}));
        assert!(fit(blob, 0, max).error.is_some_and(|e| e.contains("narrow the request")));
    }

    #[test]
    fn a_well_formed_request_parses() {
        let r = parse(br#"{"id":"7","command":"plates.search","purpose":"theft","case":"24-1","args":{"plate":"ABC123"}}"#)
            .expect("parses");
        assert_eq!((r.id.as_str(), r.command.as_str()), ("7", "plates.search"));
        assert_eq!(r.args["plate"], "ABC123");
    }

    #[test]
    fn malformed_requests_get_clear_errors() {
        let cases: &[(&[u8], &str, &str)] = &[
            (b"not json", "", "malformed request"),
            (br#"{"id":"9","command":"status","extra":1}"#, "9", "unknown field"),
            (br#"{"command":"status"}"#, "", "missing field `id`"),
            (br#"{"id":"","command":"status"}"#, "", "id:"),
            (br#"{"id":"3","command":"drop.tables"}"#, "3", "unknown command"),
            (br#"{"id":"4","command":"plates.search","case":"24-1"}"#, "4", "needs a purpose"),
            (
                br#"{"id":"5","command":"plates.search","purpose":"x","case":"  "}"#,
                "5",
                "case number",
            ),
        ];
        for (payload, id, says) in cases {
            let e = parse(payload).expect_err("refused");
            assert_eq!(e.id, *id, "{}", String::from_utf8_lossy(payload));
            assert!(!e.ok);
            let message = e.error.unwrap_or_default();
            assert!(message.contains(says), "{message:?} should say {says:?}");
        }
        let big = vec![b' '; MAX_REQUEST + 1];
        assert!(parse(&big).expect_err("too big").error.unwrap_or_default().contains("bytes"));
    }

    #[test]
    fn responses_serialise_without_empty_fields() {
        let ok =
            serde_json::to_string(&Response::ok("1", serde_json::json!({"n": 2}))).expect("json");
        assert_eq!(ok, r#"{"id":"1","ok":true,"data":{"n":2}}"#);
        let err = serde_json::to_string(&Response::error("1", "no")).expect("json");
        assert_eq!(err, r#"{"id":"1","ok":false,"error":"no"}"#);
    }
}
