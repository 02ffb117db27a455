//! The man pages: kubelet-remediate(8) and one page per subcommand, each with every option and
//! that subcommand's exit statuses.
//!
//! clap_mangen renders the sections; the exit-status table is written here as preformatted text
//! (`.nf`): as a filled paragraph, roff re-wrapped its columns into one run-on line.

use std::io::Write;
use std::path::Path;

/// Section 8: it administers the node (as kubeadm(8) does).
const SECTION: &str = "8";

/// Write every page of `cmd` (the CLI's) into `dir`, or print the main page on standard output.
pub fn run(cmd: clap::Command, dir: Option<&Path>) -> anyhow::Result<()> {
    let pages = pages(cmd)?;
    match dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            for (name, text) in &pages {
                std::fs::write(d.join(name), text)?;
            }
        }
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(&pages[0].1) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
                _ => {}
            }
        }
    }
    Ok(())
}

/// (file name, roff) of the main page, then of each visible subcommand.
pub fn pages(cmd: clap::Command) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut cmd = cmd.disable_help_subcommand(true).propagate_version(true);
    cmd.build();
    let mut out = vec![page(&cmd)?];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        out.push(page(sub)?);
    }
    Ok(out)
}

fn page(cmd: &clap::Command) -> std::io::Result<(String, Vec<u8>)> {
    // The exit statuses are written below, not as clap's reflowed "extra" section.
    let exit = cmd.get_after_help().map(|h| h.to_string());
    let man = clap_mangen::Man::new(cmd.clone().after_help(None::<&str>)).section(SECTION);
    let mut w = Vec::new();
    man.render_title(&mut w)?;
    man.render_name_section(&mut w)?;
    man.render_synopsis_section(&mut w)?;
    man.render_description_section(&mut w)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut w)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut w)?;
    }
    if let Some(text) = exit {
        writeln!(w, ".SH \"EXIT STATUS\"\n.nf")?;
        for line in text.lines().skip_while(|l| l.trim_end().ends_with(':')) {
            // A line starting with . or ' would be a roff request.
            let line = line.replace('\\', "\\e");
            let line = if line.starts_with(['.', '\'']) {
                format!("\\&{line}")
            } else {
                line
            };
            writeln!(w, "{line}")?;
        }
        writeln!(w, ".fi")?;
    }
    if cmd.get_version().is_some() {
        man.render_version_section(&mut w)?;
    }
    Ok((man.get_filename(), w))
}
