//! A counting HTTP proxy between an AWS client and the emulator: it forwards every request and
//! records which AWS operation it was, so tests can assert what a command sent, in what order,
//! or that it sent nothing at all. It can also add latency to every call and inject faults
//! (service errors in each protocol's own format, dropped connections, lost responses) chosen
//! per request by a [`FaultHook`].
//!
//! Operations are read from the `X-Amz-Target` header (JSON protocols: ACM, SSM), the `Action=`
//! form parameter (query protocols: EC2, ELBv2, Auto Scaling, RDS), or S3's method and path
//! (path-style addressing, as the emulator needs).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// Name prefixes of operations that change something.
const MUTATING_PREFIXES: &[&str] = &[
    "Create",
    "Modify",
    "Put",
    "Delete",
    "Authorize",
    "Revoke",
    "Attach",
    "Detach",
    "Associate",
    "Disassociate",
    "Set",
    "Register",
    "Deregister",
    "Update",
    "Replace",
    "Request",
    "Import",
    "Add",
    "Remove",
    "Start",
    "Run",
    "Terminate",
    "Enable",
    "Disable",
    "Apply",
];

/// One request that went through the proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// The AWS operation name (`CreateTargetGroup`, `PutBucketVersioning`...).
    pub name: String,
    /// Whether the operation changes anything.
    pub mutating: bool,
    /// The signing name of the service (`ec2`, `elasticloadbalancing`, `s3`...), read from the
    /// request's credential scope; empty when the request is not signed.
    pub service: String,
    /// The form parameters of a query-protocol request (`Action=...&VpcId.1=...`), the XML body
    /// of a Route53 one, else empty.
    pub params: String,
}

impl Operation {
    /// Whether the request names the resources it reads by id or ARN (a describe of something
    /// that does not exist then fails with NotFound; a filtered one just returns nothing).
    pub fn by_id(&self) -> bool {
        self.params.split('&').any(|pair| {
            let key = pair.split('=').next().unwrap_or_default();
            key.ends_with("Id.1") || key.ends_with("Arns.member.1") || key == "DBInstanceIdentifier"
        })
    }
}

/// What the proxy does with one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward it and pass the answer on.
    Forward,
    /// Answer with this status and body instead of forwarding.
    Respond {
        status: u16,
        content_type: &'static str,
        body: String,
    },
    /// Close the connection without forwarding or answering.
    Drop,
    /// Forward it, then close the connection without passing the answer on: the call took
    /// effect, the client never learns.
    LoseResponse,
}

impl Fault {
    /// The service's throttling error, in its protocol's format: EC2's `RequestLimitExceeded`,
    /// the query services' `Throttling`, JSON services' `ThrottlingException`, S3's `SlowDown`.
    pub fn throttle(operation: &Operation) -> Fault {
        match operation.service.as_str() {
            "ec2" => Fault::error(
                operation,
                503,
                "RequestLimitExceeded",
                "Request limit exceeded.",
            ),
            "s3" => Fault::error(
                operation,
                503,
                "SlowDown",
                "Please reduce your request rate.",
            ),
            "acm" | "ssm" => Fault::error(operation, 400, "ThrottlingException", "Rate exceeded"),
            _ => Fault::error(operation, 400, "Throttling", "Rate exceeded"),
        }
    }

    /// A service error with this status, code and message, in the operation's protocol.
    pub fn error(operation: &Operation, status: u16, code: &str, message: &str) -> Fault {
        let (content_type, body) = match operation.service.as_str() {
            "ec2" => (
                "text/xml",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>"
                ),
            ),
            "s3" => (
                "application/xml",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>fault-proxy</RequestId></Error>"
                ),
            ),
            "acm" | "ssm" => (
                "application/x-amz-json-1.1",
                format!("{{\"__type\":\"{code}\",\"message\":\"{message}\"}}"),
            ),
            _ => (
                "text/xml",
                format!(
                    "<ErrorResponse><Error><Type>{}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>",
                    if status >= 500 { "Receiver" } else { "Sender" }
                ),
            ),
        };
        Fault::Respond {
            status,
            content_type,
            body,
        }
    }
}

/// Decides, for each request (the operation and its 0-based position among all requests so
/// far), what the proxy does with it.
pub type FaultHook = Arc<dyn Fn(&Operation, usize) -> Fault + Send + Sync>;

/// How the proxy treats requests: a latency added to each, and faults.
#[derive(Clone, Default)]
pub struct ProxyOptions {
    /// Added before forwarding each request (a stand-in for the network distance to AWS).
    pub latency: Duration,
    pub faults: Option<FaultHook>,
}

/// A running proxy; stops when dropped.
pub struct CountingProxy {
    port: u16,
    log: Arc<Mutex<Vec<Operation>>>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl CountingProxy {
    /// Listen on a free loopback port and forward to `upstream` (`127.0.0.1:4566`). Requests are
    /// recorded even when the upstream does not answer (they then get a 502).
    pub fn start(upstream: SocketAddr) -> CountingProxy {
        CountingProxy::with_options(upstream, ProxyOptions::default())
    }

    /// Like [`CountingProxy::start`], with latency and faults.
    pub fn with_options(upstream: SocketAddr, options: ProxyOptions) -> CountingProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let port = listener.local_addr().expect("a bound address").port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (shutdown, mut stop) = oneshot::channel();
        let thread_log = Arc::clone(&log);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a tokio runtime for the proxy");
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                let mut in_flight = tokio::task::JoinSet::new();
                loop {
                    tokio::select! {
                        _ = &mut stop => break,
                        Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                        accepted = listener.accept() => {
                            let Ok((client, _)) = accepted else { continue };
                            let log = Arc::clone(&thread_log);
                            let options = options.clone();
                            in_flight.spawn(async move {
                                let _ = forward(client, upstream, log, options).await;
                            });
                        }
                    }
                }
                // A request already forwarded still lands upstream after its client is gone
                // (killed, say): let it, so that what a test looks at next is settled.
                let settled = async { while in_flight.join_next().await.is_some() {} };
                let _ = tokio::time::timeout(Duration::from_secs(30), settled).await;
            });
        });
        CountingProxy {
            port,
            log,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every operation so far, in the order the requests arrived.
    pub fn operations(&self) -> Vec<Operation> {
        self.log.lock().expect("proxy log").clone()
    }

    /// How many calls of `operation` (`CreateTargetGroup`...) arrived so far.
    pub fn count(&self, operation: &str) -> usize {
        self.log
            .lock()
            .expect("proxy log")
            .iter()
            .filter(|o| o.name == operation)
            .count()
    }

    /// The operations so far that change something.
    pub fn mutating(&self) -> Vec<Operation> {
        self.operations()
            .into_iter()
            .filter(|o| o.mutating)
            .collect()
    }

    /// Forget what was recorded so far.
    pub fn clear(&self) {
        self.log.lock().expect("proxy log").clear();
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One request per connection: both sides are told `Connection: close`, so the client never
/// reuses a connection the proxy is about to close.
async fn forward(
    client: TcpStream,
    upstream: SocketAddr,
    log: Arc<Mutex<Vec<Operation>>>,
    options: ProxyOptions,
) -> std::io::Result<()> {
    let mut client = BufReader::new(client);
    let Some(request) = read_request(&mut client).await? else {
        return Ok(());
    };
    let operation = request.operation();
    let position = {
        let mut log = log.lock().expect("proxy log");
        log.push(operation.clone());
        log.len() - 1
    };
    let fault = options
        .faults
        .as_ref()
        .map_or(Fault::Forward, |hook| hook(&operation, position));
    if !options.latency.is_zero() {
        tokio::time::sleep(options.latency).await;
    }

    let mut client = client.into_inner();
    match fault {
        Fault::Forward | Fault::LoseResponse => {}
        Fault::Drop => return Ok(()),
        Fault::Respond {
            status,
            content_type,
            body,
        } => {
            let head = format!(
                "HTTP/1.1 {status} Injected\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nx-amzn-RequestId: fault-proxy\r\nConnection: close\r\n\r\n",
                body.len()
            );
            client.write_all(head.as_bytes()).await?;
            client.write_all(body.as_bytes()).await?;
            return client.shutdown().await;
        }
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        client
            .write_all(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await?;
        return Ok(());
    };
    server.write_all(&request.head_with_close()).await?;
    server.write_all(&request.raw_body).await?;
    server.flush().await?;

    let mut server = BufReader::new(server);
    let mut status = String::new();
    server.read_line(&mut status).await?;
    let mut head = status.into_bytes();
    loop {
        let mut line = String::new();
        if server.read_line(&mut line).await? == 0 || line == "\r\n" {
            break;
        }
        if !line.to_ascii_lowercase().starts_with("connection:") {
            head.extend_from_slice(line.as_bytes());
        }
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    if fault == Fault::LoseResponse {
        // Read the whole answer so the upstream finishes the call, then hang up.
        let mut sink = Vec::new();
        server.read_to_end(&mut sink).await?;
        return Ok(());
    }
    client.write_all(&head).await?;
    tokio::io::copy(&mut server, &mut client).await?;
    client.shutdown().await
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    /// The body as sent (chunked framing kept), for forwarding.
    raw_body: Vec<u8>,
    /// The body without framing, for reading the operation.
    body: Vec<u8>,
}

async fn read_request<R>(reader: &mut BufReader<R>) -> std::io::Result<Option<Request>>
where
    R: tokio::io::AsyncRead + Unpin,
{
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.trim_end().split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let (raw_body, body) = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        read_chunked(reader).await?
    } else {
        let length = header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await?;
        (body.clone(), body)
    };
    Ok(Some(Request {
        method,
        target,
        headers,
        raw_body,
        body,
    }))
}

async fn read_chunked<R>(reader: &mut BufReader<R>) -> std::io::Result<(Vec<u8>, Vec<u8>)>
where
    R: tokio::io::AsyncRead + Unpin,
{
    let mut raw = Vec::new();
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line).await?;
        raw.extend_from_slice(size_line.as_bytes());
        let size_hex = size_line.trim().split(';').next().unwrap_or("0");
        let size = usize::from_str_radix(size_hex, 16).unwrap_or(0);
        if size == 0 {
            // Trailers, then the empty line that ends the body.
            loop {
                let mut trailer = String::new();
                let n = reader.read_line(&mut trailer).await?;
                raw.extend_from_slice(trailer.as_bytes());
                if n == 0 || trailer == "\r\n" {
                    return Ok((raw, body));
                }
            }
        }
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).await?;
        raw.extend_from_slice(&chunk);
        body.extend_from_slice(&chunk[..size]);
    }
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn head_with_close(&self) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.target);
        for (name, value) in &self.headers {
            if !name.eq_ignore_ascii_case("connection") {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        head.push_str("Connection: close\r\n\r\n");
        head.into_bytes()
    }

    /// The service's signing name from `Authorization: AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/SERVICE/aws4_request`.
    fn service(&self) -> String {
        self.header("authorization")
            .and_then(|a| a.split("Credential=").nth(1))
            .and_then(|c| c.split('/').nth(3))
            .unwrap_or_default()
            .to_string()
    }

    fn operation(&self) -> Operation {
        let service = self.service();
        let (path, query) = self.target.split_once('?').unwrap_or((&self.target, ""));
        let form = String::from_utf8_lossy(&self.body).into_owned();
        let from_form = form_value(&form, "Action");
        let params = if from_form.is_some() || service == "route53" {
            form
        } else {
            String::new()
        };
        let named = self
            .header("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .map(str::to_string)
            .or(from_form)
            .or_else(|| form_value(query, "Action"));
        match named {
            Some(name) => Operation {
                mutating: MUTATING_PREFIXES.iter().any(|p| name.starts_with(p)),
                name,
                service,
                params,
            },
            None if service == "route53" => Operation {
                name: route53_operation(&self.method, path),
                mutating: !matches!(self.method.as_str(), "GET" | "HEAD"),
                service,
                params,
            },
            None => Operation {
                name: s3_operation(&self.method, path, query),
                mutating: !matches!(self.method.as_str(), "GET" | "HEAD"),
                service,
                params,
            },
        }
    }
}

fn form_value(form: &str, key: &str) -> Option<String> {
    form.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| v.to_string())
    })
}

/// The Route53 operation behind a REST request (`/2013-04-01/hostedzone/ID/rrset`...).
fn route53_operation(method: &str, path: &str) -> String {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').skip(1).collect();
    let name = match (method, parts.as_slice()) {
        ("POST", ["hostedzone"]) => "CreateHostedZone",
        ("GET", ["hostedzone"]) => "ListHostedZones",
        ("GET", ["hostedzonesbyname"]) => "ListHostedZonesByName",
        ("GET", ["hostedzone", _]) => "GetHostedZone",
        ("DELETE", ["hostedzone", _]) => "DeleteHostedZone",
        ("POST", ["hostedzone", _, "rrset"]) => "ChangeResourceRecordSets",
        ("GET", ["hostedzone", _, "rrset"]) => "ListResourceRecordSets",
        ("GET", ["change", _]) => "GetChange",
        ("POST", ["tags", _, _]) => "ChangeTagsForResource",
        ("GET", ["tags", _, _]) => "ListTagsForResource",
        ("POST", ["tags", _]) => "ListTagsForResources",
        _ => return format!("{method} {path}"),
    };
    name.to_string()
}

/// The S3 operation behind a path-style request, for the operations infra and these tests use.
fn s3_operation(method: &str, path: &str, query: &str) -> String {
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let bucket = segments.next().filter(|b| !b.is_empty());
    let key = segments.next().filter(|k| !k.is_empty());
    let sub = query
        .split('&')
        .map(|p| p.split('=').next().unwrap_or_default())
        .find(|k| {
            matches!(
                *k,
                "versioning"
                    | "encryption"
                    | "publicAccessBlock"
                    | "tagging"
                    | "policy"
                    | "ownershipControls"
                    | "lifecycle"
                    | "logging"
                    | "acl"
                    | "delete"
                    | "versions"
                    | "location"
                    | "list-type"
            )
        });
    let capitalized = |s: &str| {
        let mut c = s.chars();
        c.next()
            .map(|first| first.to_uppercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    };
    match (method, bucket, key, sub) {
        ("GET", None, _, _) => "ListBuckets".into(),
        ("PUT", Some(_), None, None) => "CreateBucket".into(),
        ("PUT", Some(_), Some(_), Some("tagging")) => "PutObjectTagging".into(),
        ("PUT", Some(_), Some(_), _) => "PutObject".into(),
        ("PUT", Some(_), None, Some("publicAccessBlock")) => "PutPublicAccessBlock".into(),
        ("PUT", Some(_), None, Some("lifecycle")) => "PutBucketLifecycleConfiguration".into(),
        ("PUT", Some(_), None, Some(s)) => format!("PutBucket{}", capitalized(s)),
        ("GET", Some(_), Some(_), _) => "GetObject".into(),
        ("GET", Some(_), None, Some("versions")) => "ListObjectVersions".into(),
        ("GET", Some(_), None, Some("list-type")) => "ListObjectsV2".into(),
        ("GET", Some(_), None, Some("publicAccessBlock")) => "GetPublicAccessBlock".into(),
        ("GET", Some(_), None, Some("lifecycle")) => "GetBucketLifecycleConfiguration".into(),
        ("GET", Some(_), None, Some(s)) => format!("GetBucket{}", capitalized(s)),
        ("GET", Some(_), None, None) => "ListObjects".into(),
        ("HEAD", Some(_), None, _) => "HeadBucket".into(),
        ("HEAD", Some(_), Some(_), _) => "HeadObject".into(),
        ("DELETE", Some(_), Some(_), _) => "DeleteObject".into(),
        ("DELETE", Some(_), None, Some("publicAccessBlock")) => "DeletePublicAccessBlock".into(),
        ("DELETE", Some(_), None, Some(s)) => format!("DeleteBucket{}", capitalized(s)),
        ("DELETE", Some(_), None, None) => "DeleteBucket".into(),
        ("POST", Some(_), None, Some("delete")) => "DeleteObjects".into(),
        _ => format!("{method} {path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_requests_are_named_like_the_api() {
        assert_eq!(s3_operation("PUT", "/b", ""), "CreateBucket");
        assert_eq!(
            route53_operation("POST", "/2013-04-01/hostedzone/Z1/rrset"),
            "ChangeResourceRecordSets"
        );
        assert_eq!(
            route53_operation("GET", "/2013-04-01/change/C1"),
            "GetChange"
        );
        assert_eq!(
            s3_operation("PUT", "/b", "versioning"),
            "PutBucketVersioning"
        );
        assert_eq!(
            s3_operation("PUT", "/b", "publicAccessBlock"),
            "PutPublicAccessBlock"
        );
        assert_eq!(
            s3_operation("GET", "/b", "encryption"),
            "GetBucketEncryption"
        );
        assert_eq!(
            s3_operation("GET", "/b", "list-type=2&prefix="),
            "ListObjectsV2"
        );
        assert_eq!(
            s3_operation("PUT", "/b/k/x.txt", "x-id=PutObject"),
            "PutObject"
        );
        assert_eq!(s3_operation("POST", "/b", "delete"), "DeleteObjects");
        assert_eq!(s3_operation("GET", "/b", "logging"), "GetBucketLogging");
        assert_eq!(
            s3_operation("GET", "/b", "lifecycle"),
            "GetBucketLifecycleConfiguration"
        );
        assert_eq!(s3_operation("DELETE", "/b", ""), "DeleteBucket");
        assert_eq!(s3_operation("GET", "/", ""), "ListBuckets");
    }

    #[test]
    fn forwards_and_records_query_json_and_s3_requests() {
        let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = upstream.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            for _ in 0..3 {
                let (mut stream, _) = upstream.accept().unwrap();
                let mut buffer = [0u8; 4096];
                let mut seen = Vec::new();
                while !String::from_utf8_lossy(&seen).contains("\r\n\r\n") {
                    let n = stream.read(&mut buffer).unwrap();
                    seen.extend_from_slice(&buffer[..n]);
                }
                stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok",
                    )
                    .unwrap();
            }
        });
        let proxy = CountingProxy::start(address);
        let send = |request: &str| {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
            stream.write_all(request.as_bytes()).unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).unwrap();
            response
        };
        let body = "Action=CreateVpc&Version=2016-11-15&CidrBlock=10.0.0.0%2F16";
        let response = send(&format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        assert!(response.contains("Connection: close"), "{response}");
        assert!(response.ends_with("ok"), "{response}");
        send("POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: CertificateManager.ListCertificates\r\nContent-Length: 2\r\n\r\n{}");
        send("GET /bucket?versioning HTTP/1.1\r\nHost: x\r\n\r\n");
        server.join().unwrap();
        let names: Vec<_> = proxy
            .operations()
            .into_iter()
            .map(|o| (o.name, o.mutating))
            .collect();
        assert_eq!(
            names,
            [
                ("CreateVpc".to_string(), true),
                ("ListCertificates".to_string(), false),
                ("GetBucketVersioning".to_string(), false),
            ]
        );
    }
}
