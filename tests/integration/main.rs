//! The one integration test binary; one module per topic.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

mod api_auth;
mod api_catalog_shapes;
mod api_intents;
mod api_workflows;
mod authzen;
mod authzen_limits;
mod common;
mod connections;
mod crash;
mod durability;
mod fail_closed;
mod forward_auth;
mod forward_auth_nginx;
mod fuzz_regressions;
mod issuance;
mod ledger;
mod mcp_proxy;
mod model;
mod pg_cluster;
mod pg_replicas;
mod server;
mod storage_model;
mod ui;
mod ui_browser;
