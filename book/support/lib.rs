//! Shared helpers for the chapter programs.
