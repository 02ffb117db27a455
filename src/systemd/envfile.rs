//! `EnvironmentFile=` contents, parsed as systemd 252's `load_env_file()` does.
//!
//! `KEY=VALUE` per line; `#`/`;` at the start of a line begin a comment; blanks around the key
//! and before the value are dropped, trailing blanks of an unquoted value too; single quotes are
//! literal; inside double quotes a backslash escapes `"`, `\`, `` ` `` and `$` (others stay);
//! outside quotes a backslash takes the next character literally and backslash-newline continues
//! the value. No `$VAR` expansion happens (load_env_file, unlike merge_env_file, never expands).
//! A `#` inside a value is kept with what follows (comments exist only at the start of a line),
//! and the file ends at its first NUL byte (parse_env_file_internal walks a C string).

use crate::text::{FileId, Loc, SourceFile, Traced};

/// One assignment of an environment file.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub name: String,
    pub value: Traced,
    /// 1-based line of the key.
    pub line: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum St {
    PreKey,
    Key,
    PreValue,
    Value,
    ValueEscape,
    Single,
    Double,
    DoubleEscape,
    Comment,
    CommentEscape,
}

/// Hand each assignment over as it is read: a caller can drop what it does not need before
/// the next arrives (an environment file may have 100,000 lines).
pub fn parse(id: FileId, file: &SourceFile, out: &mut dyn FnMut(Assignment)) {
    let mut st = St::PreKey;
    let mut key = String::new();
    let mut key_line = 1;
    let mut value = Traced::default();
    let mut last_ws: Option<usize> = None; // byte length of value before trailing blanks
    let mut line = 1;
    let loc = |i: usize, c: char| {
        Some(Loc {
            file: id,
            start: i,
            end: i + c.len_utf8(),
        })
    };
    let push =
        |out: &mut dyn FnMut(Assignment), key: &mut String, value: &mut Traced, kl: usize| {
            let k = key.trim_end().to_string();
            if valid_name(&k) {
                out(Assignment {
                    name: k,
                    value: std::mem::take(value),
                    line: kl,
                });
            }
            key.clear();
            *value = Traced::default();
        };
    let text = file.text.split('\0').next().unwrap_or("");
    let mut prev_backslash_at: usize = 0;
    for (i, c) in text.char_indices() {
        let nl = c == '\n' || c == '\r';
        match st {
            St::PreKey => {
                if c == '#' || c == ';' {
                    st = St::Comment;
                } else if !c.is_whitespace() {
                    st = St::Key;
                    key.clear();
                    key.push(c);
                    key_line = line;
                }
            }
            St::Key => {
                if nl {
                    st = St::PreKey;
                    key.clear();
                } else if c == '=' {
                    st = St::PreValue;
                    last_ws = None;
                } else {
                    key.push(c);
                }
            }
            St::PreValue => {
                if nl {
                    st = St::PreKey;
                    push(out, &mut key, &mut value, key_line);
                } else if c == '\'' {
                    st = St::Single;
                } else if c == '"' {
                    st = St::Double;
                } else if c == '\\' {
                    st = St::ValueEscape;
                    prev_backslash_at = i;
                } else if !c.is_whitespace() {
                    st = St::Value;
                    value.push(c, loc(i, c));
                }
            }
            St::Value => {
                if nl {
                    st = St::PreKey;
                    if let Some(n) = last_ws {
                        value = value.slice(0..n);
                    }
                    last_ws = None;
                    push(out, &mut key, &mut value, key_line);
                } else if c == '\\' {
                    st = St::ValueEscape;
                    prev_backslash_at = i;
                    last_ws = None;
                } else {
                    if c.is_whitespace() {
                        last_ws.get_or_insert(value.text.len());
                    } else {
                        last_ws = None;
                    }
                    value.push(c, loc(i, c));
                }
            }
            St::ValueEscape => {
                st = St::Value;
                if c != '\n' {
                    value.push(
                        c,
                        Some(Loc {
                            file: id,
                            start: prev_backslash_at,
                            end: i + c.len_utf8(),
                        }),
                    );
                }
            }
            St::Single => {
                if c == '\'' {
                    st = St::PreValue;
                } else {
                    value.push(c, loc(i, c));
                }
            }
            St::Double => {
                if c == '"' {
                    st = St::PreValue;
                } else if c == '\\' {
                    st = St::DoubleEscape;
                    prev_backslash_at = i;
                } else {
                    value.push(c, loc(i, c));
                }
            }
            St::DoubleEscape => {
                st = St::Double;
                if matches!(c, '"' | '\\' | '`' | '$') {
                    value.push(
                        c,
                        Some(Loc {
                            file: id,
                            start: prev_backslash_at,
                            end: i + 1,
                        }),
                    );
                } else if c != '\n' {
                    value.push('\\', loc(prev_backslash_at, '\\'));
                    value.push(c, loc(i, c));
                }
            }
            St::Comment => {
                if c == '\\' {
                    st = St::CommentEscape;
                } else if nl {
                    st = St::PreKey;
                }
            }
            St::CommentEscape => st = St::Comment,
        }
        if c == '\n' {
            line += 1;
        }
    }
    match st {
        St::PreValue | St::Value | St::ValueEscape | St::Single | St::Double | St::DoubleEscape => {
            if st == St::Value
                && let Some(n) = last_ws
            {
                value = value.slice(0..n);
            }
            push(out, &mut key, &mut value, key_line);
        }
        _ => {}
    }
}

/// systemd's env_name_is_valid: bash's character set, not starting with a digit.
pub fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && !n.starts_with(|c: char| c.is_ascii_digit())
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(f: &SourceFile) -> Vec<Assignment> {
        let mut out = Vec::new();
        parse(0, f, &mut |a| out.push(a));
        out
    }

    fn p(s: &str) -> Vec<(String, String, usize)> {
        let f = SourceFile::new("/e".into(), "/e".into(), s);
        all(&f)
            .into_iter()
            .map(|a| (a.name, a.value.text, a.line))
            .collect()
    }

    #[test]
    fn quoting_comments_and_continuation() {
        let v = p(
            "# c\n; c\nA=--x=1 --y   \n B = \"q \\\"z\\\" \\n\"\nC='a b'c\nD=one\\\ntwo\nbad-name=1\nE\nF=\n",
        );
        assert_eq!(v[0], ("A".into(), "--x=1 --y".into(), 3));
        assert_eq!(v[1], ("B".into(), "q \"z\" \\n".into(), 4));
        assert_eq!(v[2], ("C".into(), "a bc".into(), 5));
        assert_eq!(v[3], ("D".into(), "onetwo".into(), 6));
        assert_eq!(v[4], ("F".into(), "".into(), 10));
        assert_eq!(v.len(), 5);
    }

    #[test]
    fn inline_hash_is_kept_and_nul_ends_the_file() {
        let v = p("A=--v=2 # not a comment\nB=1\0C=2\n");
        assert_eq!(v[0].1, "--v=2 # not a comment");
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn value_bytes_map_to_file() {
        let s = "KUBELET_EXTRA_ARGS=\"--a --make-iptables-util-chains=false\"\n";
        let f = SourceFile::new("/e".into(), "/e".into(), s);
        let a = &all(&f)[0];
        let i = a.value.text.find("--make").unwrap();
        let sp = a.value.span_of(i..a.value.text.len()).unwrap();
        assert_eq!(&s[sp.start..sp.end], "--make-iptables-util-chains=false");
    }
}
