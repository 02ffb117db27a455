//! kubelet-remediate: find why a node's kubelet runs without `makeIPTablesUtilChains`, and fix it.

pub mod config;
pub mod error;
pub mod flags;
pub mod root;
pub mod systemd;
pub mod text;
