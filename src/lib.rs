//! seldon-deploy: create, wait for, scale and delete a Seldon Core v1 `SeldonDeployment`,
//! streaming its events, with watches instead of polling.
//!
//! The steps are independent and usable without the CLI:
//! [`manifest::load`] → [`Deployer::create`] → [`Deployer::wait_ready`] → [`Deployer::scale`]
//! → [`Deployer::wait_ready`] → [`Deployer::delete`], with [`events::follow`] for the event
//! stream and [`run::run`] driving the whole lifecycle with clean-up and a [`report::Report`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod connect;
pub mod error;
pub mod events;
pub mod lifecycle;
pub mod manifest;
pub mod readiness;
pub mod replicas;
pub mod report;
pub mod run;
pub mod scale;
pub mod watch;

pub use error::{Error, Result};
pub use lifecycle::{Deployer, Handle};
