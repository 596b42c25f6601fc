//! The console's client end, used by `sync-server console`: a session over the broker with the
//! operator's own certificate, requests answered by id, the live topics kept as they arrive,
//! hotlist files sent in parts, and answers rendered as tables for people.
use super::protocol::{MAX_REQUEST, Response};
use base64::Engine;
use rumqttc::{
    AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeReasonCode, TlsConfiguration, Transport,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
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
    #[error(
        "the broker refused {topic}: is {user}'s role granted (sync-server user grant), and does \
         the certificate's name match the user?"
    )]
    Refused { topic: String, user: String },
    #[error("cannot save a download: {0}")]
    Save(String),
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

/// One operator's connection: their response topic and live topics subscribed.
pub struct Session {
    client: AsyncClient,
    poller: Poller,
    user: String,
    broker: String,
    next_id: u64,
    /// The newest payload of each live topic (`status`, `alerts`, …).
    pub live: BTreeMap<String, Value>,
    /// Hits already announced, by (trailer, alert id).
    announced: std::collections::HashSet<(String, u64)>,
    /// Hits that arrived on the live alerts topic and were not announced yet.
    new_hits: Vec<Value>,
    /// Since when the connection to the broker is lost (ms), if it is.
    lost_since: Option<i64>,
    /// A change of the connection not told yet: lost (`false`) or back (`true`).
    link_change: Option<bool>,
}

/// What an operator's console waits for: a line typed, or hits arriving.
#[derive(Debug)]
pub enum Input {
    Line(String),
    /// Ctrl-C: the line or the question being typed is dropped (the console goes on).
    Cancel,
    Hits(Vec<Value>),
    /// The connection to the broker was lost (`false`) or is back (`true`).
    Link(bool),
}

/// What the person at the terminal did: typed a line, or pressed Ctrl-C.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Typed {
    Line(String),
    Cancel,
}

impl Typed {
    fn into_input(self) -> Input {
        match self {
            Typed::Line(l) => Input::Line(l),
            Typed::Cancel => Input::Cancel,
        }
    }
}

impl Session {
    /// Connects and subscribes; ready for requests when it returns.
    pub async fn connect(op: &Operator, within: Duration) -> Result<Session, ConsoleError> {
        let tls = tls_config(&op.ca, &op.cert, &op.key)?;
        // The broker takes the certificate's name as the client id whatever is asked for: one
        // session per operator certificate at a time (a second one takes over).
        let client_id = op.user.clone();
        let mut opts = MqttOptions::new(client_id, op.host.clone(), op.port);
        opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(tls))))
            .set_keep_alive(Duration::from_secs(30))
            .set_clean_session(true)
            .set_max_packet_size(16 * 1024 * 1024, MAX_REQUEST + 4096);
        let (client, events) = AsyncClient::new(opts, 16);
        let poller = Poller::spawn(events, 64);
        let broker = format!("{}:{}", op.host, op.port);
        let mut s = Session {
            client,
            poller,
            user: op.user.clone(),
            broker,
            next_id: 1,
            live: BTreeMap::new(),
            announced: Default::default(),
            new_hits: Vec::new(),
            lost_since: None,
            link_change: None,
        };
        let resp = format!("console/{}/resp", s.user);
        let live = format!("console/{}/live/#", s.user);
        let topics = [resp.clone(), live];
        let mut refused = false;
        // A user just granted a role is known to the broker within seconds (the server brings
        // the broker's access in line with its users): a refused subscription is asked again.
        let subscribed = tokio::time::timeout(within, async {
            loop {
                match s.poller.next().await {
                    None => return Err(s.broker_error("connection closed")),
                    Some(Err(e)) => return Err(s.broker_error(&e.to_string())),
                    Some(Ok(Event::Incoming(Packet::ConnAck(_)))) => s.subscribe(&topics).await?,
                    Some(Ok(Event::Incoming(Packet::SubAck(ack)))) => {
                        if ack
                            .return_codes
                            .iter()
                            .all(|c| matches!(c, SubscribeReasonCode::Success(_)))
                        {
                            return Ok(());
                        }
                        refused = true;
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        s.subscribe(&topics).await?;
                    }
                    Some(Ok(Event::Incoming(Packet::Publish(p)))) => s.keep_live(&p),
                    Some(Ok(_)) => {}
                }
            }
        })
        .await;
        match subscribed {
            Ok(r) => r?,
            Err(_) if refused => {
                return Err(ConsoleError::Refused { topic: resp, user: s.user.clone() });
            }
            Err(_) => return Err(ConsoleError::Timeout(within.as_secs())),
        }
        Ok(s)
    }

    async fn subscribe(&self, topics: &[String]) -> Result<(), ConsoleError> {
        let filters =
            topics.iter().map(|t| rumqttc::SubscribeFilter::new(t.clone(), QoS::AtLeastOnce));
        self.client.subscribe_many(filters).await.map_err(|e| self.broker_error(&e.to_string()))
    }

    fn broker_error(&self, why: &str) -> ConsoleError {
        ConsoleError::Broker(self.broker.clone(), why.to_string())
    }

    /// After a broker error, how long before the connection is tried again.
    const RETRY: Duration = Duration::from_secs(1);

    /// An event that is not the awaited answer: a live topic is kept, and after a reconnect
    /// (a clean session) the subscriptions are made again.
    async fn background(&mut self, ev: Event) {
        match ev {
            Event::Incoming(Packet::Publish(p)) => self.keep_live(&p),
            Event::Incoming(Packet::ConnAck(_)) => {
                if self.lost_since.take().is_some() {
                    self.link_change = Some(true);
                }
                for topic in
                    [format!("console/{}/resp", self.user), format!("console/{}/live/#", self.user)]
                {
                    let _ = self.client.try_subscribe(topic, QoS::AtLeastOnce);
                }
            }
            _ => {}
        }
    }

    /// A broker error: the connection is lost (noted once), tried again after a pause.
    async fn lost(&mut self) {
        if self.lost_since.is_none() {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            self.lost_since = Some(now);
            self.link_change = Some(false);
        }
        self.poller.resume_after(Self::RETRY).await;
    }

    /// Since when the connection to the broker is lost (ms since the epoch): the live topics
    /// are stale meanwhile.
    pub fn stale_since(&self) -> Option<i64> {
        self.lost_since
    }

    fn keep_live(&mut self, p: &rumqttc::Publish) {
        let prefix = format!("console/{}/live/", self.user);
        if let Some(topic) = p.topic.strip_prefix(&prefix) {
            match serde_json::from_slice::<Value>(&p.payload) {
                Ok(v) => {
                    if topic == crate::console::live::ALERTS {
                        self.note_hits(&v);
                    }
                    self.live.insert(topic.to_string(), v);
                }
                // An empty retained message clears the topic.
                Err(_) => {
                    self.live.remove(topic);
                }
            }
        }
    }

    /// Queues the open hits of a live alerts payload not announced before.
    fn note_hits(&mut self, alerts: &Value) {
        for a in alerts.as_array().into_iter().flatten() {
            let (Some(trailer), Some(id)) = (a["trailer_id"].as_str(), a["alert_id"].as_u64())
            else {
                continue;
            };
            if self.announced.insert((trailer.to_string(), id)) {
                self.new_hits.push(a.clone());
            }
        }
    }

    /// The hits that arrived since the last call (oldest first).
    pub fn take_hits(&mut self) -> Vec<Value> {
        let mut hits = std::mem::take(&mut self.new_hits);
        hits.reverse();
        hits
    }

    /// The next line from `lines`, or the hits that arrive first, keeping the connection and
    /// the live topics up to date meanwhile. `None` at the end of the input.
    pub async fn wait_input(
        &mut self,
        lines: &mut tokio::sync::mpsc::UnboundedReceiver<Typed>,
    ) -> Option<Input> {
        loop {
            if let Some(up) = self.link_change.take() {
                return Some(Input::Link(up));
            }
            if !self.new_hits.is_empty() {
                return Some(Input::Hits(self.take_hits()));
            }
            tokio::select! {
                line = lines.recv() => return line.map(Typed::into_input),
                ev = self.poller.next() => match ev {
                    Some(Ok(ev)) => self.background(ev).await,
                    Some(Err(_)) => self.lost().await,
                    None => return lines.recv().await.map(Typed::into_input),
                },
            }
        }
    }

    /// Waits up to `within` for live topics to arrive (the retained ones come at once).
    pub async fn settle(&mut self, within: Duration) {
        let _ = tokio::time::timeout(within, async {
            while let Some(ev) = self.poller.next().await {
                match ev {
                    Ok(ev) => self.background(ev).await,
                    Err(_) => self.lost().await,
                }
            }
        })
        .await;
    }

    /// Runs one command as a user means it: a release's bundle fetched file by file, piece by
    /// piece, into `downloads` and each file checked against its manifest digest; any other
    /// command asked once (its pictures and files are saved by [`super::downloads::save`]).
    pub async fn run(
        &mut self,
        command: &str,
        purpose: &str,
        case: &str,
        args: Value,
        within: Duration,
        downloads: &std::path::Path,
    ) -> Result<Response, ConsoleError> {
        if command != "release.download" {
            return self.ask(command, purpose, case, args, within).await;
        }
        let id = args["id"].clone();
        let names: Vec<String> = match args["file"].as_str() {
            Some(one) => vec![one.to_string()],
            None => {
                let listed =
                    self.ask("release.files", purpose, case, json!({"id": id}), within).await?;
                if !listed.ok {
                    return Ok(listed);
                }
                listed.data["files"]
                    .as_array()
                    .map(|f| {
                        f.iter().filter_map(|f| f["name"].as_str().map(str::to_string)).collect()
                    })
                    .unwrap_or_default()
            }
        };
        let folder = downloads.join("releases").join(format!("release-{}", id));
        let mut saved = Vec::new();
        for name in names {
            let mut bytes = Vec::new();
            let mut offset = 0u64;
            let digest = loop {
                let piece = json!({"id": id, "file": name, "offset": offset});
                let r = self.ask(command, purpose, case, piece, within).await?;
                if !r.ok {
                    return Ok(r);
                }
                let got = r.data["base64"]
                    .as_str()
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
                let Some(got) = got else {
                    return Ok(Response::error(
                        "",
                        format!("{name}: a piece came without its bytes"),
                    ));
                };
                bytes.extend_from_slice(&got);
                match r.data["next_offset"].as_u64() {
                    Some(next) if next > offset => offset = next,
                    Some(_) => {
                        return Ok(Response::error(
                            "",
                            format!("{name}: the pieces do not advance"),
                        ));
                    }
                    None => break r.data["sha256"].as_str().unwrap_or_default().to_string(),
                }
            };
            let path = super::downloads::store(&folder, &name, &bytes, &digest)
                .map_err(ConsoleError::Save)?;
            saved
                .push(json!({"file": name, "sha256": digest, "saved": path.display().to_string()}));
        }
        Ok(Response {
            id: String::new(),
            ok: true,
            error: None,
            data: json!({"release": id, "folder": folder.display().to_string(), "files": saved}),
            page: None,
        })
    }

    /// Sends one request and returns its response.
    pub async fn ask(
        &mut self,
        command: &str,
        purpose: &str,
        case: &str,
        args: Value,
        within: Duration,
    ) -> Result<Response, ConsoleError> {
        // An answer too large for one message comes in pages: asked for until the last.
        let mut whole = self.ask_page(command, purpose, case, args.clone(), 0, within).await?;
        while let Some(next) = whole.page.and_then(|p| p.next) {
            let more = self.ask_page(command, purpose, case, args.clone(), next, within).await?;
            if !more.ok {
                return Ok(more);
            }
            if let (Value::Array(all), Value::Array(rows)) = (&mut whole.data, more.data) {
                all.extend(rows);
            }
            whole.page = more.page;
        }
        whole.page = None;
        Ok(whole)
    }

    async fn ask_page(
        &mut self,
        command: &str,
        purpose: &str,
        case: &str,
        args: Value,
        page: usize,
        within: Duration,
    ) -> Result<Response, ConsoleError> {
        let id = format!("c{}-{}", std::process::id(), self.next_id);
        self.next_id += 1;
        let mut request =
            json!({"id": id, "command": command, "purpose": purpose, "case": case, "args": args});
        if page > 0 {
            request["page"] = json!(page);
        }
        let body = serde_json::to_vec(&request).unwrap_or_default();
        let topic = format!("console/{}/req", self.user);
        let resp_topic = format!("console/{}/resp", self.user);
        tokio::time::timeout(within, async {
            self.client
                .publish(topic, QoS::AtLeastOnce, false, body)
                .await
                .map_err(|e| self.broker_error(&e.to_string()))?;
            loop {
                match self.poller.next().await {
                    None => return Err(self.broker_error("connection closed")),
                    Some(Err(e)) => {
                        // The client reconnects after a pause; this request is lost with the
                        // connection (the server answers only what reached it).
                        self.lost().await;
                        return Err(self.broker_error(&e.to_string()));
                    }
                    Some(Ok(Event::Incoming(Packet::Publish(p)))) if p.topic == resp_topic => {
                        if let Ok(r) = serde_json::from_slice::<Response>(&p.payload)
                            && r.id == id
                        {
                            return Ok(r);
                        }
                    }
                    Some(Ok(ev)) => self.background(ev).await,
                }
            }
        })
        .await
        .map_err(|_| ConsoleError::Timeout(within.as_secs()))?
    }

    /// Publishes `payload` as it is on `topic` (any topic: the broker decides whether it may)
    /// and returns the first answer on this user's response topic within `within`, if any. For
    /// checking what the broker and the server make of requests a console would never send.
    pub async fn send_raw(
        &mut self,
        topic: &str,
        payload: &[u8],
        within: Duration,
    ) -> Result<Option<Value>, ConsoleError> {
        let resp_topic = format!("console/{}/resp", self.user);
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.to_vec())
            .await
            .map_err(|e| self.broker_error(&e.to_string()))?;
        let answer = tokio::time::timeout(within, async {
            loop {
                match self.poller.next().await {
                    None | Some(Err(_)) => return None,
                    Some(Ok(Event::Incoming(Packet::Publish(p)))) if p.topic == resp_topic => {
                        return serde_json::from_slice::<Value>(&p.payload).ok();
                    }
                    Some(Ok(ev)) => self.background(ev).await,
                }
            }
        })
        .await;
        Ok(answer.ok().flatten())
    }

    /// Uploads a hotlist file as version `version` of list `name`, in parts that fit a request;
    /// returns the answer to the last part (or the first refusal).
    pub async fn upload_hotlist(
        &mut self,
        name: &str,
        version: u64,
        file: &str,
        why: (&str, &str),
        within: Duration,
    ) -> Result<Response, ConsoleError> {
        self.upload_hotlist_showing(name, version, file, why, within, |_| {}).await
    }

    /// [`Session::upload_hotlist`], telling `progress` after each part the server took.
    pub async fn upload_hotlist_showing(
        &mut self,
        name: &str,
        version: u64,
        file: &str,
        (purpose, case): (&str, &str),
        within: Duration,
        mut progress: impl FnMut(Progress),
    ) -> Result<Response, ConsoleError> {
        let parts = split_lines(file, PART_BYTES);
        let count = parts.len();
        let total = file.len();
        let mut sent = 0;
        let mut last = None;
        for (i, part) in parts.into_iter().enumerate() {
            let bytes = part.len();
            let args =
                json!({"name": name, "version": version, "part": i, "parts": count, "csv": part});
            let mut r = self.ask("hotlists.upload", purpose, case, args.clone(), within).await?;
            // A large list is many parts: over the user's rate, wait and send the part again.
            while r.error.as_deref().is_some_and(|e| e.starts_with("too many requests")) {
                tokio::time::sleep(Duration::from_millis(500)).await;
                r = self.ask("hotlists.upload", purpose, case, args.clone(), within).await?;
            }
            if !r.ok {
                return Ok(r);
            }
            sent += bytes;
            progress(Progress { parts_sent: i + 1, parts: count, bytes_sent: sent, bytes: total });
            last = Some(r);
        }
        Ok(last.unwrap_or_else(|| Response::error("", "nothing to upload")))
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// The next line from `lines`, keeping the connection and the live topics up to date
    /// meanwhile. `None` at the end of the input.
    pub async fn wait_line(
        &mut self,
        lines: &mut tokio::sync::mpsc::UnboundedReceiver<Typed>,
    ) -> Option<Typed> {
        loop {
            tokio::select! {
                line = lines.recv() => return line,
                ev = self.poller.next() => match ev {
                    Some(Ok(ev)) => self.background(ev).await,
                    Some(Err(_)) => self.lost().await,
                    // The event loop is gone: the next request says so; the input still counts.
                    None => return lines.recv().await,
                },
            }
        }
    }

    pub async fn close(mut self) {
        self.poller.disconnect(&self.client, Duration::from_secs(2)).await;
    }
}

/// Arguments a command takes from a file the user names with `file=PATH` (a certificate
/// request, a configuration): the argument's name.
pub fn file_argument(command: &str) -> Option<&'static str> {
    match command {
        "trailers.enroll" => Some("request"),
        "trailers.config" => Some("toml"),
        _ => None,
    }
}

/// Reads `file=PATH` into the argument [`file_argument`] names.
pub fn read_file_argument(command: &str, args: &mut Value) -> Result<(), String> {
    let (Some(arg), Some(map)) = (file_argument(command), args.as_object_mut()) else {
        return Ok(());
    };
    let Some(path) = map.remove("file") else { return Ok(()) };
    let path = path.as_str().unwrap_or_default().to_string();
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    map.insert(arg.into(), Value::String(text));
    Ok(())
}

/// How far a hotlist upload has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub parts_sent: usize,
    pub parts: usize,
    pub bytes_sent: usize,
    pub bytes: usize,
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pct = (self.bytes_sent * 100).checked_div(self.bytes).unwrap_or(100);
        write!(
            f,
            "sent part {} of {} ({} of {} KiB, {pct}%)",
            self.parts_sent,
            self.parts,
            self.bytes_sent.div_ceil(1024),
            self.bytes.div_ceil(1024)
        )
    }
}

/// A hotlist part's size: a request carries it, JSON-escaped, with its envelope under
/// [`MAX_REQUEST`]. Escaping at most doubles text (`"` and `\r` take two bytes).
pub const PART_BYTES: usize = 120 * 1024;

/// `text` cut into pieces of at most `max` bytes at line ends (a longer line is cut at a
/// character boundary): concatenated, they are `text`.
pub fn split_lines(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let window = &rest[..floor_char(rest, max)];
        let cut = window.rfind('\n').map_or(window.len(), |i| i + 1).max(1);
        let cut = floor_char(rest, cut).max(rest.chars().next().map_or(1, char::len_utf8));
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    if !rest.is_empty() || out.is_empty() {
        out.push(rest);
    }
    out
}

fn floor_char(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Arguments that are text whatever they look like: a plate or a case of digits only stays
/// text, as the commands expect.
const TEXT_ARGS: [&str; 21] = [
    "plate",
    "warrant",
    "exigency",
    "name",
    "reference",
    "reader",
    "trailer",
    "outcome",
    "how",
    "note",
    "reason",
    "requester",
    "requesting_agency",
    "factual_basis",
    "authorisation",
    "kind",
    "action",
    "role",
    "file",
    "from",
    "to",
];

/// Parses `key=value` words into an args object: a value is text for the arguments that are
/// text ([`TEXT_ARGS`]), else JSON where it parses as JSON (a number, `true`, an array), else
/// text. A single word that is a JSON object is the args themselves.
pub fn parse_args(words: &[&str]) -> Result<Value, String> {
    if let [only] = words
        && only.trim_start().starts_with('{')
    {
        return serde_json::from_str(only).map_err(|e| format!("args: {e}"));
    }
    let mut map = serde_json::Map::new();
    for w in words {
        let (k, v) = w.split_once('=').ok_or_else(|| format!("{w:?}: write key=value"))?;
        let value = if TEXT_ARGS.contains(&k) {
            Value::String(v.to_string())
        } else {
            serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()))
        };
        map.insert(k.to_string(), value);
    }
    Ok(Value::Object(map))
}

/// Splits a console line into words. Double quotes keep spaces inside one word and are
/// dropped; single quotes keep everything inside as it is, double quotes included (for JSON:
/// `reads='[["trailer-01",4711]]'`).
pub fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in line.chars() {
        match (c, quote) {
            ('"' | '\'', None) => {
                quote = Some(c);
                any = true;
            }
            (c, Some(q)) if c == q => quote = None,
            (c, None) if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (c, _) => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

fn cell(key: &str, v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        // Whatever reached the records, never an escape sequence on an operator's screen.
        Value::String(s) => trailer_wire::text::clean(s, usize::MAX),
        // Pictures and nested records: what is there (they are saved or shown on their own).
        Value::Object(o) => o.keys().cloned().collect::<Vec<_>>().join(","),
        // A time as epoch milliseconds: the local time with its zone.
        Value::Number(n)
            if key.ends_with("_ms") && n.as_i64().is_some_and(|ms| ms > 1e12 as i64) =>
        {
            local_time(n.as_i64().unwrap_or_default())
        }
        // Six decimals at most (a tenth of a metre in latitude); no float noise.
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            let fixed = format!("{:.6}", n.as_f64().unwrap_or_default());
            fixed.trim_end_matches('0').trim_end_matches('.').to_string()
        }
        other => other.to_string(),
    }
}

/// Epoch milliseconds as this machine's local time, with the zone: `2026-12-02 09:14 CST`.
pub fn local_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| {
            t.to_zoned_datetime(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string()
        })
        .unwrap_or_else(|_| ms.to_string())
}

/// Columns shown first, in this order, when a table has them.
const LEADING: [&str; 12] = [
    "id",
    "name",
    "alert_id",
    "trailer",
    "trailer_id",
    "reader",
    "plate",
    "state",
    "seen_at",
    "best_seen",
    "place",
    "role",
];

/// An answer as people read it, at any width: see [`render_within`].
pub fn render(data: &Value) -> String {
    render_within(data, usize::MAX)
}

/// An answer as people read it on a terminal `width` columns wide: a list of objects as a
/// table with a header, or, when the table is wider than the terminal, as records (one field a
/// line); an object as `key  value` lines; anything else as JSON. No value is ever cut.
pub fn render_within(data: &Value, width: usize) -> String {
    match data {
        Value::Array(rows) if rows.is_empty() => "(none)\n".into(),
        Value::Array(rows) if rows.iter().all(Value::is_object) => {
            let mut columns: Vec<String> = Vec::new();
            for r in rows {
                for k in r.as_object().into_iter().flat_map(|o| o.keys()) {
                    if !columns.contains(k) {
                        columns.push(k.clone());
                    }
                }
            }
            // What a row is about first (its id, trailer, plate), the rest in name order.
            columns.sort_by_key(|c| LEADING.iter().position(|l| l == c).unwrap_or(LEADING.len()));
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| columns.iter().map(|c| cell(c, &r[c.as_str()])).collect())
                .collect();
            let widths: Vec<usize> = columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    cells.iter().map(|r| r[i].chars().count()).max().unwrap_or(0).max(c.len())
                })
                .collect();
            if widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1) > width {
                // Too wide for the terminal: each row as a record, one field a line.
                let name_width = columns.iter().map(String::len).max().unwrap_or(0);
                let records: Vec<String> = cells
                    .iter()
                    .map(|r| {
                        columns
                            .iter()
                            .zip(r)
                            .filter(|(_, v)| !v.is_empty())
                            .map(|(c, v)| format!("{c:<name_width$}  {v}\n"))
                            .collect()
                    })
                    .collect();
                return records.join("\n");
            }
            let line = |values: Vec<&str>| {
                let padded: Vec<String> =
                    values.iter().zip(&widths).map(|(v, w)| format!("{v:<w$}")).collect();
                format!("{}\n", padded.join("  ").trim_end())
            };
            let mut out = line(columns.iter().map(String::as_str).collect());
            out.push_str(&line(
                widths
                    .iter()
                    .map(|w| "-".repeat(*w))
                    .collect::<Vec<_>>()
                    .iter()
                    .map(String::as_str)
                    .collect(),
            ));
            for r in &cells {
                out.push_str(&line(r.iter().map(String::as_str).collect()));
            }
            out
        }
        Value::Object(o) => {
            let kw = o.keys().map(String::len).max().unwrap_or(0);
            o.iter()
                .map(|(k, v)| match v {
                    Value::Array(_) | Value::Object(_) => {
                        format!("{k:<kw$}  {}\n", serde_json::to_string(v).unwrap_or_default())
                    }
                    other => format!("{k:<kw$}  {}\n", cell(k, other)),
                })
                .collect()
        }
        Value::Null => "done\n".into(),
        other => format!("{}\n", serde_json::to_string_pretty(other).unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_split_at_line_ends_and_join_back() {
        let text: String = (0..5000).map(|i| format!("P{i:05},MN,warrant,BCA\n")).collect();
        let parts = split_lines(&text, 1000);
        assert!(parts.iter().all(|p| p.len() <= 1000 && p.ends_with('\n')));
        assert_eq!(parts.concat(), text);
        let long = "é".repeat(700);
        assert_eq!(split_lines(&long, 1000).concat(), long, "a long line at char boundaries");
        assert_eq!(split_lines("", 10), vec![""]);
    }

    #[test]
    fn key_value_words_become_args() {
        let args =
            parse_args(&["plate=ABC123", "pictures=true", "limit=5", "name=4th St"]).expect("args");
        assert_eq!(
            args,
            json!({"plate": "ABC123", "pictures": true, "limit": 5, "name": "4th St"})
        );
        assert_eq!(parse_args(&[r#"{"id":3}"#]).expect("json"), json!({"id": 3}));
        assert!(parse_args(&["plate"]).is_err());
        let digits = parse_args(&["plate=1234567", "id=3", "reference=0042"]).expect("args");
        assert_eq!(digits, json!({"plate": "1234567", "id": 3, "reference": "0042"}));
        let hold = words(r#"holds.place kind=exculpatory reads='[["trailer-01",4711]]'"#);
        let args =
            parse_args(&hold[1..].iter().map(String::as_str).collect::<Vec<_>>()).expect("args");
        assert_eq!(args["reads"], json!([["trailer-01", 4711]]));
        assert_eq!(
            words(r#"deployments.rename id=3 name="Main St & 4th""#),
            vec!["deployments.rename", "id=3", "name=Main St & 4th"]
        );
    }

    #[test]
    fn lists_render_as_tables_and_objects_as_lines() {
        let rows =
            json!([{"trailer": "t1", "online": true}, {"trailer": "trailer-22", "backlog": 4}]);
        assert_eq!(
            render(&rows),
            "trailer     online  backlog\n----------  ------  -------\nt1          true\ntrailer-22          4\n"
        );
        assert_eq!(
            render(&json!({"release": 3, "state": "approved"})),
            "release  3\nstate    approved\n"
        );
        assert_eq!(render(&json!([])), "(none)\n");
        assert_eq!(
            render(&json!({"c": 0.996999979019165, "lat": 44.1636, "n": 7})),
            "c    0.997\nlat  44.1636\nn    7\n"
        );
        // Nothing is cut: a digest or a path is acted on whole.
        let digest = "ab".repeat(32);
        let long = render(&json!([{"sha256": digest, "dir": "/var/lib/alpr/releases/release-12"}]));
        assert!(long.contains(&digest) && long.contains("release-12"), "{long}");
        // Wider than the terminal: records, one field a line.
        let narrow = render_within(&json!([{"id": 1, "sha256": digest}, {"id": 2}]), 40);
        assert_eq!(narrow, format!("id      1\nsha256  {digest}\n\nid      2\n"));
        // Epoch milliseconds read as a local time with its zone.
        let due = render(&json!({"due_ms": 1_790_000_000_000_i64}));
        assert!(due.starts_with("due_ms  2026-") && !due.contains("1790000000000"), "{due}");
    }
}
