//! seldon-deploy: create, wait for, scale and delete a Seldon Core v1 `SeldonDeployment`,
//! streaming its events, with watches instead of polling.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod manifest;
pub mod replicas;

pub use error::{Error, Result};
