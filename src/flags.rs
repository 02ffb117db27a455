//! The kubelet's command line, read the way spf13/pflag's `FlagSet.Parse` reads it.
//!
//! pflag (flag.go `parseArgs`, `parseLongArg`, `parseSingleShortArg`) with the kubelet's
//! settings (cmd/kubelet/app/server.go): interspersed words are collected, and the kubelet
//! refuses to start if any is left ("unknown command"); `--` ends the flags and everything after
//! it is such a word; `_` and `-` are the same in names (WordSepNormalizeFunc); an unknown long
//! flag, an unknown shorthand letter (only `-v` and `-h` exist) or `---x` / `--=x` stop the
//! parse with an error; a bool flag alone means true and takes a value only after `=` (Go's
//! strconv.ParseBool); any other flag without `=` takes the next argument, whatever it looks
//! like; the last occurrence wins.

use crate::settings::{self, MAKE_IPTABLES_UTIL_CHAINS};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::LazyLock;

/// The one-control planner's flag and config key: the settings table's row.
pub const FLAG: &str = match MAKE_IPTABLES_UTIL_CHAINS.flag {
    Some(f) => f,
    None => panic!("the row has a flag"),
};
pub const KEY: &str = match MAKE_IPTABLES_UTIL_CHAINS.key {
    Some([k]) => k,
    _ => panic!("the row has a top-level key"),
};

/// Whether a flag is a bool (pflag NoOptDefVal "true": never consumes the next argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Value,
}

/// Every long flag of the kubelets we know (src/kubelet_flags.txt: the union over versions, so
/// a flag only some versions have is never held against a node).
static KUBELET_FLAGS: LazyLock<HashMap<&'static str, Kind>> = LazyLock::new(|| {
    include_str!("kubelet_flags.txt")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, n)| (n, if k == "bool" { Kind::Bool } else { Kind::Value }))
        .collect()
});

/// The kind of a known kubelet flag (name already normalized).
pub fn kind(name: &str) -> Option<Kind> {
    KUBELET_FLAGS.get(name).copied()
}

pub use crate::settings::parse_bool;

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

/// One flag of the settings table on the command line, its value read by its pflag type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingOcc {
    /// The setting's id in `settings::SETTINGS`.
    pub id: &'static str,
    /// Index in argv (of the flag; a value in the next argument is at `arg + 1`).
    pub arg: usize,
    pub value: settings::Value,
    /// Byte range of the value after `=` inside the argument, if written so.
    pub value_range: Option<Range<usize>>,
}

/// What the command line says about the settings the planner needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmdline {
    /// Occurrences of our flag parsed before any error (pflag stops at the first).
    pub occurrences: Vec<Occurrence>,
    /// Every flag of the settings table, in order, parsed before any error.
    pub settings: Vec<SettingOcc>,
    /// (argv index, value) of the last `--config`.
    pub config: Option<(usize, String)>,
    pub config_dir: Option<(usize, String)>,
    /// Why the kubelet refuses this command line, with the argv index it concerns: a parse
    /// error, or the first word left over ("unknown command"). At most one entry.
    pub refused: Vec<(usize, String)>,
}

impl Cmdline {
    /// The effective value given on the command line, if any (last occurrence wins).
    pub fn effective(&self) -> Option<&Occurrence> {
        self.occurrences.last()
    }

    /// What the command line sets setting `id` to, by its flag's merge rule (pflag's `Set`
    /// called once per occurrence): a scalar's last occurrence; a stringSlice's lists appended
    /// (the first replaces whatever was there, later ones append); a map's pairs merged, later
    /// pairs winning per key (and the first `Set` clears what was there). `None`: not given.
    pub fn setting(&self, id: &str) -> Option<settings::Value> {
        use settings::{Merge, Value};
        let setting = settings::get(id)?;
        let mut occ = self
            .settings
            .iter()
            .filter(|o| o.id == id)
            .map(|o| &o.value);
        let first = occ.next()?.clone();
        Some(occ.fold(first, |acc, v| match (setting.merge, acc, v) {
            (Merge::AppendFlags, Value::List(a), Value::List(b)) => {
                let mut all = a.unwrap_or_default();
                all.extend(b.clone().unwrap_or_default());
                Value::List(Some(all))
            }
            (Merge::PerKey, Value::Map(mut a), Value::Map(b)) => {
                a.extend(b.iter().map(|(k, v)| (k.clone(), *v)));
                Value::Map(a)
            }
            (_, _, v) => v.clone(),
        }))
    }
}

fn normalize(name: &str) -> String {
    name.replace('_', "-")
}

/// How a word left on the command line got there, for the refusal message.
fn stray_word(argv: &[impl AsRef<str>], i: usize, after_dash: bool) -> String {
    let a = argv[i].as_ref();
    if after_dash {
        return format!(
            "\"{a}\" comes after \"--\", which ends the flags: the kubelet exits with \"unknown command {a}\""
        );
    }
    if a.is_empty() {
        return "an empty argument (an unset or empty ${VAR}, or \"\"): the kubelet exits with \"unknown command\"".into();
    }
    let prev = i.checked_sub(1).map(|p| argv[p].as_ref());
    if parse_bool(a).is_some()
        && prev.is_some_and(|p| {
            p.strip_prefix("--")
                .is_some_and(|n| !n.contains('=') && normalize(n) == FLAG)
        })
    {
        return format!(
            "\"--{FLAG} {a}\": a bool flag takes a value only as --{FLAG}={a}; the flag becomes true and \"{a}\" is a stray argument, so the kubelet exits with \"unknown command {a}\""
        );
    }
    format!(
        "\"{a}\" is not a flag (a word systemd passed as it is, e.g. an unexpanded $VAR or text after \" # \"): the kubelet exits with \"unknown command {a}\""
    )
}

/// Parse argv (argv[0] included; it is skipped).
pub fn parse<S: AsRef<str>>(argv: &[S]) -> Cmdline {
    let mut c = Cmdline::default();
    let mut words: Vec<(usize, bool)> = Vec::new();
    let mut i = 1;
    while i < argv.len() {
        let s = argv[i].as_ref();
        if s.len() < 2 || !s.starts_with('-') {
            words.push((i, false));
            i += 1;
            continue;
        }
        let step = if s == "--" {
            words.extend((i + 1..argv.len()).map(|j| (j, true)));
            break;
        } else if let Some(body) = s.strip_prefix("--") {
            long(&mut c, argv, i, body)
        } else {
            short(argv, i, &s[1..])
        };
        match step {
            Ok(consumed) => i += 1 + consumed,
            Err(why) => {
                c.refused.push((i, why));
                return c;
            }
        }
    }
    if let Some(&(w, after_dash)) = words.first() {
        c.refused.push((w, stray_word(argv, w, after_dash)));
    }
    c
}

/// `--name[=value]`: how many following arguments it consumed, or pflag's error.
fn long<S: AsRef<str>>(c: &mut Cmdline, argv: &[S], i: usize, body: &str) -> Result<usize, String> {
    let s = argv[i].as_ref();
    if body.starts_with(['-', '=']) {
        return Err(format!(
            "bad flag syntax: {s} (pflag refuses it, so the kubelet does not start)"
        ));
    }
    let (raw_name, value) = match body.find('=') {
        Some(eq) => (&body[..eq], Some((2 + eq + 1)..s.len())),
        None => (body, None),
    };
    let name = normalize(raw_name);
    let Some(kind) = kind(&name) else {
        let hint = if name.starts_with(FLAG) {
            format!(
                " (only --{FLAG}=true or --{FLAG}=false are read; never the colon spelling some CIS texts print)"
            )
        } else {
            String::new()
        };
        return Err(format!(
            "unknown flag: --{raw_name}{hint}: the kubelet refuses to start"
        ));
    };
    let (text, consumed) = match (&value, kind) {
        (Some(r), _) => (s[r.clone()].to_string(), 0),
        (None, Kind::Bool) => ("true".to_string(), 0),
        (None, Kind::Value) => match argv.get(i + 1) {
            Some(next) => (next.as_ref().to_string(), 1),
            None => {
                return Err(format!(
                    "flag needs an argument: {s}: the kubelet refuses to start"
                ));
            }
        },
    };
    // A flag of the settings table is read by its own type, as pflag's Set of that type would:
    // a value it cannot parse stops the kubelet like any other parse error.
    // (makeIPTablesUtilChains's bad values are refused below, with their own message.)
    if let Some((id, setting)) = settings::by_flag(&name) {
        match setting.parse_flag(&text) {
            Ok(parsed) => c.settings.push(SettingOcc {
                id,
                arg: i,
                value: parsed,
                value_range: value.clone(),
            }),
            Err(why) if name != FLAG => return Err(format!("{why}: the kubelet refuses to start")),
            Err(_) => {}
        }
    }
    if kind == Kind::Bool && parse_bool(&text).is_none() {
        let why = format!(
            "invalid value \"{text}\" for --{name}: strconv.ParseBool accepts only 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False; the kubelet refuses to start"
        );
        if name == FLAG {
            c.occurrences.push(Occurrence {
                arg: i,
                value: Err(why.clone()),
                value_range: value,
            });
        }
        return Err(why);
    }
    match name.as_str() {
        FLAG => c.occurrences.push(Occurrence {
            arg: i,
            value: Ok(parse_bool(&text).unwrap_or(true)),
            value_range: value,
        }),
        "config" => c.config = Some((i + consumed, text)),
        "config-dir" => c.config_dir = Some((i + consumed, text)),
        "help" | "version" => {
            return Err(format!(
                "--{name}: the kubelet prints its {name} and exits instead of running"
            ));
        }
        _ => {}
    }
    Ok(consumed)
}

/// `-abc`: shorthand letters. The kubelet has two: `-v` (takes a value: `-v=N`, `-vN`, `-v N`)
/// and `-h` (help). Any other first letter is pflag's "unknown shorthand flag".
fn short<S: AsRef<str>>(argv: &[S], i: usize, letters: &str) -> Result<usize, String> {
    let s = argv[i].as_ref();
    match letters.chars().next() {
        Some('v') if letters.len() > 1 => Ok(0),
        Some('v') if argv.get(i + 1).is_some() => Ok(1),
        Some('v') => Err(format!(
            "flag needs an argument: 'v' in {s}: the kubelet refuses to start"
        )),
        Some('h') => Err("-h: the kubelet prints its help and exits instead of running".into()),
        Some(c) => {
            let hint = if letters.len() > 1 {
                format!(" (a long flag needs two dashes: -{s}; one dash makes shorthand letters)")
            } else {
                String::new()
            };
            Err(format!(
                "unknown shorthand flag: '{c}' in {s}{hint}: the kubelet refuses to start"
            ))
        }
        None => Ok(0),
    }
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
    fn table_flags_are_read_by_their_type_and_merged_by_their_rule() {
        let c = parse(&[
            "kubelet",
            "--read-only-port=010",
            "--read-only-port",
            "0x0",
            "--tls-cipher-suites=A,B",
            "--tls-cipher-suites=C",
            "--feature-gates=X=true,Y=false",
            "--feature-gates=Y=true",
            "--streaming-connection-idle-timeout=0h0m0s",
            "--anonymous-auth",
        ]);
        assert!(c.refused.is_empty(), "{:?}", c.refused);
        use settings::Value;
        assert_eq!(c.setting("read-only-port"), Some(Value::Int(0)));
        assert_eq!(
            c.setting("tls-cipher-suites"),
            Some(Value::List(Some(vec!["A".into(), "B".into(), "C".into()])))
        );
        let Some(Value::Map(m)) = c.setting("feature-gates") else {
            panic!()
        };
        assert!(m["X"] && m["Y"]);
        assert_eq!(
            c.setting("streaming-connection-idle-timeout"),
            Some(Value::Duration(0))
        );
        assert_eq!(c.setting("anonymous-auth"), Some(Value::Bool(true)));
        assert_eq!(c.setting("event-qps"), None);
        // A value its type cannot parse stops the kubelet, naming the flag.
        for bad in [
            "--read-only-port=x",
            "--event-qps=1.5",
            "--streaming-connection-idle-timeout=1d",
            "--feature-gates=RotateKubeletServerCertificate",
            "--pod-max-pids=9223372036854775808",
        ] {
            let c = parse(&["kubelet", bad]);
            let why = &c.refused.first().unwrap_or_else(|| panic!("{bad}")).1;
            assert!(why.starts_with("invalid argument"), "{bad}: {why}");
            assert!(why.ends_with("the kubelet refuses to start"), "{why}");
        }
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

    fn refusal(args: &[&str]) -> String {
        let mut v = vec!["kubelet"];
        v.extend_from_slice(args);
        let c = parse(&v);
        assert_eq!(c.refused.len(), 1, "{args:?} should be refused");
        c.refused[0].1.clone()
    }

    #[test]
    fn space_form_and_bad_values_are_refused() {
        let c = parse(&["k", "--make-iptables-util-chains", "false"]);
        assert_eq!(c.effective().unwrap().value, Ok(true));
        assert!(c.refused[0].1.contains("stray argument"));
        assert_eq!(c.refused[0].0, 2);
        assert!(refusal(&["--make-iptables-util-chains=yes"]).contains("ParseBool"));
        assert!(refusal(&["--make-iptables-util-chains:true"]).contains("unknown flag"));
        assert!(refusal(&["-make-iptables-util-chains=false"]).contains("unknown shorthand"));
        assert!(refusal(&["--fail-swap-on=maybe"]).contains("ParseBool"));
    }

    #[test]
    fn words_left_over_are_refused_like_unknown_command() {
        assert!(refusal(&["--v=2", "$KUBELET_EXTRA_ARGS"]).contains("unknown command"));
        assert!(refusal(&[""]).contains("empty argument"));
        assert!(refusal(&["-"]).contains("unknown command -"));
        assert!(refusal(&["--", "--make-iptables-util-chains=false"]).contains("after \"--\""));
        assert!(parse(&["k", "--v=2", "--"]).refused.is_empty());
        assert!(refusal(&["---x"]).contains("bad flag syntax"));
        assert!(refusal(&["--=x"]).contains("bad flag syntax"));
        assert!(refusal(&["--no-such-flag"]).contains("unknown flag"));
        assert!(refusal(&["--node-ip"]).contains("needs an argument"));
        assert!(refusal(&["--version"]).contains("exits"));
        assert!(refusal(&["-h"]).contains("exits"));
    }

    #[test]
    fn a_value_flag_takes_the_next_argument_whatever_it_is() {
        // pflag consumes the next argument even when it starts with a dash.
        let c = parse(&["k", "--node-ip", "--make-iptables-util-chains=false"]);
        assert!(c.occurrences.is_empty());
        assert!(c.refused.is_empty());
        let c = parse(&[
            "k",
            "-v",
            "2",
            "-v3",
            "-v=4",
            "--make_iptables_util_chains=0",
        ]);
        assert_eq!(c.effective().unwrap().value, Ok(false));
        assert!(c.refused.is_empty());
        // ${VAR} holding two flags is one argument: one unparsable bool value.
        let r = refusal(&["--make-iptables-util-chains=false --v=2"]);
        assert!(r.contains("\"false --v=2\""), "{r}");
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
        assert!(c.refused.is_empty());
    }
}
