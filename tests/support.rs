//! Shared helpers for the integration tests (fixture paths).
