//! The exporter's HTTP/1.1 front: a bounded request reader over `std::net`.
//!
//! Not a library: tiny_http 0.12 drained each request body on drop into
//! `vec![0; Content-Length]`, so one request declaring `Content-Length: 99999999999999`
//! aborted the whole exporter. Here a connection's head is read into a fixed
//! [`MAX_HEAD_BYTES`] buffer within one deadline, a pure function ([`answer`]) decides the
//! reply from those bytes, one response is written with `Connection: close`, and the
//! connection is closed. A request body is never read: a request that declares one is refused.
//! Requests are answered one at a time, so a scrape storm cannot read `/proc` in parallel; the
//! deadline bounds how long one silent or trickling client holds the others up.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The request line and headers must fit in this many bytes (answered 431 or 414 otherwise).
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// At most this many header fields (answered 431 otherwise).
pub const MAX_HEADERS: usize = 64;
/// The request target's longest form (answered 414 otherwise).
pub const MAX_TARGET_BYTES: usize = 2 * 1024;
/// After answering, what the client still sends is discarded for at most this long and this
/// many bytes: closing a socket with unread input resets the connection, and a reset can
/// destroy the answer before the client has read it.
const LINGER: Duration = Duration::from_millis(250);
const LINGER_BYTES: usize = 64 * 1024;

pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
const INDEX: &str = "<html><body><a href=\"/metrics\">/metrics</a></body></html>\n";

/// The statuses the exporter answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    ContentTooLarge,
    UriTooLong,
    HeaderFieldsTooLarge,
    VersionNotSupported,
}

impl Status {
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::RequestTimeout => 408,
            Status::ContentTooLarge => 413,
            Status::UriTooLong => 414,
            Status::HeaderFieldsTooLarge => 431,
            Status::VersionNotSupported => 505,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::RequestTimeout => "Request Timeout",
            Status::ContentTooLarge => "Content Too Large",
            Status::UriTooLong => "URI Too Long",
            Status::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            Status::VersionNotSupported => "HTTP Version Not Supported",
        }
    }

    fn text(self) -> &'static str {
        match self {
            Status::Ok => "ok\n",
            Status::BadRequest => "bad request\n",
            Status::NotFound => "not found: the metrics are at /metrics\n",
            Status::MethodNotAllowed => "only GET and HEAD\n",
            Status::RequestTimeout => "request head not received in time\n",
            Status::ContentTooLarge => "request bodies are not accepted\n",
            Status::UriTooLong => "request target too long\n",
            Status::HeaderFieldsTooLarge => "request head too large\n",
            Status::VersionNotSupported => "only HTTP/1.0 and HTTP/1.1\n",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Metrics,
    Index,
}

/// What to answer one request with. `head_only`: the request was HEAD, so the response has
/// the headers a GET would get and no body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Page { page: Page, head_only: bool },
    Refuse { status: Status, head_only: bool },
}

impl Answer {
    pub fn status(self) -> Status {
        match self {
            Answer::Page { .. } => Status::Ok,
            Answer::Refuse { status, .. } => status,
        }
    }
}

/// Lines ending in LF (one CR before it dropped), each with the offset just past its LF.
fn lines(buf: &[u8]) -> impl Iterator<Item = (&[u8], usize)> {
    memchr::memchr_iter(b'\n', buf).scan(0, move |start, lf| {
        let line = &buf[*start..lf];
        *start = lf + 1;
        Some((line.strip_suffix(b"\r").unwrap_or(line), lf + 1))
    })
}

/// The length of the request head at the start of `buf` (through the empty line that ends
/// it), once all of it has arrived. Empty lines before the request line are skipped (RFC 9112
/// §2.2). Stable under appending: the server reads a head in pieces and stops at the first
/// piece that completes it.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    let mut started = false;
    for (line, end) in lines(buf) {
        if !line.is_empty() {
            started = true;
        } else if started {
            return Some(end);
        }
    }
    None
}

/// Whether the server has read enough of a connection to answer it.
pub fn head_complete(buf: &[u8]) -> bool {
    buf.len() >= MAX_HEAD_BYTES || head_end(buf).is_some()
}

/// The answer to what a connection sent before the server stopped reading it (at most
/// [`MAX_HEAD_BYTES`] are looked at): a complete head is parsed and routed; a head that
/// outgrew the buffer is refused; otherwise the client stopped early: a timeout is 408, a
/// closed connection 400, and a connection that sent nothing but blank lines gets no answer.
pub fn answer(received: &[u8], timed_out: bool) -> Option<Answer> {
    let received = &received[..received.len().min(MAX_HEAD_BYTES)];
    if let Some(end) = head_end(received) {
        return Some(parse_head(&received[..end]));
    }
    if received.len() >= MAX_HEAD_BYTES {
        return Some(too_large(received));
    }
    if received.iter().all(|b| matches!(b, b'\r' | b'\n')) {
        return None;
    }
    let status = if timed_out {
        Status::RequestTimeout
    } else {
        Status::BadRequest
    };
    Some(refuse(status, received))
}

fn refuse(status: Status, request: &[u8]) -> Answer {
    Answer::Refuse {
        status,
        head_only: is_head(request),
    }
}

/// Whether the request (after any empty lines) is a HEAD: its response then carries no body.
fn is_head(request: &[u8]) -> bool {
    // Skip exactly what `head_end` counts as empty lines (LF or CR LF); a line of several
    // CRs is not empty there, so it is not skipped here either.
    let mut rest = request;
    while let Some(after) = rest
        .strip_prefix(b"\r\n")
        .or_else(|| rest.strip_prefix(b"\n"))
    {
        rest = after;
    }
    rest.starts_with(b"HEAD ")
}

/// A head that does not fit: the request line alone (414 if it looks like one), or the
/// headers (431, unless the request line is already wrong).
fn too_large(received: &[u8]) -> Answer {
    let mut line_start = 0;
    for (line, end) in lines(received) {
        if line.is_empty() {
            line_start = end;
            continue;
        }
        return match request_line(line) {
            Ok(_) => refuse(Status::HeaderFieldsTooLarge, received),
            Err(status) => refuse(status, received),
        };
    }
    let rest = &received[line_start..];
    let looks_like_request = memchr::memchr(b' ', rest).is_some_and(|i| is_token(&rest[..i]));
    let status = if looks_like_request {
        Status::UriTooLong
    } else {
        Status::BadRequest
    };
    refuse(status, received)
}

/// A request line that parsed: its method, and the path it asks for without query or fragment.
#[derive(Debug)]
struct RequestLine<'a> {
    method: &'a [u8],
    path: &'a [u8],
}

fn request_line(line: &[u8]) -> Result<RequestLine<'_>, Status> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Status::BadRequest);
    };
    if !is_token(method) {
        return Err(Status::BadRequest);
    }
    match version {
        b"HTTP/1.1" | b"HTTP/1.0" => {}
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(Status::VersionNotSupported)
        }
        _ => return Err(Status::BadRequest),
    }
    if target.len() > MAX_TARGET_BYTES {
        return Err(Status::UriTooLong);
    }
    if target.is_empty() || !target.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(Status::BadRequest);
    }
    let path = if target == b"*" && method == b"OPTIONS" {
        target
    } else {
        origin_path(target).ok_or(Status::BadRequest)?
    };
    Ok(RequestLine { method, path })
}

/// The path of an origin-form (`/metrics?x=1`) or absolute-form (`http://host/metrics`,
/// what proxies send) target, without query or fragment.
fn origin_path(target: &[u8]) -> Option<&[u8]> {
    if target.first() == Some(&b'/') {
        return Some(cut(target));
    }
    let lower = |n: usize| target.get(..n).map(<[u8]>::to_ascii_lowercase);
    let after_scheme = if lower(7).as_deref() == Some(b"http://") {
        &target[7..]
    } else if lower(8).as_deref() == Some(b"https://") {
        &target[8..]
    } else {
        return None;
    };
    let authority_end = after_scheme
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(after_scheme.len());
    if authority_end == 0 {
        return None;
    }
    let path = cut(&after_scheme[authority_end..]);
    Some(if path.is_empty() { b"/" } else { path })
}

fn cut(path: &[u8]) -> &[u8] {
    let end = path
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .unwrap_or(path.len());
    &path[..end]
}

/// RFC 9110 §5.6.2 `token`: method and header names.
fn is_token(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A header line as name and value (optional whitespace trimmed).
fn header(line: &[u8]) -> Result<(&[u8], &[u8]), Status> {
    // A line starting with whitespace continues the previous one (obsolete line folding);
    // RFC 9112 §5.2 lets a server refuse it.
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(Status::BadRequest);
    }
    let colon = memchr::memchr(b':', line).ok_or(Status::BadRequest)?;
    let name = &line[..colon];
    if !is_token(name) {
        return Err(Status::BadRequest);
    }
    let value = line[colon + 1..].trim_ascii();
    let field_byte = |&b: &u8| b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80;
    if !value.iter().all(field_byte) {
        return Err(Status::BadRequest);
    }
    Ok((name, value))
}

/// A `Content-Length` value: digits only; one too large for any real body is refused as such.
fn content_length(value: &[u8]) -> Result<u64, Status> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(Status::BadRequest);
    }
    value.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or(Status::ContentTooLarge)
    })
}

/// The answer to one complete request head: request line, then headers, then framing (a
/// request with a body is refused before its method or path matter, so no body is ever
/// waited for), then method, then path.
fn parse_head(head: &[u8]) -> Answer {
    let refuse = |status| refuse(status, head);
    let mut lines = lines(head)
        .map(|(line, _)| line)
        .skip_while(|l| l.is_empty());
    let request = match lines.next().map(request_line) {
        Some(Ok(r)) => r,
        Some(Err(status)) => return refuse(status),
        None => return refuse(Status::BadRequest),
    };
    let mut count = 0;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for line in lines.take_while(|l| !l.is_empty()) {
        count += 1;
        if count > MAX_HEADERS {
            return refuse(Status::HeaderFieldsTooLarge);
        }
        let (name, value) = match header(line) {
            Ok(h) => h,
            Err(status) => return refuse(status),
        };
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = match content_length(value) {
                Ok(n) => n,
                Err(status) => return refuse(status),
            };
            // Two different lengths make the message's end ambiguous (RFC 9112 §6.3).
            if length.is_some_and(|l| l != n) {
                return refuse(Status::BadRequest);
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = true;
        }
    }
    if chunked && length.is_some() {
        return refuse(Status::BadRequest);
    }
    if chunked || length.is_some_and(|n| n > 0) {
        return refuse(Status::ContentTooLarge);
    }
    let head_only = match request.method {
        b"GET" => false,
        b"HEAD" => true,
        _ => return refuse(Status::MethodNotAllowed),
    };
    match request.path {
        b"/metrics" => Answer::Page {
            page: Page::Metrics,
            head_only,
        },
        b"/" => Answer::Page {
            page: Page::Index,
            head_only,
        },
        _ => refuse(Status::NotFound),
    }
}

/// The bytes of the response to `answer`; `metrics` is called only for the metrics page
/// (HEAD included: its Content-Length is that of the body a GET would get).
pub fn render(answer: Answer, metrics: impl FnOnce() -> String) -> Vec<u8> {
    let (status, content_type, body, head_only) = match answer {
        Answer::Page {
            page: Page::Metrics,
            head_only,
        } => (Status::Ok, METRICS_CONTENT_TYPE, metrics(), head_only),
        Answer::Page {
            page: Page::Index,
            head_only,
        } => (
            Status::Ok,
            "text/html; charset=utf-8",
            INDEX.to_string(),
            head_only,
        ),
        Answer::Refuse { status, head_only } => (
            status,
            "text/plain; charset=utf-8",
            status.text().to_string(),
            head_only,
        ),
    };
    let mut out = Vec::with_capacity(256 + if head_only { 0 } else { body.len() });
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        status.code(),
        status.reason(),
        body.len()
    );
    if status == Status::MethodNotAllowed {
        out.extend_from_slice(b"Allow: GET, HEAD\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// Fuzzing entry: `data` as everything a client sent before it closed the connection (or went
/// silent), through the same framing, parsing, routing and rendering the server uses, with a
/// stand-in metrics text. No network, no `/proc`. Panics only if an invariant of the answer
/// breaks (a bug): the framing is stable under appending, every response is well-formed HTTP
/// with a Content-Length that matches its body, HEAD gets no body, only GET and HEAD get 200.
pub fn fuzz_http_request(data: &[u8]) {
    let received = &data[..data.len().min(MAX_HEAD_BYTES)];
    if let Some(end) = head_end(received) {
        assert_eq!(
            head_end(&received[..end]),
            Some(end),
            "framing must be stable"
        );
        assert_eq!(
            head_end(&received[..end - 1]),
            None,
            "framing must stop early"
        );
    }
    for timed_out in [false, true] {
        let Some(a) = answer(received, timed_out) else {
            assert!(received.iter().all(|b| matches!(b, b'\r' | b'\n')));
            continue;
        };
        if head_complete(received) {
            assert_ne!(a.status(), Status::RequestTimeout);
        }
        let metrics = "ramscope_targets 0\n";
        let response = render(a, || metrics.to_string());
        check_response(received, a, &response, metrics.len());
    }
}

fn check_response(request: &[u8], a: Answer, response: &[u8], metrics_len: usize) {
    let end = memchr::memmem::find(response, b"\r\n\r\n").expect("a head") + 4;
    let head = std::str::from_utf8(&response[..end]).expect("an ASCII head");
    let status = format!("HTTP/1.1 {} ", a.status().code());
    assert!(head.starts_with(&status), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.parse().ok())
        .expect("a Content-Length");
    let (page, head_only) = match a {
        Answer::Page { page, head_only } => (Some(page), head_only),
        Answer::Refuse { head_only, .. } => (None, head_only),
    };
    assert_eq!(head_only, is_head(request));
    let body = &response[end..];
    assert_eq!(body.len(), if head_only { 0 } else { length });
    if page == Some(Page::Metrics) {
        assert_eq!(length, metrics_len);
    }
    if page.is_some() {
        let start = request.iter().position(|b| !matches!(b, b'\r' | b'\n'));
        let request = &request[start.unwrap_or(0)..];
        assert!(request.starts_with(b"GET ") || request.starts_with(b"HEAD "));
    }
}

/// Answers one connection: reads its head until complete, full, closed or `timeout` after it
/// was accepted, writes the answer, and closes.
pub fn handle(mut stream: TcpStream, timeout: Duration, metrics: impl FnOnce() -> String) {
    let mut buf = [0u8; MAX_HEAD_BYTES];
    let (len, timed_out) = read_head(&mut stream, &mut buf, Instant::now() + timeout);
    let Some(a) = answer(&buf[..len], timed_out) else {
        return;
    };
    let response = render(a, metrics);
    // A client that does not read its answer is dropped after `timeout` too.
    if stream.set_write_timeout(Some(timeout)).is_err() || stream.write_all(&response).is_err() {
        return;
    }
    linger(&mut stream);
}

/// Reads into `buf` until the head is complete or the buffer full, the client closes, or
/// `deadline` passes (one deadline for the whole head, so trickling bytes cannot extend it).
/// Returns the bytes read and whether the deadline ended it.
fn read_head(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> (usize, bool) {
    let mut len = 0;
    while !head_complete(&buf[..len]) && len < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return (len, true);
        }
        match stream.read(&mut buf[len..]) {
            Ok(0) => return (len, false),
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return (len, true)
            }
            Err(_) => return (len, false),
        }
    }
    (len, false)
}

/// Ends the response, then discards what the client still sends (a refused body, a pipelined
/// request) until it closes, bounded by [`LINGER`] and [`LINGER_BYTES`], so the close that
/// follows does not reset a connection whose answer is still unread.
fn linger(stream: &mut TcpStream) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    let mut discarded = 0;
    while discarded < LINGER_BYTES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(n) => discarded += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Answers connections one at a time, forever.
pub fn serve(
    listener: &TcpListener,
    request_timeout: Duration,
    mut metrics: impl FnMut() -> String,
) -> ! {
    loop {
        match listener.accept() {
            Ok((stream, _)) => handle(stream, request_timeout, &mut metrics),
            // Out of file descriptors, or a connection aborted before it was accepted: a later
            // accept can succeed, and the pause keeps a lasting failure from spinning a core.
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("{spec:?} is not HOST:PORT (examples: 127.0.0.1:9464, localhost:9464, [::1]:9464)")]
    Syntax { spec: String },
    #[error("cannot resolve {spec}: {source}")]
    Resolve { spec: String, source: io::Error },
    #[error("{spec} resolves to no address")]
    NoAddress { spec: String },
    #[error("refusing to listen on {addr}{via}: not a loopback address (metrics name processes and command lines); pass --allow-remote to serve beyond this machine")]
    NotLoopback { addr: SocketAddr, via: String },
    #[error("cannot listen on {spec}: {source}")]
    Bind { spec: String, source: io::Error },
}

/// `--listen`'s syntax, checked before anything is resolved: HOST:PORT, where HOST is an IPv4
/// address, a host name, or an IPv6 address in brackets.
pub fn listen_spec(spec: &str) -> Result<String, ListenError> {
    let syntax = || ListenError::Syntax { spec: spec.into() };
    let (host, port) = spec.rsplit_once(':').ok_or_else(syntax)?;
    port.parse::<u16>().map_err(|_| syntax())?;
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    let ok = match bare {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        }
    };
    if ok {
        Ok(spec.to_string())
    } else {
        Err(syntax())
    }
}

/// Every address `spec` (HOST:PORT) resolves to, IPv4 first. Each must be loopback unless
/// `allow_remote`: a name is checked by what it resolves to, not by how it is spelled.
pub fn resolve_listen(spec: &str, allow_remote: bool) -> Result<Vec<SocketAddr>, ListenError> {
    listen_spec(spec)?;
    let mut addrs: Vec<SocketAddr> = spec
        .to_socket_addrs()
        .map_err(|source| ListenError::Resolve {
            spec: spec.into(),
            source,
        })?
        .collect();
    addrs.sort_by_key(SocketAddr::is_ipv6);
    addrs.dedup();
    if addrs.is_empty() {
        return Err(ListenError::NoAddress { spec: spec.into() });
    }
    if !allow_remote {
        if let Some(&addr) = addrs.iter().find(|a| !a.ip().is_loopback()) {
            let literal = spec.parse::<SocketAddr>().is_ok();
            let via = if literal {
                String::new()
            } else {
                format!(" ({spec} resolves to it)")
            };
            return Err(ListenError::NotLoopback { addr, via });
        }
    }
    Ok(addrs)
}

/// Listens on the first of `addrs` that can be bound (a name's IPv4 address before its IPv6
/// one, as Prometheus targets usually name 127.0.0.1).
pub fn bind(spec: &str, addrs: &[SocketAddr]) -> Result<TcpListener, ListenError> {
    let mut last = io::Error::new(io::ErrorKind::AddrNotAvailable, "no address");
    for addr in addrs {
        match TcpListener::bind(addr) {
            Ok(l) => return Ok(l),
            Err(e) => last = e,
        }
    }
    Err(ListenError::Bind {
        spec: spec.into(),
        source: last,
    })
}

#[cfg(test)]
mod tests;
