//! `verify --configz`: the kubelet's own merged configuration, fetched over HTTP as `kubectl
//! proxy` serves it, from a small server on loopback answering recorded documents.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};

/// Serve one HTTP request on 127.0.0.1 with `response`, then stop; returns the URL.
fn serve_once(response: Vec<u8>) -> (String, std::thread::JoinHandle<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/api/v1/nodes/node-1/proxy/configz",
        l.local_addr().unwrap()
    );
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut req = String::new();
        let mut r = BufReader::new(s.try_clone().unwrap());
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                break;
            }
            req.push_str(&line);
        }
        s.write_all(&response).unwrap();
        req
    });
    (url, h)
}

fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn chunked(body: &str) -> Vec<u8> {
    let (a, b) = body.split_at(body.len() / 2);
    format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n", a.len(), b.len()).into_bytes()
}

fn verify(url: &str) -> Output {
    // GKE's tree has no running kubelet and no systemd: configz is the only source.
    Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
        .args(["verify", "--output", "json", "--configz", url, "--root"])
        .arg(repo().join("testdata/nodes/gke"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn recorded(name: &str) -> String {
    std::fs::read_to_string(repo().join("testdata/configz").join(name)).unwrap()
}

#[test]
fn configz_true_false_typed_and_chunked() {
    for (doc, wrap, code) in [
        ("kubelet-1.29-true.json", ok as fn(&str) -> Vec<u8>, 0),
        ("kubelet-1.29-false.json", ok, 2),
        ("kubelet-1.35-typed-true.json", ok, 0),
        ("kubelet-1.29-false.json", chunked, 2),
    ] {
        let (url, server) = serve_once(wrap(&recorded(doc)));
        let o = verify(&url);
        let req = server.join().unwrap();
        assert!(
            req.starts_with("GET /api/v1/nodes/node-1/proxy/configz HTTP/1.1"),
            "{req}"
        );
        assert_eq!(
            o.status.code(),
            Some(code),
            "{doc}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(j["result"] == "compliant", code == 0, "{doc}");
        assert_eq!(j["exit_code"], code, "{doc}");
        assert_eq!(j["checks"][0]["source"], format!("configz {url}"));
    }
}

#[test]
fn configz_errors_exit_1() {
    let (url, server) =
        serve_once(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n".to_vec());
    let o = verify(&url);
    server.join().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        j["checks"][0]["detail"].as_str().unwrap().contains("503"),
        "{j}"
    );
    let o = verify("https://127.0.0.1:1/configz");
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn no_process_and_no_configz_is_an_error() {
    let o = Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
        .args(["verify", "--root"])
        .arg(repo().join("testdata/nodes/gke"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no running kubelet found"));
}

/// With no running kubelet and no systemd to ask, the error says that systemd was never
/// reached and where it was looked for, not that the unit has no main process; --offline asks
/// for --configz.
#[test]
fn no_kubelet_found_says_whether_systemd_was_reached() {
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
            .arg("verify")
            .args(extra)
            .arg("--root")
            .arg(repo().join("testdata/nodes/gke"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("systemd was not reached"), "{err}");
    assert!(err.contains("run/systemd/private"), "{err}");
    assert!(!err.contains("has no main process"), "{err}");
    let o = run(&["--offline"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("pass --configz URL"), "{err}");
}

/// `verify --control`: every selected control judged on configz (the omitempty form: an absent
/// readOnlyPort is 0) and on the files; flag-only controls skip configz.
#[test]
fn configz_judges_every_selected_control() {
    let (url, server) = serve_once(ok(&recorded("kubelet-1.29-true.json")));
    let o = Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
        .args(["verify", "--output", "json", "--configz", &url, "--control"])
        .args([
            "read-only-port,anonymous-auth,tls-cipher-suites,hostname-override",
            "--root",
        ])
        .arg(repo().join("testdata/nodes/gke"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    server.join().unwrap();
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let checks = j["checks"].as_array().unwrap();
    let of = |source: &str, control: &str| {
        checks
            .iter()
            .find(|c| c["source"].as_str().unwrap().starts_with(source) && c["control"] == control)
            .cloned()
    };
    let cz = |c| of("configz", c).unwrap();
    assert_eq!(cz("read-only-port")["value"], true, "{j}");
    assert_eq!(cz("read-only-port")["detail"], "0");
    assert_eq!(cz("anonymous-auth")["value"], true);
    // No tlsCipherSuites in configz: Go's defaults, which the benchmark does not accept.
    assert_eq!(cz("tls-cipher-suites")["value"], false);
    assert!(of("configz", "hostname-override").is_none(), "{j}");
    assert!(of("the files", "hostname-override").is_some(), "{j}");
    // A control fails in a source: not compliant.
    assert_eq!(j["result"], "non-compliant");
    assert_eq!(o.status.code(), Some(2));
}
