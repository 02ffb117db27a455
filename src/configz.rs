//! The kubelet's own merged configuration, from its configz endpoint (the CIS audit method):
//! `GET /api/v1/nodes/NAME/proxy/configz` through `kubectl proxy` answers
//! `{"kubeletconfig": {...}}`; newer kubelets may add `apiVersion`/`kind`, so parse tolerantly.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The configuration object of a configz document (`kubeletconfig`, or the document itself).
fn kubelet_config(doc: &serde_json::Value) -> Result<&serde_json::Value, String> {
    let cfg = doc
        .get("kubeletconfig")
        .or_else(|| doc.get("kubeletConfig"))
        .unwrap_or(doc);
    if cfg.is_object() {
        Ok(cfg)
    } else {
        Err("the configz document has no kubeletconfig object".into())
    }
}

/// The value configz reports, and whether the key was present (absent: the default, true).
pub fn value_from_document(doc: &serde_json::Value) -> Result<(bool, bool), String> {
    let cfg = kubelet_config(doc)?;
    match cfg.get("makeIPTablesUtilChains") {
        Some(serde_json::Value::Bool(b)) => Ok((*b, true)),
        None | Some(serde_json::Value::Null) => Ok((true, false)),
        Some(other) => Err(format!(
            "makeIPTablesUtilChains is {other} in the configz document"
        )),
    }
}

/// GET an `http://` URL (as `kubectl proxy` serves it) and return the body.
pub fn fetch(url: &str, timeout: Duration) -> Result<String, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("{url}: only http:// URLs are supported (run kubectl proxy and use http://127.0.0.1:8001/api/v1/nodes/NAME/proxy/configz)")
    })?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let with_port = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("{url}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url}: no address"))?;
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{url}: {e}"))?;
    s.set_read_timeout(Some(timeout)).ok();
    s.set_write_timeout(Some(timeout)).ok();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nAccept: application/json\r\nConnection: close\r\nUser-Agent: kubelet-remediate/{}\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    )
    .map_err(|e| format!("{url}: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| format!("{url}: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{url}: not an HTTP response"))?;
    let status = head.lines().next().unwrap_or("");
    let code = status.split_whitespace().nth(1).unwrap_or("");
    if code != "200" {
        return Err(format!("{url}: {status}"));
    }
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    Ok(if chunked {
        dechunk(body)?
    } else {
        body.to_string()
    })
}

fn dechunk(mut body: &str) -> Result<String, String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").ok_or("truncated chunked body")?;
        let n = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size:?}"))?;
        if n == 0 {
            return Ok(out);
        }
        let chunk = rest.get(..n).ok_or("truncated chunk")?;
        out.push_str(chunk);
        body = rest[n..]
            .strip_prefix("\r\n")
            .ok_or("missing chunk terminator")?;
    }
}

/// Every table setting the configz document carries, as the kubelet serves them (§1.6 of
/// docs/kubelet-controls.md): the v1beta1 form with `omitempty`, so an absent key is the
/// type's zero; settings configz never shows (`--hostname-override`) are left out.
pub fn judgement(doc: &serde_json::Value) -> Result<crate::effective::Judgement, String> {
    use crate::effective::{Effective, Judgement, Layer};
    use crate::settings::{self, FlagType, Value};
    let cfg = kubelet_config(doc)?;
    let mut out = Vec::new();
    for (id, s) in settings::SETTINGS {
        let Some(key) = s.key else { continue };
        let found = key.iter().try_fold(cfg, |v, k| v.get(*k));
        let value = match found.filter(|v| !v.is_null()) {
            None => match s.ty {
                FlagType::Bool => Value::Bool(false),
                FlagType::Int32 | FlagType::Int64 => Value::Int(0),
                FlagType::Duration => Value::Duration(0),
                FlagType::String => Value::Str(String::new()),
                FlagType::StringSlice => Value::List(None),
                FlagType::MapStringBool => Value::Map(Default::default()),
            },
            Some(v) => settings::decode(s.ty, &from_json(v), true)
                .map_err(|why| format!("configz {}: {why}", key.join(".")))?
                .unwrap_or_else(|| s.default(true)),
        };
        out.push(Effective {
            id,
            setting: s,
            value: Ok(value),
            source: Layer::Default,
            places: Vec::new(),
        });
    }
    Ok(Judgement {
        settings: out,
        refused: None,
    })
}

/// A JSON value in the config readers' form.
fn from_json(v: &serde_json::Value) -> crate::config::Value {
    use crate::config::Value as C;
    match v {
        serde_json::Value::Null => C::Null,
        serde_json::Value::Bool(b) => C::Bool(*b),
        serde_json::Value::Number(n) => C::Num(n.to_string()),
        serde_json::Value::String(s) => C::Str(s.clone()),
        serde_json::Value::Array(a) => C::Seq(a.iter().map(from_json).collect()),
        serde_json::Value::Object(o) => {
            C::Map(o.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_old_and_new() {
        let old: serde_json::Value = serde_json::from_str(
            r#"{"kubeletconfig":{"makeIPTablesUtilChains":false,"port":10250}}"#,
        )
        .unwrap();
        assert_eq!(value_from_document(&old), Ok((false, true)));
        let new: serde_json::Value = serde_json::from_str(r#"{"kubeletconfig":{"apiVersion":"kubelet.config.k8s.io/v1beta1","kind":"KubeletConfiguration","makeIPTablesUtilChains":true}}"#).unwrap();
        assert_eq!(value_from_document(&new), Ok((true, true)));
        let absent: serde_json::Value = serde_json::from_str(r#"{"kubeletconfig":{}}"#).unwrap();
        assert_eq!(value_from_document(&absent), Ok((true, false)));
    }

    #[test]
    fn chunked_bodies() {
        assert_eq!(
            dechunk("5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n").unwrap(),
            "hello world"
        );
        assert!(dechunk("5\r\nhel").is_err());
    }
}
