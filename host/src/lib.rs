//! The rescind host.

pub mod plugins;
