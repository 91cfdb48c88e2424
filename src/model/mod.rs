//! What a SeldonDeployment and its children are, with no I/O: the names and labels shared
//! with the operator, and what a pod's status says is wrong with it. The bottom layer:
//! it imports no other module of the crate.

pub mod names;
pub mod pod_issue;
