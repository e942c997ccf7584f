//! The one integration test binary; one module per topic.

mod api_intents;
mod common;
