//! Thin entry point: parse arguments, run, map errors to exit status 1.

use clap::Parser;
use kubelet_remediate::cli::{self, Cli};

fn main() {
    let code = match cli::run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kubelet-remediate: error: {e:#}");
            if e.downcast_ref::<cli::AfterWrites>().is_none() {
                eprintln!("nothing was changed");
            }
            1
        }
    };
    std::process::exit(code);
}
