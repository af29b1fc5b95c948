//! A local HTTPS stand-in for the providers' published host-key endpoints (`meta_server.py`,
//! Python's standard library), with a CA made at run time by the real `openssl`: a test points
//! `SSL_CERT_FILE` at [`MetaServer::ca`] for the keyclone child process only, so keyclone's
//! one HTTPS client verifies the stand-in as it would verify api.github.com against the system
//! roots. Without it, the certificate is untrusted.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::require;

/// A running stand-in, stopped on drop.
pub struct MetaServer {
    child: Child,
    pub port: u16,
    /// The CA certificate that signed the server's certificate (for `SSL_CERT_FILE`).
    pub ca: PathBuf,
    routes: PathBuf,
    _dir: tempfile::TempDir,
}

impl MetaServer {
    /// Starts the server with no routes (every path a 404).
    pub fn start() -> MetaServer {
        let dir = tempfile::Builder::new()
            .prefix("keyclone-meta-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        super::https::make_in(d, "meta");
        let routes = d.join("routes.json");
        std::fs::write(&routes, "{}").unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/support/meta_server.py");
        let mut child = Command::new(require("python3", "python3"))
            .arg(script)
            .arg(d.join("cert.pem"))
            .arg(d.join("key.pem"))
            .arg(&routes)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("meta_server.py printed {line:?}, not its port"));
        MetaServer {
            child,
            port,
            ca: d.join("ca.pem"),
            routes,
            _dir: dir,
        }
    }

    /// `https://127.0.0.1:PORT/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// Sets every route: `(path, status, content type, body)`, and redirects as `location`.
    pub fn routes(&self, routes: &[(&str, u16, &str, &str)], redirects: &[(&str, u16, &str)]) {
        let mut m = serde_json::Map::new();
        for (path, status, ctype, body) in routes {
            m.insert(
                (*path).to_owned(),
                serde_json::json!({"status": status, "type": ctype, "body": body}),
            );
        }
        for (path, status, location) in redirects {
            m.insert(
                (*path).to_owned(),
                serde_json::json!({"status": status, "location": location}),
            );
        }
        std::fs::write(&self.routes, serde_json::Value::Object(m).to_string()).unwrap();
    }
}

impl Drop for MetaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
