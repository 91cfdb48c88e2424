//! seldon-deploy: create, wait for, scale and delete a Seldon Core v1 `SeldonDeployment`,
//! streaming its events, with watches instead of polling.
//!
//! The steps are independent and usable without the CLI:
//! [`model::manifest::load`] → [`Deployer::create`] → [`Deployer::wait_ready`] → [`Deployer::scale`]
//! → [`Deployer::wait_ready`] → [`Deployer::delete`], with [`events::follow`] for the event
//! stream and [`run::run`] driving the whole lifecycle with clean-up and a [`report::Report`].
//!
//! The whole lifecycle of one manifest, as `seldon-deploy run` does it:
//!
//! ```no_run
//! use seldon_deploy::{Deployer, cluster::connect, model::manifest, run};
//!
//! # async fn demo() -> Result<(), seldon_deploy::Error> {
//! let conn = connect::connect(&connect::ConnectOptions::default()).await?;
//! let manifests = manifest::load("examples/iris-v1alpha2.yaml")?;
//! let ctx = run::Context::new(Deployer::new(conn.client, &conn.namespace));
//! let report = run::run(&ctx, &manifests[0], &run::RunOptions::default()).await;
//! println!("{} in {} phases", report.outcome, report.phases.len());
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(unreachable_pub)]

pub mod cluster;
pub mod error;
pub mod events;
pub mod judge;
pub mod model;
pub mod names;
pub mod ops;
pub mod report;
pub mod run;

pub use error::{Error, Result};
pub use ops::{Deployer, Handle};
