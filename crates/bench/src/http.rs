//! Just enough HTTP/1.1 for the bench's two local servers: a counting proxy in front of moto
//! (DynamoDB) and a stub answering the SSM, Tagging and SQS calls moto does not serve. Both keep
//! the function's connection alive, as AWS does, so its CPU is not spent reconnecting.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// Calls seen, by `X-Amz-Target` (the operation, for the JSON protocols all these speak).
pub type Counts = Arc<Mutex<BTreeMap<String, u64>>>;

pub struct Message {
    pub start_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn write_to(&self, out: &mut impl Write) -> std::io::Result<()> {
        let mut head = format!("{}\r\n", self.start_line);
        for (name, value) in &self.headers {
            if !["content-length", "transfer-encoding", "connection"]
                .contains(&name.to_ascii_lowercase().as_str())
            {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", self.body.len()));
        // One write, as a server answers a small response: the function reads it in one go.
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        out.write_all(&bytes)?;
        out.flush()
    }
}

/// Reads one message; `None` at a clean end of the connection. A body without a length runs to
/// the end of the connection (upstream answers sent with `Connection: close`).
pub fn read_message(reader: &mut impl BufRead) -> std::io::Result<Option<Message>> {
    let mut start_line = String::new();
    if reader.read_line(&mut start_line)? == 0 {
        return Ok(None);
    }
    let mut headers = vec![];
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let mut message = Message {
        start_line: start_line.trim_end().to_owned(),
        headers,
        body: vec![],
    };
    if let Some(length) = message.header("content-length") {
        let length: usize = length.parse().unwrap_or(0);
        message.body.resize(length, 0);
        reader.read_exact(&mut message.body)?;
    } else if message
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            message.body.extend_from_slice(&chunk[..size]);
        }
    } else if message.start_line.starts_with("HTTP/") {
        reader.read_to_end(&mut message.body)?;
    }
    Ok(Some(message))
}

fn count(counts: &Counts, request: &Message) {
    let target = request
        .header("x-amz-target")
        .map(|t| t.rsplit('.').next().unwrap_or(t).to_owned())
        .unwrap_or_else(|| "(no target)".into());
    *counts.lock().unwrap().entry(target).or_default() += 1;
}

/// Serves each connection on its own thread with `serve`, which answers one request.
fn listen(
    serve: impl Fn(&Message) -> std::io::Result<Message> + Send + Sync + 'static,
    counts: Counts,
) -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = format!("http://{}", listener.local_addr()?);
    let serve = Arc::new(serve);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (serve, counts) = (serve.clone(), counts.clone());
            // Connections opened: with keep-alive, a handful per function, not one per call.
            *counts
                .lock()
                .unwrap()
                .entry("(connections)".into())
                .or_default() += 1;
            std::thread::spawn(move || -> std::io::Result<()> {
                stream.set_nodelay(true)?;
                let mut writer = stream.try_clone()?;
                let mut reader = BufReader::new(stream);
                while let Some(request) = read_message(&mut reader)? {
                    count(&counts, &request);
                    serve(&request)?.write_to(&mut writer)?;
                }
                Ok(())
            });
        }
    });
    Ok(address)
}

/// A proxy to `upstream` (`http://host:port`) that counts the calls it forwards.
pub fn counting_proxy(upstream: &str, counts: Counts) -> std::io::Result<String> {
    let upstream = upstream.trim_start_matches("http://").to_owned();
    listen(
        move |request| {
            let mut connection = TcpStream::connect(&upstream)?;
            let mut forwarded = Message {
                start_line: request.start_line.clone(),
                headers: request.headers.clone(),
                body: request.body.clone(),
            };
            forwarded
                .headers
                .push(("Connection".into(), "close".into()));
            forwarded.write_to(&mut connection)?;
            read_message(&mut BufReader::new(connection))?
                .ok_or_else(|| std::io::Error::other("upstream closed without answering"))
        },
        counts,
    )
}

/// A server answering every request with `answer(target, request)` as JSON.
pub fn json_stub(
    answer: impl Fn(&str, &Message) -> serde_json::Value + Send + Sync + 'static,
    counts: Counts,
) -> std::io::Result<String> {
    listen(
        move |request| {
            let target = request.header("x-amz-target").unwrap_or_default();
            let body = answer(target, request).to_string().into_bytes();
            Ok(Message {
                start_line: "HTTP/1.1 200 OK".into(),
                headers: vec![
                    ("Content-Type".into(), "application/x-amz-json-1.1".into()),
                    (
                        "x-amzn-RequestId".into(),
                        "00000000-0000-4000-8000-000000000000".into(),
                    ),
                ],
                body,
            })
        },
        counts,
    )
}
