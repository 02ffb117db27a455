//! The kubelet's command line, read the way spf13/pflag reads it.
//!
//! Only long flags (`--name`, `--name=value`); `_` and `-` are the same in names (the kubelet's
//! WordSepNormalizeFunc); a bool flag alone means true and takes a value only after `=`, parsed
//! by Go's strconv.ParseBool; a non-bool flag without `=` takes the next argument; the last
//! occurrence wins; `--` ends the flags.

use std::ops::Range;

pub const FLAG: &str = "make-iptables-util-chains";
pub const KEY: &str = "makeIPTablesUtilChains";

/// Kubelet flags that are booleans (pflag NoOptDefVal): they never consume the next argument.
const BOOL_FLAGS: &[&str] = &[
    "add-dir-header",
    "allow-privileged",
    "alsologtostderr",
    "anonymous-auth",
    "authentication-token-webhook",
    "cgroups-per-qos",
    "containerized",
    "enable-cadvisor-json-endpoints",
    "enable-controller-attach-detach",
    "enable-debugging-handlers",
    "enable-load-reader",
    "enable-server",
    "exit-on-lock-contention",
    "experimental-allocatable-ignore-eviction",
    "experimental-check-node-capabilities-before-mount",
    "experimental-kernel-memcg-notification",
    "fail-cgroupv1",
    "fail-swap-on",
    "help",
    "keep-terminated-pod-volumes",
    "kernel-memcg-notification",
    "local-storage-capacity-isolation",
    "log-json-split-stream",
    "logtostderr",
    "make-iptables-util-chains",
    "one-output",
    "protect-kernel-defaults",
    "register-node",
    "register-schedulable",
    "rotate-certificates",
    "rotate-server-certificates",
    "runonce",
    "seccomp-default",
    "serialize-image-pulls",
    "skip-headers",
    "skip-log-headers",
    "version",
];

/// Go's strconv.ParseBool.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// One `--make-iptables-util-chains` on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// Index in argv.
    pub arg: usize,
    /// `Ok(value)`, or `Err(why the kubelet refuses it)`.
    pub value: Result<bool, String>,
    /// Byte range of the value after `=` inside the argument, if written.
    pub value_range: Option<Range<usize>>,
}

/// What the command line says about the settings the planner needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmdline {
    pub occurrences: Vec<Occurrence>,
    /// (argv index, value) of the last `--config`.
    pub config: Option<(usize, String)>,
    pub config_dir: Option<(usize, String)>,
    /// Problems that make the kubelet refuse to start, with the argv index they concern.
    pub refused: Vec<(usize, String)>,
    /// Positional arguments (the kubelet refuses any: "unknown command").
    pub positional: Vec<usize>,
}

impl Cmdline {
    /// The effective value given on the command line, if any (last occurrence wins).
    pub fn effective(&self) -> Option<&Occurrence> {
        self.occurrences.last()
    }
}

fn normalize(name: &str) -> String {
    name.replace('_', "-")
}

/// Parse argv (argv[0] included; it is skipped).
pub fn parse<S: AsRef<str>>(argv: &[S]) -> Cmdline {
    let mut c = Cmdline::default();
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].as_ref();
        if a == "--" {
            c.positional.extend(i + 1..argv.len());
            break;
        }
        if let Some(body) = a.strip_prefix("--").filter(|b| !b.is_empty()) {
            let (name, value) = match body.find('=') {
                Some(eq) => (normalize(&body[..eq]), Some((2 + eq + 1)..a.len())),
                None => (normalize(body), None),
            };
            if name == FLAG {
                let v = match &value {
                    Some(r) => parse_bool(&a[r.clone()]).ok_or_else(|| {
                        format!(
                            "invalid value \"{}\" for --{FLAG}: strconv.ParseBool accepts only 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False; the kubelet refuses to start",
                            &a[r.clone()]
                        )
                    }),
                    None => Ok(true),
                };
                if let Err(m) = &v {
                    c.refused.push((i, m.clone()));
                }
                if value.is_none()
                    && let Some(next) = argv.get(i + 1).map(|s| s.as_ref())
                    && !next.starts_with('-')
                {
                    c.refused.push((
                        i,
                        format!(
                            "\"--{FLAG} {next}\": a bool flag takes a value only as --{FLAG}={next}; the flag becomes true and \"{next}\" is a stray argument, so the kubelet exits with \"unknown command\""
                        ),
                    ));
                }
                c.occurrences.push(Occurrence {
                    arg: i,
                    value: v,
                    value_range: value,
                });
                i += 1;
                continue;
            }
            let takes_value = value.is_none() && !BOOL_FLAGS.contains(&name.as_str());
            let mut val = value.map(|r| a[r].to_string());
            if takes_value
                && let Some(next) = argv.get(i + 1).map(|s| s.as_ref())
                && !next.starts_with('-')
            {
                val = Some(next.to_string());
                i += 1;
            }
            match name.as_str() {
                "config" => c.config = val.map(|v| (i, v)),
                "config-dir" => c.config_dir = val.map(|v| (i, v)),
                _ => {}
            }
            i += 1;
            continue;
        }
        if a == "-v" {
            i += 2; // -v N: the one shorthand that takes a value
            continue;
        }
        if !a.starts_with('-') {
            c.positional.push(i);
        }
        i += 1;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eff(args: &[&str]) -> Option<Result<bool, String>> {
        let mut v = vec!["kubelet"];
        v.extend_from_slice(args);
        parse(&v).effective().map(|o| o.value.clone())
    }

    #[test]
    fn parse_bool_spellings() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(t), Some(true));
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(f), Some(false));
        }
        for bad in ["yes", "on", "", "tRUE", "no"] {
            assert_eq!(parse_bool(bad), None);
        }
    }

    #[test]
    fn last_wins_bare_and_underscore() {
        assert_eq!(
            eff(&[
                "--make-iptables-util-chains=false",
                "--make-iptables-util-chains"
            ]),
            Some(Ok(true))
        );
        assert_eq!(
            eff(&[
                "--make-iptables-util-chains",
                "--make_iptables_util_chains=0"
            ]),
            Some(Ok(false))
        );
        assert_eq!(eff(&["--config", "/x"]), None);
        assert_eq!(eff(&["--", "--make-iptables-util-chains=false"]), None);
    }

    #[test]
    fn space_form_and_bad_values_are_refused() {
        let c = parse(&["k", "--make-iptables-util-chains", "false"]);
        assert_eq!(c.effective().unwrap().value, Ok(true));
        assert!(c.refused[0].1.contains("stray argument"));
        let c = parse(&["k", "--make-iptables-util-chains=yes"]);
        assert!(c.effective().unwrap().value.is_err());
        let c = parse(&["k", "--make-iptables-util-chains:true"]);
        assert!(c.occurrences.is_empty());
    }

    #[test]
    fn value_flags_consume_and_config_is_found() {
        let c = parse(&[
            "k",
            "--node-ip",
            "10.0.0.1",
            "--config",
            "/a",
            "--config=/b",
            "--config-dir",
            "/d",
            "--fail-swap-on",
            "--v=2",
        ]);
        assert_eq!(c.config, Some((5, "/b".into())));
        assert_eq!(c.config_dir, Some((7, "/d".into())));
        assert!(c.positional.is_empty());
    }
}
