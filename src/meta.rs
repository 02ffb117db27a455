//! A file's mode and owner, and a planned change of them (CIS 4.1), shared by plans, saved plans and the transaction.
//!
//! A change is recorded as text (`"0644"`, `"0:0"`), as the record and a saved plan carry it,
//! and read back into numbers with validation: a saved plan is untrusted input.

use serde::{Deserialize, Serialize};
use std::os::unix::fs::{MetadataExt, PermissionsExt};

/// Mode bits (with setuid, setgid and sticky) and owner of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Meta {
    pub fn of(m: &std::fs::Metadata) -> Meta {
        Meta {
            mode: m.permissions().mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
        }
    }

    pub fn mode_text(&self) -> String {
        mode_text(self.mode)
    }

    pub fn owner_text(&self) -> String {
        format!("{}:{}", self.uid, self.gid)
    }
}

/// `0644`: four octal digits, as `stat -c %a` would print them zero-padded.
pub fn mode_text(mode: u32) -> String {
    format!("{mode:04o}")
}

/// One attribute before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FromTo {
    pub from: String,
    pub to: String,
}

/// What a change does to a file's mode and owner; empty for a content edit alone (which keeps
/// both exactly).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<FromTo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<FromTo>,
}

fn parse_mode(s: &str) -> Option<u32> {
    (!s.is_empty() && s.len() <= 4 && s.bytes().all(|b| (b'0'..=b'7').contains(&b)))
        .then(|| u32::from_str_radix(s, 8).ok())
        .flatten()
}

fn parse_owner(s: &str) -> Option<(u32, u32)> {
    let (u, g) = s.split_once(':')?;
    let num = |t: &str| {
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse::<u32>().ok())
            .flatten()
    };
    Some((num(u)?, num(g)?))
}

impl MetaChange {
    /// The change from `from` to `to` (only what differs).
    pub fn between(from: Meta, to: Meta) -> MetaChange {
        MetaChange {
            mode: (from.mode != to.mode).then(|| FromTo {
                from: from.mode_text(),
                to: to.mode_text(),
            }),
            owner: ((from.uid, from.gid) != (to.uid, to.gid)).then(|| FromTo {
                from: from.owner_text(),
                to: to.owner_text(),
            }),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.mode.is_none() && self.owner.is_none()
    }

    /// The numbers, validated: `(mode from, to)`, `((uid, gid) from, to)`.
    #[allow(clippy::type_complexity)]
    pub fn parsed(&self) -> Result<(Option<(u32, u32)>, Option<((u32, u32), (u32, u32))>), String> {
        let mode =
            match &self.mode {
                Some(m) => Some(parse_mode(&m.from).zip(parse_mode(&m.to)).ok_or_else(|| {
                    format!("mode {:?} -> {:?} is not two file modes", m.from, m.to)
                })?),
                None => None,
            };
        let owner = match &self.owner {
            Some(o) => Some(
                parse_owner(&o.from)
                    .zip(parse_owner(&o.to))
                    .ok_or_else(|| {
                        format!("owner {:?} -> {:?} is not two uid:gid pairs", o.from, o.to)
                    })?,
            ),
            None => None,
        };
        Ok((mode, owner))
    }

    /// Whether the file as it is now (`now`) is what the change starts from.
    pub fn starts_at(&self, now: Meta) -> Result<bool, String> {
        let (mode, owner) = self.parsed()?;
        Ok(mode.is_none_or(|(f, _)| f == now.mode)
            && owner.is_none_or(|(f, _)| f == (now.uid, now.gid)))
    }

    /// What the file's metadata is after the change.
    pub fn target(&self, now: Meta) -> Result<Meta, String> {
        let (mode, owner) = self.parsed()?;
        let mut m = now;
        if let Some((_, to)) = mode {
            m.mode = to;
        }
        if let Some((_, (u, g))) = owner {
            (m.uid, m.gid) = (u, g);
        }
        Ok(m)
    }

    /// The change as git shows a mode change (`old mode 100644` / `new mode 100600`), and the
    /// owner in the same style.
    pub fn text(&self) -> String {
        let mut o = String::new();
        if let Some(m) = &self.mode {
            o += &format!("old mode 10{}\nnew mode 10{}\n", m.from, m.to);
        }
        if let Some(w) = &self.owner {
            o += &format!("old owner {}\nnew owner {}\n", w.from, w.to);
        }
        o
    }
}

/// How a change of `path` is shown before its diff: git's header and mode lines when the mode
/// or owner changes, nothing for a content edit alone (whose diff starts with `--- a/`).
pub fn header(path: &str, meta: &MetaChange) -> String {
    if meta.is_empty() {
        return String::new();
    }
    format!("diff --git a{path} b{path}\n{}", meta.text())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_read_back_and_refuse_what_is_not_a_mode_or_owner() {
        let from = Meta {
            mode: 0o4644,
            uid: 1000,
            gid: 1000,
        };
        let to = Meta {
            mode: 0o600,
            uid: 0,
            gid: 0,
        };
        let c = MetaChange::between(from, to);
        assert_eq!(c.mode.as_ref().unwrap().from, "4644");
        assert_eq!(c.target(from).unwrap(), to);
        assert!(c.starts_at(from).unwrap());
        assert!(!c.starts_at(to).unwrap());
        assert_eq!(
            c.text(),
            "old mode 104644\nnew mode 100600\nold owner 1000:1000\nnew owner 0:0\n"
        );
        for bad in ["0999", "12345", "", "-1", "0x1"] {
            let c = MetaChange {
                mode: Some(FromTo {
                    from: bad.into(),
                    to: "0600".into(),
                }),
                owner: None,
            };
            assert!(c.parsed().is_err(), "{bad}");
        }
        for bad in ["0", "0:", ":0", "a:b", "0:0:0", "-1:0", "99999999999:0"] {
            let c = MetaChange {
                mode: None,
                owner: Some(FromTo {
                    from: bad.into(),
                    to: "0:0".into(),
                }),
            };
            assert!(c.parsed().is_err(), "{bad}");
        }
        assert!(MetaChange::between(to, to).is_empty());
    }
}
