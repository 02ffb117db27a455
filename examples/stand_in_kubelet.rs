//! A stand-in kubelet for the restart tests: it loads its flags, `--config` and `--config-dir`
//! the way the kubelet does, publishes what it loaded, and exits non-zero where the kubelet
//! would refuse to start. Deliberately separate from the planner's evaluator (its own flag loop,
//! serde_yaml_ng and serde_json instead of the span-keeping parsers), so a test of the tool is
//! not the planner checking itself.
//!
//! Publishes `/run/stand-in-kubelet/configz.json` as `{"kubeletconfig": {...}}` (the shape of
//! the kubelet's configz endpoint), serves `/healthz` ("ok") on its healthzBindAddress and
//! healthzPort (unless `STAND_IN_NO_HEALTHZ` is set: a kubelet that runs but does not serve),
//! then waits to be stopped.

use serde_json::{Map, Value, json};
use std::path::Path;

const FLAG: &str = "make-iptables-util-chains";
const KEY: &str = "makeIPTablesUtilChains";

fn refuse(msg: String) -> ! {
    eprintln!("stand-in-kubelet: {msg}");
    std::process::exit(1);
}

/// strconv.ParseBool
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A decoded config document. YAML is read by a YAML 1.2 library, so the YAML 1.1 booleans the
/// kubelet's yaml.v2 accepts (`no`, `off`, `y`, ...) are mapped back for our key; a quoted
/// "true"/"false" stays a string, which the kubelet refuses.
fn load(path: &Path) -> Map<String, Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| refuse(format!("{}: {e}", path.display())));
    let mut v: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(&text).unwrap_or_else(|e| refuse(format!("{}: {e}", path.display())))
    } else {
        serde_yaml_ng::from_str(&text)
            .unwrap_or_else(|e| refuse(format!("{}: {e}", path.display())))
    };
    if let Some(Value::String(s)) = v.get(KEY) {
        let b = match s.as_str() {
            "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => true,
            "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => false,
            other => refuse(format!(
                "{}: cannot unmarshal string \"{other}\" into bool",
                path.display()
            )),
        };
        v[KEY] = Value::Bool(b);
    }
    match v {
        Value::Object(m) => m,
        _ => refuse(format!("{}: not a mapping", path.display())),
    }
}

fn merge(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (k, v) in patch {
        match v {
            Value::Null => {
                target.remove(&k);
            }
            Value::Object(p) => {
                let mut t = match target.remove(&k) {
                    Some(Value::Object(t)) => t,
                    _ => Map::new(),
                };
                merge(&mut t, p);
                target.insert(k, Value::Object(t));
            }
            other => {
                target.insert(k, other);
            }
        }
    }
}

fn dropins(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            dropins(&p, out);
        } else if p.extension().is_some_and(|x| x == "conf") {
            out.push(p);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut flag, mut config, mut config_dir) = (None, None, None);
    let (mut healthz_port, mut healthz_address): (Option<String>, Option<String>) = (None, None);
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let Some(body) = a.strip_prefix("--") else {
            refuse(format!("unknown command \"{a}\""));
        };
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n.replace('_', "-"), Some(v.to_string())),
            None => (body.replace('_', "-"), None),
        };
        let next_is_value = args.get(i + 1).is_some_and(|n| !n.starts_with('-'));
        if name == FLAG {
            flag = Some(match value {
                Some(v) => parse_bool(&v)
                    .unwrap_or_else(|| refuse(format!("invalid argument \"{v}\" for --{FLAG}"))),
                None if next_is_value => refuse(format!("unknown command \"{}\"", args[i + 1])),
                None => true,
            });
        } else {
            let v = match value {
                Some(v) => Some(v),
                None if next_is_value => {
                    i += 1;
                    Some(args[i].clone())
                }
                None => None,
            };
            match name.as_str() {
                "config" => config = v,
                "config-dir" => config_dir = v,
                "healthz-port" => healthz_port = v,
                "healthz-bind-address" => healthz_address = v,
                _ => {}
            }
        }
        i += 1;
    }
    let mut merged = Map::new();
    if let Some(c) = &config {
        merged = load(Path::new(c));
    }
    if let Some(d) = &config_dir {
        let mut files = Vec::new();
        dropins(Path::new(d), &mut files);
        for f in files {
            merge(&mut merged, load(&f));
        }
    }
    let from_file = match merged.get(KEY) {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => refuse(format!("{KEY}: cannot unmarshal {other} into bool")),
    };
    let value = flag.or(from_file).unwrap_or(true);
    merged.insert(KEY.into(), Value::Bool(value));
    let out = json!({"kubeletconfig": merged, "argv": args});
    std::fs::create_dir_all("/run/stand-in-kubelet")
        .unwrap_or_else(|e| refuse(format!("/run/stand-in-kubelet: {e}")));
    std::fs::write("/run/stand-in-kubelet/configz.json", out.to_string() + "\n")
        .unwrap_or_else(|e| refuse(format!("/run/stand-in-kubelet/configz.json: {e}")));
    let port = healthz_port
        .and_then(|p| p.parse::<u16>().ok())
        .or_else(|| {
            merged
                .get("healthzPort")
                .and_then(Value::as_u64)
                .map(|p| p as u16)
        })
        .unwrap_or(10248);
    let address = healthz_address
        .or_else(|| {
            merged
                .get("healthzBindAddress")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "127.0.0.1".into());
    if port != 0 && std::env::var_os("STAND_IN_NO_HEALTHZ").is_none() {
        // Another sandbox may hold the port: then this one simply does not serve.
        if let Ok(l) = std::net::TcpListener::bind((address.as_str(), port)) {
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                for mut s in l.incoming().flatten() {
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf);
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok");
                }
            });
        }
    }
    // Test knob: a kubelet that starts with the new settings and then dies (the settle window
    // must notice it and the tool roll back).
    if value && std::env::var_os("STAND_IN_CRASH_WHEN_TRUE").is_some() {
        std::thread::sleep(std::time::Duration::from_millis(300));
        refuse("crashing after start, as asked by STAND_IN_CRASH_WHEN_TRUE".into());
    }
    loop {
        std::thread::park();
    }
}
