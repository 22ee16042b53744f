//! Shared helpers for the chapter programs.
pub mod smollm2;
pub mod svg;
