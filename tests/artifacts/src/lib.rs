//! Paths of the compiled test components.
