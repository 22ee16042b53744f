//! Model-agnostic decoding strategies and post-processing.
