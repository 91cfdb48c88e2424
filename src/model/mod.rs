//! What a SeldonDeployment and its children are, with no I/O: manifests and their
//! validation, components and their counts, what an update and a scale write, and what one
//! pod's status says is wrong with it. The names shared with the operator are in
//! [`crate::names`], below [`crate::error`], which this module's errors use.

pub mod components;
pub mod manifest;
pub mod merge;
pub(crate) mod pod_issue;
pub(crate) mod scale;
