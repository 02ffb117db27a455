//! kubelet-remediate: find why a node's kubelet runs without `makeIPTablesUtilChains`, and fix it.

pub mod cli;
pub mod config;
pub mod configz;
pub mod error;
pub mod evidence;
pub mod flags;
pub mod flow;
pub mod inroot;
pub mod junit;
pub mod k3s;
pub mod manpage;
pub mod outcome;
pub mod plan;
pub mod platform;
pub mod report;
pub mod restart;
pub mod root;
pub mod saved;
pub mod scan;
pub mod state;
pub mod summary;
pub mod systemd;
pub mod text;
pub mod time;
pub mod txn;
pub mod verdict;
