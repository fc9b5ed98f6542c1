//! A local Lambda Runtime API, as the real one speaks it (HTTP/1.1 with keep-alive, no Nagle
//! delay), to run a function's own binary: the tests assert the exact reply it sends back, and
//! the benchmark measures its CPU per event.
//!
//! ```no_run
//! let api = lambda_harness::RuntimeApi::start().unwrap();
//! let mut function = lambda_harness::Function::spawn("target/debug/results-handler", &api, &[]).unwrap();
//! let reply = api.invoke(&serde_json::json!({"Records": []}), std::time::Duration::from_secs(30));
//! function.stop();
//! ```

use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What the function answered to one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `POST …/response`: the body, parsed as JSON when it is.
    Response(Value),
    /// `POST …/error`: the error body.
    Error(Value),
}

#[derive(Default)]
struct State {
    queue: VecDeque<(String, Value)>,
    replies: HashMap<String, Reply>,
    init_error: Option<Value>,
    /// When the function first asked for work (its init is over).
    first_next: Option<Instant>,
    next_calls: u64,
    /// Connections the function opened: one for its whole life when it keeps the connection.
    connections: u64,
    sequence: u64,
}

/// The Runtime API on a loopback port.
pub struct RuntimeApi {
    address: String,
    shared: Arc<(Mutex<State>, Condvar)>,
    /// How long each invocation may run (its deadline header).
    pub timeout: Duration,
}

impl RuntimeApi {
    pub fn start() -> std::io::Result<RuntimeApi> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?.to_string();
        let shared: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let api = RuntimeApi {
            address,
            shared: shared.clone(),
            timeout: Duration::from_secs(120),
        };
        let deadline_ms = api.timeout.as_millis() as u64;
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                if let Ok(mut state) = shared.0.lock() {
                    state.connections += 1;
                }
                std::thread::spawn(move || {
                    // A dropped connection ends its thread; the function opens another.
                    let _ = serve(stream, &shared, deadline_ms);
                });
            }
        });
        Ok(api)
    }

    /// `host:port`, for `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Hands the function one event and waits for its reply.
    pub fn invoke(&self, event: &Value, wait: Duration) -> Result<Reply, String> {
        let (lock, signal) = &*self.shared;
        let id = {
            let mut state = lock.lock().map_err(|e| e.to_string())?;
            state.sequence += 1;
            let id = format!("00000000-0000-4000-8000-{:012}", state.sequence);
            state.queue.push_back((id.clone(), event.clone()));
            signal.notify_all();
            id
        };
        let started = Instant::now();
        let mut state = lock.lock().map_err(|e| e.to_string())?;
        loop {
            if let Some(reply) = state.replies.remove(&id) {
                return Ok(reply);
            }
            if let Some(error) = &state.init_error {
                return Err(format!("the function failed to start: {error}"));
            }
            let left = wait
                .checked_sub(started.elapsed())
                .ok_or_else(|| format!("no reply within {wait:?}"))?;
            state = signal
                .wait_timeout(state, left)
                .map_err(|e| e.to_string())?
                .0;
        }
    }

    /// Connections opened to this Runtime API so far.
    pub fn connections(&self) -> u64 {
        self.shared.0.lock().map_or(0, |state| state.connections)
    }

    /// When the function first asked for an event: the end of its init.
    pub fn first_next(&self) -> Option<Instant> {
        self.shared.0.lock().ok()?.first_next
    }

    /// Waits until the function asks for its first event (its init is done).
    pub fn wait_ready(&self, wait: Duration) -> Result<Instant, String> {
        let started = Instant::now();
        loop {
            {
                let state = self.shared.0.lock().map_err(|e| e.to_string())?;
                if let Some(at) = state.first_next {
                    return Ok(at);
                }
                if let Some(error) = &state.init_error {
                    return Err(format!("the function failed to start: {error}"));
                }
            }
            if started.elapsed() > wait {
                return Err(format!("the function did not ask for work within {wait:?}"));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// One connection: requests one after another (keep-alive).
fn serve(
    stream: TcpStream,
    shared: &Arc<(Mutex<State>, Condvar)>,
    deadline_ms: u64,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let body: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        let (lock, signal) = &**shared;
        let reply: String;
        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            let (id, event) = {
                let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
                state.next_calls += 1;
                state.first_next.get_or_insert_with(Instant::now);
                signal.notify_all();
                loop {
                    if let Some(next) = state.queue.pop_front() {
                        break next;
                    }
                    state = signal.wait(state).unwrap_or_else(|p| p.into_inner());
                }
            };
            let deadline = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64
                + deadline_ms;
            let payload = event.to_string();
            reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: {id}\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:tarem-test\r\nLambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000;Sampled=0\r\nContent-Length: {}\r\n\r\n{payload}",
                payload.len()
            );
        } else {
            {
                let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
                let segments: Vec<&str> = path.split('/').collect();
                if path.ends_with("/response") && segments.len() >= 2 {
                    let id = segments[segments.len() - 2].to_owned();
                    state.replies.insert(id, Reply::Response(body));
                } else if path.ends_with("/init/error") {
                    state.init_error = Some(body);
                } else if path.ends_with("/error") && segments.len() >= 2 {
                    let id = segments[segments.len() - 2].to_owned();
                    state.replies.insert(id, Reply::Error(body));
                }
                signal.notify_all();
            }
            // Lambda's answer, body included, its length counted: a length one byte too long
            // (as this once said) leaves the function waiting for the missing byte, so it drops
            // the connection and opens a new one for every invocation.
            let accepted = r#"{"status":"OK"}"#;
            reply = format!(
                "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{accepted}",
                accepted.len()
            );
        }
        // One write per reply, as Lambda's own (buffered) server sends a small one: written piece
        // by piece, the function read each reply in fragments, a read and a wake-up per piece.
        writer.write_all(reply.as_bytes())?;
    }
}

/// A function binary running against a [`RuntimeApi`].
pub struct Function {
    child: Child,
    pub spawned_at: Instant,
}

impl Function {
    /// Starts `binary` with the environment Lambda gives a function, plus `env`.
    pub fn spawn(binary: &str, api: &RuntimeApi, env: &[(&str, &str)]) -> std::io::Result<Self> {
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", "tarem-test")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/tarem-test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        if std::env::var_os("LAMBDA_HARNESS_LOGS").is_some() {
            command.stderr(Stdio::inherit()).stdout(Stdio::inherit());
        }
        let spawned_at = Instant::now();
        Ok(Function {
            child: command.spawn()?,
            spawned_at,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        self.stop();
    }
}
