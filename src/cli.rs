//! The command line: parse, run the pipeline, print, and choose the exit status.

use crate::evidence::{self, Options};
use crate::plan::{self, Strategy};
use crate::report::Report;
use crate::root::NodeFs;
use crate::verdict;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "kubelet-remediate",
    version,
    about = "Find and fix what keeps the kubelet's makeIPTablesUtilChains from being true (CIS 4.2.7 / 4.2.6 / 3.2.6)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compute the effective value and propose the minimal fix as a unified diff (writes nothing).
    Plan(PlanArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The node's file system is mounted here (a DaemonSet mounts the host at /host).
    #[arg(long, default_value = "/", value_name = "DIR")]
    pub root: PathBuf,
    /// Read files only: no /proc scan for the running kubelet.
    #[arg(long)]
    pub offline: bool,
    /// The kubelet's systemd unit (default: kubelet.service).
    #[arg(long, value_name = "NAME")]
    pub unit: Option<String>,
    /// How to fix every false setting (default: remove flags, set config keys to true).
    #[arg(long, value_enum)]
    pub strategy: Option<Strategy>,
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
    /// Colour the text output (auto: when stdout is a terminal and NO_COLOR is unset).
    #[arg(long, value_enum, default_value = "auto")]
    pub color: Color,
}

/// Run a parsed command line; the result is the process exit status.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Plan(a) => run_plan(&a),
    }
}

pub fn run_plan(a: &PlanArgs) -> anyhow::Result<i32> {
    use anyhow::Context;
    let meta =
        std::fs::metadata(&a.root).with_context(|| format!("--root {}", a.root.display()))?;
    anyhow::ensure!(
        meta.is_dir(),
        "--root {}: not a directory",
        a.root.display()
    );
    let fs = NodeFs::new(&a.root);
    let opts = Options {
        unit: a.unit.clone(),
        offline: a.offline,
    };
    let ev = evidence::gather(&fs, &opts)?;
    let v = verdict::judge(&ev);
    let p = plan::plan(&fs, &opts, &ev, &v, a.strategy)?;
    let report = Report::new(&ev, &v, &p);
    let out = match a.output {
        Output::Json => report.to_json(),
        Output::Text => {
            let color = match a.color {
                Color::Always => true,
                Color::Never => false,
                Color::Auto => {
                    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
                }
            };
            report.to_text(color)
        }
    };
    print!("{out}");
    Ok(report.exit_code())
}
