//! `outdial serve` as the tests run it: the real binary on a service file in a temporary
//! directory (the API on a port it picks itself), tokens from `outdial token create`, and a
//! JSON client.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_outdial");

pub struct Server {
    pub child: Child,
    pub base: String,
    pub dir: tempfile::TempDir,
    /// The store: a SQLite file in `dir`, or a PostgreSQL URL.
    pub db: String,
}

impl Server {
    pub fn start(trunk: &str) -> Server {
        Self::start_in(tempfile::tempdir().unwrap(), trunk)
    }

    /// `outdial serve` on the database in `dir` (a restart keeps it).
    pub fn start_in(dir: tempfile::TempDir, trunk: &str) -> Server {
        Self::start_with(dir, trunk, "")
    }

    /// … with `extra` lines at the top of the service file.
    pub fn start_with(dir: tempfile::TempDir, trunk: &str, extra: &str) -> Server {
        let db = dir.path().join("outdial.db").display().to_string();
        Self::start_on(dir, trunk, extra, db)
    }

    /// … on the store at `db` (a file path or a `postgres://` URL). The API binds port 0 and
    /// the port it got is read from serve's own startup line (no port picked beforehand that
    /// another test could take meanwhile).
    pub fn start_on(dir: tempfile::TempDir, trunk: &str, extra: &str, db: String) -> Server {
        std::fs::write(
            dir.path().join("outdial.toml"),
            format!(
                "{extra}\nlisten = \"127.0.0.1:0\"\ndb = \"{}\"\nshutdown_grace = 10\n\
                 [campaign_defaults]\ntrunk = \"{trunk}\"\nlocal_address = \"127.0.0.1:0\"\n\
                 hold_time = 0.3\nring_timeout = 5\n[campaign_defaults.amd]\nprofile = \"off\"\n",
                db
            ),
        )
        .unwrap();
        let log = dir.path().join("serve.log");
        let mut child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(dir.path().join("outdial.toml"))
            .env(
                "OUTDIAL_LOG",
                "outdial::service=debug,outdial::campaign=debug,outdial=info",
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("outdial serve starts");
        let t0 = Instant::now();
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let port = text
                .split("API on http://127.0.0.1:")
                .nth(1)
                .and_then(|r| r.split('/').next())
                .and_then(|p| p.parse::<u16>().ok());
            if let Some(port) = port
                && health_ok(port)
            {
                return Server {
                    child,
                    base: format!("http://127.0.0.1:{port}"),
                    dir,
                    db,
                };
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "serve exited at start; its log:\n{text}"
            );
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "serve never answered; its log:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// An API client with a new admin token.
    pub fn admin(&self) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: self.base.clone(),
            token: self.token("admin", None),
        }
    }

    pub fn token(&self, role: &str, agent: Option<&str>) -> String {
        let mut c = Command::new(BIN);
        c.args(["token", "create", "--role", role, "--db", &self.db]);
        if let Some(a) = agent {
            c.args(["--agent", a]);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// SIGTERM, and the exit status.
    pub fn stop(self) -> Option<i32> {
        self.stop_keep().0
    }

    /// SIGTERM; the exit status and the directory (database) to start again in.
    pub fn stop_keep(mut self) -> (Option<i32>, tempfile::TempDir) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(20) {
            if let Some(s) = self.child.try_wait().unwrap() {
                return (s.code(), self.take_dir());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        eprintln!(
            "serve did not stop; its log:\n{}",
            std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
        );
        (None, self.take_dir())
    }

    /// The directory, leaving an empty one behind for `Drop`.
    fn take_dir(&mut self) -> tempfile::TempDir {
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }
}

/// A test that fails before `stop` leaves no `outdial serve` behind.
impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// True when an outdial API answers `GET /v1/health` with 200 on `port` (a plain HTTP/1.0
/// exchange, so the check needs no runtime).
pub fn health_ok(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
    if c.write_all(b"GET /v1/health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 64];
    let n = c.read(&mut buf).unwrap_or(0);
    buf[..n].starts_with(b"HTTP/1.1 200") || buf[..n].starts_with(b"HTTP/1.0 200")
}

pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Api {
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.base);
        let mut r = match method {
            "GET" => self.http.get(url),
            "POST" => self.http.post(url),
            "PUT" => self.http.put(url),
            "DELETE" => self.http.delete(url),
            _ => unreachable!(),
        };
        if !self.token.is_empty() {
            r = r.bearer_auth(&self.token);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Polls campaign `id` until it is `completed` (panics after `within`).
    pub async fn until_completed(&self, id: i64, within: Duration) {
        let t0 = Instant::now();
        loop {
            let (_, c) = self.call("GET", &format!("/v1/campaigns/{id}"), None).await;
            if c["state"] == "completed" {
                return;
            }
            assert!(t0.elapsed() < within, "campaign {id} never completed: {c}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn as_role(&self, token: &str) -> Api {
        Api {
            http: self.http.clone(),
            base: self.base.clone(),
            token: token.to_string(),
        }
    }
}
