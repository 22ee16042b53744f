//! Sampling warpers: temperature and the truncation filters.

pub mod min_p;
pub mod temperature;
pub mod top_k;
pub mod top_p;
pub mod typical;

pub use min_p::MinP;
pub use temperature::Temperature;
pub use top_k::TopK;
pub use top_p::TopP;
pub use typical::TypicalP;
