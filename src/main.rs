//! Thin entry point: parse arguments, run, map errors to exit status 1 and usage errors to 64.

use clap::Parser;
use kubelet_remediate::cli::{self, Cli};

/// sysexits.h EX_USAGE: 2 already means "changes proposed".
const EX_USAGE: i32 = 64;

fn main() {
    let args = match Cli::try_parse().and_then(|a| cli::check(&a).map(|()| a)) {
        Ok(a) => a,
        Err(e) => {
            use clap::error::ErrorKind::{DisplayHelp, DisplayVersion};
            let code = if matches!(e.kind(), DisplayHelp | DisplayVersion) {
                0
            } else {
                EX_USAGE
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let code = match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            // One line: what failed, where (file:line:column when the input is at fault). The
            // node commands report their own errors (in the record, and whether files changed);
            // what reaches here is scan, summarize and the generated pages.
            eprintln!("kubelet-remediate: error: {e:#}; nothing was changed");
            1
        }
    };
    std::process::exit(code);
}
