//! The README's contract against the code, so the two cannot drift: every subcommand's
//! synopsis names exactly the options its `--help` lists, every exit-status table holds exactly
//! the statuses the command documents (and prints under `--help`), and the record's and the
//! report's field tables name exactly the schema's required fields. Plus what each subcommand
//! refuses: an option it does not honour is a usage error (64).

mod common;
use common::repo;
use kubelet_remediate::cli;
use std::collections::BTreeSet;
use std::process::Command;

fn readme() -> String {
    std::fs::read_to_string(repo().join("README.md")).unwrap()
}

/// The text under `heading` (a whole heading line), up to the next heading of its level or
/// higher.
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let level = heading.chars().take_while(|c| *c == '#').count();
    let start = text
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README has no heading {heading:?}"))
        + heading.len()
        + 2;
    let rest = &text[start..];
    let mut at = 0;
    let mut fence = false;
    for line in rest.split_inclusive('\n') {
        fence ^= line.starts_with("```");
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if !fence && hashes > 0 && hashes <= level && line[hashes..].starts_with(' ') {
            break;
        }
        at += line.len();
    }
    &rest[..at]
}

/// The first cells of the table whose header's first cell is `header`.
fn first_cells(text: &str, header: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if !line.starts_with('|') {
            if inside {
                break;
            }
            continue;
        }
        if cells.get(1) == Some(&header) {
            inside = true;
            continue;
        }
        if inside && !cells[1].starts_with("---") {
            out.push(cells[1].to_string());
        }
    }
    assert!(!out.is_empty(), "no table headed {header:?}");
    out
}

/// Every `name` in backticks in `cell`s.
fn backticked(cells: &[String]) -> BTreeSet<String> {
    cells
        .iter()
        .flat_map(|c| c.split('`').skip(1).step_by(2).map(str::to_string))
        .collect()
}

/// The statuses a `--help` exit-status text lists.
fn statuses(text: &str) -> BTreeSet<u32> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

/// The long and short options `SUB --help` lists (help and version aside).
fn help_options(sub: &str) -> BTreeSet<String> {
    let o = Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
        .args([sub, "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(o.stdout).unwrap();
    let opts = &help[help.find("Options:").expect("an Options: section")..];
    // Option lines are indented by two (short) or six (long only); wrapped help text deeper.
    opts.lines()
        .filter(|l| l.starts_with("  -") || l.starts_with("      --"))
        .map(str::trim_start)
        .flat_map(|l| {
            l.split([',', ' '])
                .take_while(|w| w.starts_with('-') || w.is_empty())
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|o| !["-h", "--help", "-V", "--version"].contains(&o.as_str()))
        .collect()
}

/// The options a synopsis code block names.
fn synopsis_options(section: &str) -> BTreeSet<String> {
    let block = section.split("```").nth(1).expect("a synopsis code block");
    block
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with('-') && w.len() > 1 && !w.starts_with("---"))
        .map(str::to_string)
        .collect()
}

const SUBCOMMANDS: &[&str] = &["plan", "apply", "rollback", "verify", "scan", "summarize"];

#[test]
fn every_synopsis_names_exactly_the_options_of_its_help() {
    let text = readme();
    for sub in SUBCOMMANDS {
        let s = section(&text, &format!("## `kubelet-remediate {sub}`"));
        assert_eq!(
            synopsis_options(s),
            help_options(sub),
            "README's {sub} synopsis against `{sub} --help`"
        );
    }
}

#[test]
fn every_exit_status_table_is_what_the_command_documents() {
    let text = readme();
    for (sub, doc) in [
        ("plan", cli::EXIT_STATUS),
        ("apply", cli::EXIT_STATUS),
        ("rollback", cli::EXIT_STATUS),
        ("verify", cli::VERIFY_EXIT_STATUS),
        ("scan", cli::SCAN_EXIT_STATUS),
        ("summarize", cli::SUMMARIZE_EXIT_STATUS),
    ] {
        let s = section(&text, &format!("## `kubelet-remediate {sub}`"));
        let table: BTreeSet<u32> = first_cells(s, "status")
            .iter()
            .map(|c| c.parse().unwrap_or_else(|_| panic!("{sub}: status {c:?}")))
            .collect();
        let want = statuses(doc);
        // apply and rollback list the statuses they can give; plan, verify, scan and
        // summarize list them all.
        if matches!(sub, "apply" | "rollback") {
            assert!(
                table.is_subset(&want),
                "{sub}: {table:?} not within {want:?}"
            );
        } else {
            assert_eq!(table, want, "README's {sub} exit statuses");
        }
        let o = Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
            .args([sub, "--help"])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&o.stdout).contains(doc),
            "`{sub} --help` prints its exit statuses"
        );
    }
}

#[test]
fn the_record_and_report_tables_name_the_schemas_fields() {
    let text = readme();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("docs/report.schema.json")).unwrap(),
    )
    .unwrap();
    let required = |v: &serde_json::Value| -> BTreeSet<String> {
        v["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let json = section(&text, "### JSON output: one record per command and node");
    assert_eq!(
        backticked(&first_cells(json, "field")),
        required(&schema),
        "README's record table"
    );
    let report_def = schema["properties"]["report"]["oneOf"]
        .as_array()
        .and_then(|a| a.iter().find_map(|v| v["$ref"].as_str()))
        .and_then(|r| r.rsplit('/').next())
        .map(|name| &schema["$defs"][name])
        .expect("the report's schema");
    let report = json
        .split("The `report`:")
        .nth(1)
        .expect("the report's table");
    assert_eq!(
        backticked(&first_cells(report, "field")),
        required(report_def),
        "README's report table"
    );
}

/// Each subcommand takes the options it honours and refuses the others with 64.
#[test]
fn options_are_where_they_mean_something() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
            .args(args)
            .output()
            .unwrap()
            .status
            .code()
    };
    for args in [
        &["scan", "--node-name", "x", "."][..],
        &["summarize", "-v", "-"],
        &["completions", "-q", "bash"],
        &["plan", "--every", "0"],
        &["plan", "--every", "9"],
    ] {
        assert_eq!(run(args), Some(64), "{args:?}");
    }
    let tree = repo().join("testdata/nodes/gke");
    let tree = tree.to_str().unwrap();
    for args in [
        &["plan", "-o", "json", "--offline", "--root", tree][..],
        &[
            "rollback",
            "--offline",
            "--list",
            "-o",
            "json",
            "--root",
            tree,
        ],
        &["scan", "-o", "json", tree],
    ] {
        assert_eq!(run(args), Some(0), "{args:?}");
    }
}

/// The project's docs stand on their own: every relative link resolves to a file in the
/// repository, and none cites the team's shared notes beside the clone.
#[test]
fn every_doc_link_resolves_inside_the_repository() {
    let mut docs = vec![repo().join("README.md")];
    for e in std::fs::read_dir(repo().join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            docs.push(p);
        }
    }
    for d in docs {
        let text = std::fs::read_to_string(&d).unwrap();
        assert!(
            !text.contains("shared/docs/"),
            "{} cites a file outside the repository",
            d.display()
        );
        for link in text.split("](").skip(1) {
            let target = link.split(')').next().unwrap().split('#').next().unwrap();
            if target.is_empty() || target.contains("://") {
                continue;
            }
            let p = d.parent().unwrap().join(target);
            assert!(p.exists(), "{}: broken link {target}", d.display());
        }
    }
}

/// `plan --every` in text puts a line saying when (and what) before each report.
#[test]
fn plan_every_separates_reports_with_a_timestamped_line() {
    use std::io::BufRead;
    let mut c = Command::new(env!("CARGO_BIN_EXE_kubelet-remediate"))
        .args([
            "plan",
            "--offline",
            "--color",
            "never",
            "--every",
            "10",
            "--root",
        ])
        .arg(repo().join("testdata/nodes/gke"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(c.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    c.kill().unwrap();
    c.wait().unwrap();
    let rest = first
        .strip_prefix("==== ")
        .unwrap_or_else(|| panic!("{first:?}"));
    // An RFC 3339 time with microseconds, then what was planned and its result.
    assert_eq!(&rest[4..5], "-", "{first}");
    assert!(rest[..27].ends_with('Z'), "{first}");
    assert!(rest.contains(" plan "), "{first}");
    assert!(
        rest.trim_end().ends_with("(compliant, exit 0) ===="),
        "{first}"
    );
}

/// Every `docs/NAME` the code cites (in its comments, as the rule it follows) is in the
/// repository.
#[test]
fn every_doc_the_code_cites_exists() {
    let mut stack = vec![repo().join("src")];
    let mut cited = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            for (i, _) in text.match_indices("docs/") {
                let name: String = text[i + 5..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                    .collect();
                let name = name.trim_end_matches('.');
                if !(name.ends_with(".md") || name.ends_with(".json")) {
                    continue;
                }
                cited += 1;
                assert!(
                    repo().join("docs").join(name).is_file(),
                    "{} cites docs/{name}, which is not in the repository",
                    p.display()
                );
            }
        }
    }
    assert!(cited > 0);
}

/// The README's controls table is the code's table (`controls::markdown_table`), so the two
/// cannot drift; `UPDATE_README=1` rewrites it.
#[test]
fn the_readme_controls_table_is_the_code_table() {
    let path = repo().join("README.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = "<!-- controls table: generated from src/controls.rs";
    let end = "<!-- end of controls table -->";
    let a = text.find(start).expect("the table's opening marker");
    let a = a + text[a..].find('\n').unwrap() + 1;
    let b = text.find(end).expect("the table's closing marker");
    let want = kubelet_remediate::controls::markdown_table();
    if std::env::var_os("UPDATE_README").is_some() {
        std::fs::write(&path, format!("{}{want}{}", &text[..a], &text[b..])).unwrap();
        return;
    }
    assert_eq!(
        &text[a..b],
        want,
        "README's controls table (run with UPDATE_README=1)"
    );
    // Every control of the code is a row, and every row a control.
    for c in kubelet_remediate::controls::CONTROLS {
        assert!(text[a..b].contains(&format!("| `{}` |", c.id)), "{}", c.id);
    }
}
