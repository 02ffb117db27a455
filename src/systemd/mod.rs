//! How systemd turns a unit, its drop-ins and environment files into the kubelet's argv.

pub mod dbus;
pub mod envfile;
pub mod exec;
pub mod lookup;
pub mod private;
pub mod unit;
pub mod words;
