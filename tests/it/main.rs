//! The integration tests, one module per concern, in one binary: built
//! and linked once, and run in parallel across concerns. Each module
//! drives real processes of our binaries over real sockets and files.

mod common;

mod agent;
mod api;
mod cli;
mod codec;
mod collector;
mod collector_traffic;
mod conf;
mod crash;
mod dashboard;
mod dbtool;
mod demo;
mod engines;
mod export;
mod fuzz;
mod http;
mod install;
mod keystone;
mod operator;
mod probes;
mod static_build;
mod store;
mod strict;
mod vectors;
mod wire;
