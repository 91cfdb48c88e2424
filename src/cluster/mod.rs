//! Talking to the API server for reading: finding the cluster like kubectl ([`connect`]),
//! resilient watches ([`watch`]) and the namespace cache they feed ([`cache`]).

pub(crate) mod cache;
pub mod connect;
pub(crate) mod watch;
