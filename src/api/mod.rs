//! `opticon-api`: the original's HTTP JSON API over the database the
//! collector writes. See `man 8 opticon-api` for every route.
//!
//! A request travels through these files in order:
//!
//! * [`server`]: a poll-driven HTTP/1.1 server with a fixed worker pool
//!   and bounded requests, parsing with [`http`].
//! * [`routes`]: [`Api::handle`] works out who is asking ([`auth`]),
//!   matches the route and checks the caller may see the tenant.
//! * The handlers, by what they serve: [`users`], [`tenants`],
//!   [`watchers`], [`records`] (host records, ranges, logs, [`graphs`])
//!   and [`metrics`]. They answer in the original's JSON shapes (the same
//!   [`crate::db::views`] `opticon-db --json` prints), reading request
//!   bodies through [`input`] and failing with an [`error::ApiError`].
//!
//! [`config`] reads `opticon-api.conf`; [`daemon`] is the program around
//! it all.

pub mod auth;
pub mod config;
pub mod daemon;
pub mod error;
pub mod freshness;
pub mod graphs;
pub mod http;
pub mod input;
pub mod keystone;
pub mod metrics;
pub mod records;
pub mod routes;
pub mod server;
pub mod tenants;
pub mod users;
pub mod watchers;
pub mod web;

pub use config::ApiConfig;
pub use daemon::run;
pub use error::ApiError;
pub use routes::Api;
