//! Talking to the API server for reading: finding the cluster like kubectl ([`connect`]).
//! The resilient watches and the namespace cache they feed are crate-private; a
//! [`Deployer`](crate::Deployer) runs them, and [`crate::ops::WatchStats`] counts their work.

pub(crate) mod cache;
pub mod connect;
pub(crate) mod watch;
