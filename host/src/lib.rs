//! The rescind host.
