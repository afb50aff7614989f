//! Placeholder: this method crate is filled in by its own issue.
