//! A stand-in for Auto Scaling's instance-refresh API, which the emulator does not implement.
//!
//! [`RefreshDouble`] is an HTTP proxy on a free loopback port. It forwards every request to the
//! emulator byte for byte, except the Auto Scaling Query API calls `StartInstanceRefresh`,
//! `DescribeInstanceRefreshes` and `CancelInstanceRefresh`, which it answers itself with the XML
//! Auto Scaling sends, following a [`RefreshScript`]. Point an SDK client at
//! [`RefreshDouble::endpoint`] and the rollout code runs unchanged; [`RefreshDouble::starts`]
//! then tells what it asked for.
//!
//! Like Auto Scaling, a refresh that succeeds writes its desired launch template to the group:
//! the double sends that `UpdateAutoScalingGroup` to the emulator when it first reports
//! `Successful`. A refresh that fails or rolls back leaves the group as it was.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

const NAMESPACE: &str = "http://autoscaling.amazonaws.com/doc/2011-01-01/";

/// How a refresh ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    Successful,
    Failed(String),
    RollbackSuccessful(String),
}

impl Ending {
    fn status(&self) -> &'static str {
        match self {
            Ending::Successful => "Successful",
            Ending::Failed(_) => "Failed",
            Ending::RollbackSuccessful(_) => "RollbackSuccessful",
        }
    }

    fn reason(&self) -> Option<&str> {
        match self {
            Ending::Successful => None,
            Ending::Failed(reason) | Ending::RollbackSuccessful(reason) => Some(reason),
        }
    }
}

/// What the double does with the refreshes it is asked to start, for every group.
#[derive(Clone, Debug)]
pub struct RefreshScript {
    /// `InProgress` answers before the refresh ends.
    polls: u32,
    ending: Ending,
    /// A refresh someone else started, `InProgress` for this many describes, then `Successful`.
    already_running: Option<u32>,
    /// Whether the first describe misses that refresh (it starts between describe and start).
    starts_after_first_describe: bool,
    /// Whether the connection of the first accepted start closes without an answer.
    loses_first_start_answer: bool,
}

impl RefreshScript {
    /// Each refresh is `InProgress` for `polls` describes, then `Successful`.
    pub fn succeed_after(polls: u32) -> Self {
        RefreshScript {
            polls,
            ending: Ending::Successful,
            already_running: None,
            starts_after_first_describe: false,
            loses_first_start_answer: false,
        }
    }

    /// The same, but the first refresh that starts never answers: its connection closes, as
    /// when an answer is lost on the way, so the client's retry is refused.
    pub fn losing_the_first_start_answer(self) -> Self {
        RefreshScript {
            loses_first_start_answer: true,
            ..self
        }
    }

    /// Each refresh is `InProgress` for one describe, then `Failed` with `reason`.
    pub fn fail(reason: impl Into<String>) -> Self {
        RefreshScript {
            ending: Ending::Failed(reason.into()),
            ..RefreshScript::succeed_after(1)
        }
    }

    /// Each refresh is `InProgress` for one describe, then `RollbackSuccessful` with `reason`.
    pub fn roll_back(reason: impl Into<String>) -> Self {
        RefreshScript {
            ending: Ending::RollbackSuccessful(reason.into()),
            ..RefreshScript::succeed_after(1)
        }
    }

    /// Every group already has a refresh in progress (started by someone else) that succeeds
    /// after two describes; a new one is refused with `InstanceRefreshInProgress` until then,
    /// and succeeds after one describe.
    pub fn in_progress_already() -> Self {
        RefreshScript {
            already_running: Some(2),
            ..RefreshScript::succeed_after(1)
        }
    }

    /// Like [`RefreshScript::in_progress_already`], but the other refresh starts just after the
    /// first describe: only `StartInstanceRefresh` finds out, by being refused.
    pub fn in_progress_from_second_call() -> Self {
        RefreshScript {
            starts_after_first_describe: true,
            ..RefreshScript::in_progress_already()
        }
    }
}

/// The preferences of a `StartInstanceRefresh`, as sent (`None`: not sent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Preferences {
    pub min_healthy_percentage: Option<u32>,
    pub max_healthy_percentage: Option<u32>,
    pub instance_warmup: Option<u32>,
    pub skip_matching: Option<bool>,
    pub auto_rollback: Option<bool>,
}

/// The launch template of a refresh's desired configuration, as sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredTemplate {
    pub id: Option<String>,
    pub name: Option<String>,
    pub version: Option<String>,
}

/// One accepted `StartInstanceRefresh`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Started {
    pub group: String,
    pub refresh_id: String,
    pub strategy: Option<String>,
    /// `None` when the request had no `DesiredConfiguration.LaunchTemplate`.
    pub desired_template: Option<DesiredTemplate>,
    pub preferences: Preferences,
}

#[derive(Clone, Debug)]
struct Refresh {
    id: String,
    group: String,
    /// `InProgress` answers left before `ending`.
    polls_left: u32,
    polls: u32,
    ending: Ending,
    cancelled: bool,
    /// The launch template of the desired configuration, as sent.
    template: Option<DesiredTemplate>,
    /// The `Authorization` header of the start request, to write `template` to the group with on
    /// success (the emulator reads the region from it); `None` once written.
    authorization: Option<String>,
}

impl Refresh {
    fn active(&self) -> bool {
        !self.cancelled && self.polls_left > 0
    }

    /// The status a describe reports now, advancing the script.
    fn observe(&mut self) -> (String, Option<String>, u32, u32) {
        if self.cancelled {
            return (
                "Cancelled".into(),
                Some("Cancelled by request".into()),
                0,
                0,
            );
        }
        if self.polls_left == 0 {
            let reason = self.ending.reason().map(str::to_string);
            return (self.ending.status().into(), reason, 100, 0);
        }
        let left = self.polls_left;
        self.polls_left -= 1;
        let percentage = (self.polls - left) * 100 / self.polls;
        ("InProgress".into(), None, percentage, left)
    }
}

#[derive(Default)]
struct State {
    /// Every refresh, oldest first.
    refreshes: Vec<Refresh>,
    /// Refresh calls per group, to know when the other refresh starts.
    calls_per_group: HashMap<String, u32>,
    starts: Vec<Started>,
    calls: Vec<String>,
    counter: u32,
    /// Whether the answer to a start has been lost already.
    lost_a_start_answer: bool,
}

/// The running double; stops when dropped.
pub struct RefreshDouble {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RefreshDouble {
    /// Listen on a free loopback port; forward what is not a refresh call to `upstream`.
    pub fn start(upstream: SocketAddr, script: RefreshScript) -> RefreshDouble {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let port = listener.local_addr().expect("a bound address").port();
        let state = Arc::new(Mutex::new(State::default()));
        let script = Arc::new(script);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let (state, script) = (Arc::clone(&state), Arc::clone(&script));
                    std::thread::spawn(move || {
                        let _ = serve(client, upstream, &state, &script);
                    });
                }
            })
        };
        RefreshDouble {
            port,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every accepted `StartInstanceRefresh`, in order.
    pub fn starts(&self) -> Vec<Started> {
        lock(&self.state).starts.clone()
    }

    /// The refresh calls answered so far (`DescribeInstanceRefreshes GROUP`...), in order.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.state).calls.clone()
    }
}

impl Drop for RefreshDouble {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

struct Request {
    head: Vec<(String, String)>,
    request_line: String,
    /// The body as sent (chunked framing kept), for forwarding.
    raw_body: Vec<u8>,
    /// The body without framing.
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.head
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request per connection: both sides are told `Connection: close`.
fn serve(
    client: TcpStream,
    upstream: SocketAddr,
    state: &Mutex<State>,
    script: &RefreshScript,
) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut reader = BufReader::new(client);
    let Some(request) = read_request(&mut reader)? else {
        return Ok(());
    };
    let mut client = reader.into_inner();
    let form = parse_form(&String::from_utf8_lossy(&request.body));
    let action = form.get("Action").map(String::as_str);
    let answer = match action {
        Some("StartInstanceRefresh" | "DescribeInstanceRefreshes" | "CancelInstanceRefresh") => {
            let authorization = request.header("authorization").unwrap_or_default();
            let (answer, succeeded, lost) = {
                let mut state = lock(state);
                let (answer, succeeded) = answer(&form, authorization, &mut state, script);
                let lost = script.loses_first_start_answer
                    && !state.lost_a_start_answer
                    && !state.starts.is_empty();
                state.lost_a_start_answer |= lost;
                (answer, succeeded, lost)
            };
            if let Some((group, (template, authorization))) = succeeded {
                pin_group(upstream, &group, &template, &authorization);
            }
            if lost {
                // The connection closes unanswered.
                return Ok(());
            }
            Some(answer)
        }
        _ => None,
    };
    match answer {
        Some((status, xml)) => {
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nx-amzn-RequestId: refresh-double\r\nConnection: close\r\n\r\n",
                xml.len()
            );
            client.write_all(head.as_bytes())?;
            client.write_all(xml.as_bytes())?;
            client.flush()
        }
        None => forward(client, upstream, &request),
    }
}

fn forward(mut client: TcpStream, upstream: SocketAddr, request: &Request) -> std::io::Result<()> {
    let Ok(mut server) = TcpStream::connect(upstream) else {
        return client.write_all(
            b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    };
    let mut head = format!("{}\r\n", request.request_line);
    for (name, value) in &request.head {
        if !name.eq_ignore_ascii_case("connection") {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    server.write_all(head.as_bytes())?;
    server.write_all(&request.raw_body)?;
    server.flush()?;

    let mut server = BufReader::new(server);
    let mut response_head = Vec::new();
    loop {
        let mut line = String::new();
        if server.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if !line.to_ascii_lowercase().starts_with("connection:") {
            response_head.extend_from_slice(line.as_bytes());
        }
    }
    response_head.extend_from_slice(b"Connection: close\r\n\r\n");
    client.write_all(&response_head)?;
    std::io::copy(&mut server, &mut client)?;
    client.flush()
}

fn read_request(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let mut request_line = String::new();
    if reader.read_line(&mut request_line)? == 0 {
        return Ok(None);
    }
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.trim_end().split_once(':') {
            head.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    let header = |name: &str| {
        head.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let (raw_body, body) = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        read_chunked(reader)?
    } else {
        let length = header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        (body.clone(), body)
    };
    Ok(Some(Request {
        head,
        request_line: request_line.trim_end().to_string(),
        raw_body,
        body,
    }))
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut raw = Vec::new();
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line)?;
        raw.extend_from_slice(size_line.as_bytes());
        let size_hex = size_line.trim().split(';').next().unwrap_or("0");
        let size = usize::from_str_radix(size_hex, 16).unwrap_or(0);
        if size == 0 {
            loop {
                let mut trailer = String::new();
                let n = reader.read_line(&mut trailer)?;
                raw.extend_from_slice(trailer.as_bytes());
                if n == 0 || trailer == "\r\n" {
                    return Ok((raw, body));
                }
            }
        }
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk)?;
        raw.extend_from_slice(&chunk);
        body.extend_from_slice(&chunk[..size]);
    }
}

/// `application/x-www-form-urlencoded` into a map (the last value of a repeated key wins).
fn parse_form(form: &str) -> HashMap<String, String> {
    form.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A refresh that just succeeded: its group, and the template to write to it.
type Succeeded = Option<(String, (DesiredTemplate, String))>;

/// The HTTP status and XML body for one refresh call.
fn answer(
    form: &HashMap<String, String>,
    authorization: &str,
    state: &mut State,
    script: &RefreshScript,
) -> ((&'static str, String), Succeeded) {
    let action = form.get("Action").cloned().unwrap_or_default();
    let group = form
        .get("AutoScalingGroupName")
        .cloned()
        .unwrap_or_default();
    state.calls.push(format!("{action} {group}"));
    let calls = state.calls_per_group.entry(group.clone()).or_default();
    *calls += 1;
    let seed_at = if script.starts_after_first_describe {
        2
    } else {
        1
    };
    if let (Some(polls), true) = (script.already_running, *calls == seed_at) {
        state.counter += 1;
        state.refreshes.push(Refresh {
            id: format!("other-{}", state.counter),
            group: group.clone(),
            polls_left: polls,
            polls,
            ending: Ending::Successful,
            cancelled: false,
            template: None,
            authorization: None,
        });
    }
    match action.as_str() {
        "StartInstanceRefresh" => (start(form, authorization, state, script, group), None),
        "DescribeInstanceRefreshes" => describe(form, state, &group),
        _ => (cancel(state, &group), None),
    }
}

fn start(
    form: &HashMap<String, String>,
    authorization: &str,
    state: &mut State,
    script: &RefreshScript,
    group: String,
) -> (&'static str, String) {
    if state
        .refreshes
        .iter()
        .any(|r| r.group == group && r.active())
    {
        return error(
            "InstanceRefreshInProgress",
            "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh.",
        );
    }
    let number = |key: &str| form.get(key).and_then(|v| v.parse().ok());
    let boolean = |key: &str| form.get(key).map(|v| v == "true");
    let preferences = Preferences {
        min_healthy_percentage: number("Preferences.MinHealthyPercentage"),
        max_healthy_percentage: number("Preferences.MaxHealthyPercentage"),
        instance_warmup: number("Preferences.InstanceWarmup"),
        skip_matching: boolean("Preferences.SkipMatching"),
        auto_rollback: boolean("Preferences.AutoRollback"),
    };
    let template = |key: &str| {
        form.get(&format!("DesiredConfiguration.LaunchTemplate.{key}"))
            .cloned()
    };
    let desired_template = Some(DesiredTemplate {
        id: template("LaunchTemplateId"),
        name: template("LaunchTemplateName"),
        version: template("Version"),
    })
    .filter(|t| *t != DesiredTemplate::default());
    state.counter += 1;
    let id = format!("refresh-{}", state.counter);
    state.refreshes.push(Refresh {
        id: id.clone(),
        group: group.clone(),
        polls_left: script.polls,
        polls: script.polls,
        ending: script.ending.clone(),
        cancelled: false,
        template: desired_template.clone(),
        authorization: Some(authorization.to_string()),
    });
    state.starts.push(Started {
        group,
        refresh_id: id.clone(),
        strategy: form.get("Strategy").cloned(),
        desired_template,
        preferences,
    });
    ok(
        "StartInstanceRefresh",
        &format!("<InstanceRefreshId>{id}</InstanceRefreshId>"),
    )
}

fn describe(
    form: &HashMap<String, String>,
    state: &mut State,
    group: &str,
) -> ((&'static str, String), Succeeded) {
    let wanted: Vec<&String> = form
        .iter()
        .filter(|(k, _)| k.starts_with("InstanceRefreshIds.member."))
        .map(|(_, v)| v)
        .collect();
    let mut members = String::new();
    let mut succeeded = None;
    // Newest first, as Auto Scaling lists them.
    for refresh in state.refreshes.iter_mut().rev() {
        if refresh.group != group || !(wanted.is_empty() || wanted.contains(&&refresh.id)) {
            continue;
        }
        let (status, reason, percentage, left) = refresh.observe();
        if status == "Successful" {
            if let (Some(template), Some(authorization)) =
                (&refresh.template, refresh.authorization.take())
            {
                succeeded = Some((refresh.group.clone(), (template.clone(), authorization)));
            }
        }
        let reason = reason
            .map(|r| format!("<StatusReason>{}</StatusReason>", escape(&r)))
            .unwrap_or_default();
        let desired = refresh
            .template
            .as_ref()
            .map(desired_configuration)
            .unwrap_or_default();
        members.push_str(&format!(
            "<member><InstanceRefreshId>{}</InstanceRefreshId><AutoScalingGroupName>{}</AutoScalingGroupName><Status>{status}</Status>{reason}<PercentageComplete>{percentage}</PercentageComplete><InstancesToUpdate>{left}</InstancesToUpdate><Strategy>Rolling</Strategy>{desired}</member>",
            refresh.id,
            escape(&refresh.group),
        ));
    }
    let answer = ok(
        "DescribeInstanceRefreshes",
        &format!("<InstanceRefreshes>{members}</InstanceRefreshes>"),
    );
    (answer, succeeded)
}

/// A refresh's `DesiredConfiguration` element, as DescribeInstanceRefreshes lists it.
fn desired_configuration(template: &DesiredTemplate) -> String {
    let field = |name: &str, value: &Option<String>| {
        value
            .as_ref()
            .map(|v| format!("<{name}>{}</{name}>", escape(v)))
            .unwrap_or_default()
    };
    format!(
        "<DesiredConfiguration><LaunchTemplate>{}{}{}</LaunchTemplate></DesiredConfiguration>",
        field("LaunchTemplateId", &template.id),
        field("LaunchTemplateName", &template.name),
        field("Version", &template.version),
    )
}

/// What Auto Scaling does when a refresh with a desired configuration succeeds: set the group's
/// launch template to it. The emulator's answer is not checked here; tests read the group back.
fn pin_group(upstream: SocketAddr, group: &str, template: &DesiredTemplate, authorization: &str) {
    let mut body = format!(
        "Action=UpdateAutoScalingGroup&Version=2011-01-01&AutoScalingGroupName={}",
        encode(group)
    );
    for (key, value) in [
        ("LaunchTemplateId", &template.id),
        ("LaunchTemplateName", &template.name),
        ("Version", &template.version),
    ] {
        if let Some(value) = value {
            body.push_str(&format!("&LaunchTemplate.{key}={}", encode(value)));
        }
    }
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {upstream}\r\nContent-Type: application/x-www-form-urlencoded; charset=utf-8\r\nAuthorization: {authorization}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if let Ok(mut stream) = TcpStream::connect(upstream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        if stream.write_all(request.as_bytes()).is_ok() {
            let _ = stream.read_to_end(&mut Vec::new());
        }
    }
}

/// Percent-encode a form value (unreserved characters kept).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn cancel(state: &mut State, group: &str) -> (&'static str, String) {
    match state
        .refreshes
        .iter_mut()
        .find(|r| r.group == group && r.active())
    {
        Some(refresh) => {
            refresh.cancelled = true;
            ok(
                "CancelInstanceRefresh",
                &format!("<InstanceRefreshId>{}</InstanceRefreshId>", refresh.id),
            )
        }
        None => error(
            "ActiveInstanceRefreshNotFound",
            "No in progress or pending Instance Refresh found for Auto Scaling group",
        ),
    }
}

fn ok(action: &str, result: &str) -> (&'static str, String) {
    (
        "200 OK",
        format!(
            "<{action}Response xmlns=\"{NAMESPACE}\"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>refresh-double</RequestId></ResponseMetadata></{action}Response>"
        ),
    )
}

fn error(code: &str, message: &str) -> (&'static str, String) {
    (
        "400 Bad Request",
        format!(
            "<ErrorResponse xmlns=\"{NAMESPACE}\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>refresh-double</RequestId></ErrorResponse>",
            escape(message)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(double: &RefreshDouble, body: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", double.port)).unwrap();
        let request = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    /// An upstream that answers `n` requests with `ok` and returns their bodies.
    fn upstream(n: usize) -> (SocketAddr, JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            (0..n)
                .map(|_| {
                    let (stream, _) = listener.accept().unwrap();
                    let mut reader = BufReader::new(stream);
                    let request = read_request(&mut reader).unwrap().unwrap();
                    let mut stream = reader.into_inner();
                    stream
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok")
                        .unwrap();
                    String::from_utf8(request.body).unwrap()
                })
                .collect()
        });
        (address, server)
    }

    #[test]
    fn forwards_other_calls_and_answers_refresh_calls() {
        let (address, server) = upstream(2);
        let double = RefreshDouble::start(address, RefreshScript::succeed_after(2));
        let body = "Action=DescribeAutoScalingGroups&Version=2011-01-01";
        let forwarded = post(&double, body);
        assert!(forwarded.starts_with("HTTP/1.1 200 OK"), "{forwarded}");
        assert!(forwarded.ends_with("ok"), "{forwarded}");
        assert!(forwarded.contains("Connection: close"), "{forwarded}");

        let started = post(
            &double,
            "Action=StartInstanceRefresh&Version=2011-01-01&AutoScalingGroupName=web%2D1&Strategy=Rolling\
             &Preferences.MinHealthyPercentage=100&Preferences.MaxHealthyPercentage=200\
             &Preferences.SkipMatching=true&Preferences.AutoRollback=false\
             &DesiredConfiguration.LaunchTemplate.LaunchTemplateId=lt-1&DesiredConfiguration.LaunchTemplate.Version=3",
        );
        assert!(
            started.contains("<InstanceRefreshId>refresh-1</InstanceRefreshId>"),
            "{started}"
        );
        assert_eq!(
            double.starts(),
            [Started {
                group: "web-1".into(),
                refresh_id: "refresh-1".into(),
                strategy: Some("Rolling".into()),
                desired_template: Some(DesiredTemplate {
                    id: Some("lt-1".into()),
                    name: None,
                    version: Some("3".into()),
                }),
                preferences: Preferences {
                    min_healthy_percentage: Some(100),
                    max_healthy_percentage: Some(200),
                    instance_warmup: None,
                    skip_matching: Some(true),
                    auto_rollback: Some(false),
                },
            }]
        );
        let describe =
            "Action=DescribeInstanceRefreshes&Version=2011-01-01&AutoScalingGroupName=web-1";
        let statuses: Vec<String> = (0..3).map(|_| post(&double, describe)).collect();
        assert!(statuses[0].contains("<Status>InProgress</Status><PercentageComplete>0</PercentageComplete><InstancesToUpdate>2</InstancesToUpdate>"), "{}", statuses[0]);
        assert!(statuses[1].contains("<PercentageComplete>50</PercentageComplete><InstancesToUpdate>1</InstancesToUpdate>"), "{}", statuses[1]);
        assert!(
            statuses[2].contains("<Status>Successful</Status>"),
            "{}",
            statuses[2]
        );
        assert_eq!(double.calls().len(), 4);
        // The success wrote the desired template to the group, once.
        post(&double, describe);
        assert_eq!(
            server.join().unwrap(),
            [
                body.to_string(),
                "Action=UpdateAutoScalingGroup&Version=2011-01-01&AutoScalingGroupName=web-1\
                 &LaunchTemplate.LaunchTemplateId=lt-1&LaunchTemplate.Version=3"
                    .to_string(),
            ]
        );
    }

    #[test]
    fn a_refresh_in_progress_refuses_a_second_until_it_ends() {
        let (address, _) = upstream(0);
        let double = RefreshDouble::start(address, RefreshScript::in_progress_already());
        let start = "Action=StartInstanceRefresh&AutoScalingGroupName=g";
        let refused = post(&double, start);
        assert!(refused.starts_with("HTTP/1.1 400"), "{refused}");
        assert!(
            refused.contains("<Code>InstanceRefreshInProgress</Code>"),
            "{refused}"
        );
        let describe = "Action=DescribeInstanceRefreshes&AutoScalingGroupName=g";
        assert!(post(&double, describe).contains("<Status>InProgress</Status>"));
        assert!(post(&double, describe).contains("<Status>InProgress</Status>"));
        assert!(post(&double, describe).contains("<Status>Successful</Status>"));
        assert!(post(&double, start).contains("<InstanceRefreshId>refresh-2</InstanceRefreshId>"));
        let cancelled = post(
            &double,
            "Action=CancelInstanceRefresh&AutoScalingGroupName=g",
        );
        assert!(cancelled.contains("refresh-2"), "{cancelled}");
        let after = post(&double, describe);
        assert!(after.contains("<Status>Cancelled</Status>"), "{after}");
    }

    #[test]
    fn form_values_are_url_decoded() {
        let form = parse_form("a=x%2Fy+z&b=%&c");
        assert_eq!(form["a"], "x/y z");
        assert_eq!(form["b"], "%");
        assert_eq!(form["c"], "");
    }
}
