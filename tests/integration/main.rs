//! The one integration test binary; one module per topic.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod api_intents;
mod api_workflows;
mod common;
mod crash;
mod storage_model;
