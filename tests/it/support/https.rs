//! HTTPS for the tests: a CA made at run time with `openssl`, a server certificate it signs for
//! `localhost` and 127.0.0.1, and the stand-in for the providers' key APIs
//! (`provider_api.py`, see its header for the documented answers it gives), stopped when
//! dropped. The keyclone child trusts the CA through `SSL_CERT_FILE` only when a test sets it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::require;

/// A CA and a server certificate it signed, in a temporary folder.
pub struct TestCa {
    pub dir: tempfile::TempDir,
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let bin = require("openssl", "openssl");
    let out = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestCa {
    /// A new CA (`name` in its subject) and a certificate for localhost/127.0.0.1 it signed.
    pub fn new(name: &str) -> TestCa {
        let dir = tempfile::Builder::new()
            .prefix("keyclone-test-ca-")
            .tempdir()
            .unwrap();
        make_in(dir.path(), name);
        let d = dir.path();
        TestCa {
            ca_cert: d.join("ca.pem"),
            cert: d.join("cert.pem"),
            key: d.join("key.pem"),
            dir,
        }
    }
}

/// Writes into `dir` a CA (`ca.pem`, `ca.key`; `name` in its subject) and a server certificate
/// it signed for localhost and 127.0.0.1 (`cert.pem`, `key.pem`): the one test CA of every
/// HTTPS stand-in (provider APIs, published host keys, the LFS server).
pub fn make_in(dir: &Path, name: &str) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let subj = format!("/CN=keyclone test CA {name}");
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", &subj];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca);
    let mut csr = vec!["req", "-subj", "/CN=localhost"];
    csr.extend(ec);
    csr.extend(["-keyout", "key.pem", "-out", "cert.csr"]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "cert.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

/// The running stand-in.
pub struct ProviderApi {
    child: Child,
    pub port: u16,
    pub ca: TestCa,
    log: PathBuf,
}

impl ProviderApi {
    /// Starts the stand-in with `config` (tokens, keys, mode, device states: see
    /// `provider_api.py`); cert, key, log and port file are filled in here.
    pub fn start(mut config: serde_json::Value) -> ProviderApi {
        let python = require("python3", "python3");
        let ca = TestCa::new("api");
        let d = ca.dir.path().to_path_buf();
        let log = d.join("requests.log");
        let port_file = d.join("port");
        std::fs::write(&log, "").unwrap();
        config["cert"] = ca.cert.to_str().unwrap().into();
        config["key"] = ca.key.to_str().unwrap().into();
        config["log"] = log.to_str().unwrap().into();
        config["port_file"] = port_file.to_str().unwrap().into();
        let cfg = d.join("config.json");
        std::fs::write(&cfg, config.to_string()).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/support/provider_api.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the provider API stand-in");
        let mut port = None;
        super::wait_until(
            "the provider API stand-in listens",
            Duration::from_secs(20),
            || {
                if let Ok(Some(_)) = child.try_wait() {
                    panic!("the provider API stand-in exited at start");
                }
                port = std::fs::read_to_string(&port_file)
                    .ok()
                    .and_then(|p| p.trim().parse().ok());
                port.is_some()
            },
        );
        ProviderApi {
            child,
            port: port.unwrap(),
            ca,
            log,
        }
    }

    /// `https://localhost:PORT`.
    pub fn origin(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// The requests it received, one JSON value each (no token in them).
    pub fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for ProviderApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
