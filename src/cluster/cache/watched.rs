//! What the stores' watches deserialize: each resource with only the fields the cache keeps.
//!
//! serde skips every other field of a watch item without allocating: `managedFields` (a large
//! part of every object), and most of a Seldon pod template (probes, volumes, and the
//! executor's environment, which embeds the whole predictor). Parsing the full k8s-openapi
//! types and trimming them afterwards built and freed all of that for every watch item, most
//! of the client's CPU at a thousand deployments. The stores turn these into the
//! k8s-openapi types (or summaries) their readers use, with the skipped fields empty.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStatus, DeploymentStrategy,
};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, Event, EventSeries, EventSource, ObjectReference, Pod, PodSpec, PodStatus,
    PodTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, MicroTime, ObjectMeta, OwnerReference, Time,
};
use kube::Resource;
use kube::core::{ApiResource, DynamicResourceScope};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// `ObjectMeta` without `managedFields`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetaFields {
    annotations: Option<BTreeMap<String, String>>,
    creation_timestamp: Option<Time>,
    deletion_grace_period_seconds: Option<i64>,
    deletion_timestamp: Option<Time>,
    finalizers: Option<Vec<String>>,
    generate_name: Option<String>,
    generation: Option<i64>,
    labels: Option<BTreeMap<String, String>>,
    name: Option<String>,
    namespace: Option<String>,
    owner_references: Option<Vec<OwnerReference>>,
    resource_version: Option<String>,
    self_link: Option<String>,
    uid: Option<String>,
}

fn meta<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    let m = MetaFields::deserialize(d)?;
    Ok(ObjectMeta {
        annotations: m.annotations,
        creation_timestamp: m.creation_timestamp,
        deletion_grace_period_seconds: m.deletion_grace_period_seconds,
        deletion_timestamp: m.deletion_timestamp,
        finalizers: m.finalizers,
        generate_name: m.generate_name,
        generation: m.generation,
        labels: m.labels,
        managed_fields: None,
        name: m.name,
        namespace: m.namespace,
        owner_references: m.owner_references,
        resource_version: m.resource_version,
        self_link: m.self_link,
        uid: m.uid,
    })
}

/// What readiness reads of a container: its name, image and the operator's `PREDICTOR_ID`.
#[derive(Clone, Debug, Deserialize)]
struct ContainerFields {
    #[serde(default)]
    name: String,
    image: Option<String>,
    #[serde(default, deserialize_with = "predictor_id")]
    env: Option<Vec<EnvVar>>,
}

/// Keeps only the `PREDICTOR_ID` entry of a container's environment; the others (such as the
/// executor's `ENGINE_PREDICTOR`, the whole predictor in base64) are read as borrowed text.
fn predictor_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<EnvVar>>, D::Error> {
    #[derive(Deserialize)]
    struct Entry<'a> {
        #[serde(borrow)]
        name: Cow<'a, str>,
        #[serde(borrow, default)]
        value: Option<Cow<'a, str>>,
    }
    let Some(entries) = Option::<Vec<Entry<'de>>>::deserialize(d)? else {
        return Ok(None);
    };
    Ok(Some(
        entries
            .into_iter()
            .filter(|e| e.name == "PREDICTOR_ID")
            .map(|e| EnvVar {
                name: e.name.into_owned(),
                value: e.value.map(Cow::into_owned),
                value_from: None,
            })
            .collect(),
    ))
}

impl From<ContainerFields> for Container {
    fn from(c: ContainerFields) -> Self {
        Container {
            name: c.name,
            image: c.image,
            env: c.env,
            ..Container::default()
        }
    }
}

/// A pod spec's containers, as [`ContainerFields`].
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodSpecFields {
    #[serde(default)]
    containers: Vec<ContainerFields>,
    init_containers: Option<Vec<ContainerFields>>,
}

impl From<PodSpecFields> for PodSpec {
    fn from(s: PodSpecFields) -> Self {
        PodSpec {
            containers: s.containers.into_iter().map(Container::from).collect(),
            init_containers: s
                .init_containers
                .map(|cs| cs.into_iter().map(Container::from).collect()),
            ..PodSpec::default()
        }
    }
}

/// A watched pod: its metadata, containers and status.
#[derive(Clone, Debug, Deserialize, kube::Resource)]
#[resource(inherit = Pod)]
pub(crate) struct WatchedPod {
    #[serde(deserialize_with = "meta")]
    metadata: ObjectMeta,
    spec: Option<PodSpecFields>,
    status: Option<PodStatus>,
}

impl From<WatchedPod> for Pod {
    fn from(p: WatchedPod) -> Self {
        Pod {
            metadata: p.metadata,
            spec: p.spec.map(PodSpec::from),
            status: p.status,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
struct TemplateFields {
    metadata: Option<ObjectMeta>,
    spec: Option<PodSpecFields>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentSpecFields {
    min_ready_seconds: Option<i32>,
    paused: Option<bool>,
    progress_deadline_seconds: Option<i32>,
    replicas: Option<i32>,
    revision_history_limit: Option<i32>,
    #[serde(default)]
    selector: LabelSelector,
    strategy: Option<DeploymentStrategy>,
    #[serde(default)]
    template: TemplateFields,
}

/// A watched Deployment: all but its pod template, of which it keeps the labels and
/// annotations and each container's [`ContainerFields`].
#[derive(Clone, Debug, Deserialize, kube::Resource)]
#[resource(inherit = Deployment)]
pub(crate) struct WatchedDeployment {
    #[serde(deserialize_with = "meta")]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: DeploymentSpecFields,
    status: Option<DeploymentStatus>,
}

impl From<WatchedDeployment> for Deployment {
    fn from(d: WatchedDeployment) -> Self {
        let s = d.spec;
        Deployment {
            metadata: d.metadata,
            spec: DeploymentSpec {
                min_ready_seconds: s.min_ready_seconds,
                paused: s.paused,
                progress_deadline_seconds: s.progress_deadline_seconds,
                replicas: s.replicas,
                revision_history_limit: s.revision_history_limit,
                selector: s.selector,
                strategy: s.strategy,
                template: PodTemplateSpec {
                    metadata: s.template.metadata,
                    spec: s.template.spec.map(PodSpec::from),
                },
            },
            status: d.status,
        }
    }
}

/// A watched Event: all of it but `managedFields`.
#[derive(Clone, Debug, Deserialize, kube::Resource)]
#[resource(inherit = Event)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WatchedEvent {
    #[serde(deserialize_with = "meta")]
    metadata: ObjectMeta,
    action: Option<String>,
    count: Option<i32>,
    event_time: Option<MicroTime>,
    first_timestamp: Option<Time>,
    #[serde(default)]
    involved_object: ObjectReference,
    last_timestamp: Option<Time>,
    message: Option<String>,
    reason: Option<String>,
    related: Option<ObjectReference>,
    reporting_component: Option<String>,
    reporting_instance: Option<String>,
    series: Option<EventSeries>,
    source: Option<EventSource>,
    #[serde(rename = "type")]
    type_: Option<String>,
}

impl From<WatchedEvent> for Event {
    fn from(e: WatchedEvent) -> Self {
        Event {
            metadata: e.metadata,
            action: e.action,
            count: e.count,
            event_time: e.event_time,
            first_timestamp: e.first_timestamp,
            involved_object: e.involved_object,
            last_timestamp: e.last_timestamp,
            message: e.message,
            reason: e.reason,
            related: e.related,
            reporting_component: e.reporting_component,
            reporting_instance: e.reporting_instance,
            series: e.series,
            source: e.source,
            type_: e.type_,
        }
    }
}

/// A watched SeldonDeployment: its type, metadata, spec and status.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WatchedSdep {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(deserialize_with = "meta")]
    metadata: ObjectMeta,
    spec: Option<Value>,
    status: Option<Value>,
}

/// Like [`kube::api::DynamicObject`]'s: the served version is chosen at run time.
impl Resource for WatchedSdep {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }
    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }
    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }
    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }
    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl From<WatchedSdep> for Value {
    /// The object as readiness reads it (`/metadata/...`, `/spec/...`, `/status/...`).
    fn from(o: WatchedSdep) -> Self {
        let mut m = serde_json::Map::new();
        if let Some(v) = o.api_version {
            m.insert("apiVersion".into(), v.into());
        }
        if let Some(k) = o.kind {
            m.insert("kind".into(), k.into());
        }
        m.insert(
            "metadata".into(),
            serde_json::to_value(o.metadata).unwrap_or_default(),
        );
        if let Some(s) = o.spec {
            m.insert("spec".into(), s);
        }
        if let Some(s) = o.status {
            m.insert("status".into(), s);
        }
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn managed_fields() -> Value {
        json!([{"manager": "m", "operation": "Update", "apiVersion": "v1",
            "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:a": {}}}}}])
    }

    fn metadata() -> Value {
        json!({"name": "n", "namespace": "ns", "uid": "u", "resourceVersion": "7",
            "generation": 3, "generateName": "n-", "labels": {"a": "b"},
            "annotations": {"c": "d"}, "finalizers": ["f"], "selfLink": "/x",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "deletionTimestamp": "2026-01-01T00:00:01Z", "deletionGracePeriodSeconds": 30,
            "ownerReferences": [{"apiVersion": "v1", "kind": "K", "name": "o", "uid": "ou",
                "controller": true}],
            "managedFields": managed_fields()})
    }

    /// `v` without `.metadata.managedFields`.
    fn unmanaged(mut v: Value) -> Value {
        v["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        v
    }

    #[test]
    fn a_watched_event_is_the_event_without_its_managed_fields() {
        let full = json!({
            "apiVersion": "v1", "kind": "Event", "metadata": metadata(),
            "action": "a", "count": 2, "eventTime": "2026-01-01T00:00:00.000001Z",
            "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:02Z",
            "involvedObject": {"kind": "Pod", "name": "p", "uid": "pu", "fieldPath": "spec"},
            "message": "m", "reason": "r", "related": {"kind": "Node", "name": "x"},
            "reportingComponent": "rc", "reportingInstance": "ri",
            "series": {"count": 3, "lastObservedTime": "2026-01-01T00:00:03.000000Z"},
            "source": {"component": "c", "host": "h"}, "type": "Warning"
        });
        let watched: WatchedEvent = serde_json::from_value(full.clone()).unwrap();
        let parsed: Event = serde_json::from_value(unmanaged(full)).unwrap();
        assert_eq!(Event::from(watched), parsed);
    }

    #[test]
    fn a_watched_seldon_deployment_is_its_json_without_managed_fields() {
        let full = json!({
            "apiVersion": "machinelearning.seldon.io/v1", "kind": "SeldonDeployment",
            "metadata": metadata(),
            "spec": {"predictors": [{"name": "p", "replicas": 2, "graph": {"name": "c"}}]},
            "status": {"state": "Available", "deploymentStatus": {"d": {"replicas": 2}}}
        });
        let watched: WatchedSdep = serde_json::from_value(full.clone()).unwrap();
        assert_eq!(Value::from(watched), unmanaged(full));
    }

    #[test]
    fn a_watched_pod_keeps_its_metadata_status_and_container_images() {
        let full = json!({
            "metadata": metadata(),
            "spec": {"containers": [{"name": "c", "image": "i:1", "args": ["x"],
                "env": [{"name": "X", "value": "y"}]}], "nodeName": "n"},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled",
                "status": "False", "reason": "Unschedulable", "message": "m"}],
                "containerStatuses": [{"name": "c", "image": "i:1", "imageID": "",
                    "ready": false, "restartCount": 4,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}
        });
        let watched: WatchedPod = serde_json::from_value(full.clone()).unwrap();
        let parsed: Pod = serde_json::from_value(unmanaged(full)).unwrap();
        let pod = Pod::from(watched);
        assert_eq!(pod.metadata, parsed.metadata);
        assert_eq!(pod.status, parsed.status);
        assert_eq!(
            serde_json::to_value(pod.spec).unwrap(),
            json!({"containers": [{"name": "c", "image": "i:1", "env": []}]})
        );
    }

    #[test]
    fn a_watched_deployment_keeps_all_but_its_pod_template_and_managed_fields() {
        let full = json!({
            "metadata": metadata(),
            "spec": {"replicas": 2, "minReadySeconds": 1, "paused": false,
                "progressDeadlineSeconds": 600, "revisionHistoryLimit": 10,
                "selector": {"matchLabels": {"a": "b"}},
                "strategy": {"type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": []}}},
            "status": {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2,
                "readyReplicas": 1, "availableReplicas": 1, "unavailableReplicas": 1,
                "conditions": [{"type": "Progressing", "status": "True",
                    "reason": "NewReplicaSetAvailable"}]}
        });
        let watched: WatchedDeployment = serde_json::from_value(full.clone()).unwrap();
        let parsed: Deployment = serde_json::from_value(unmanaged(full)).unwrap();
        assert_eq!(Deployment::from(watched), parsed);
    }

    #[test]
    fn a_trimmed_pod_template_keeps_what_readiness_reads_and_nothing_else() {
        let d: WatchedDeployment = serde_json::from_value(json!({
            "metadata": {"name": "d", "labels": {"seldon-deployment-id": "iris"}},
            "spec": {"selector": {}, "template": {
                "metadata": {"labels": {"app": "x"}, "annotations": {"a": "b"}},
                "spec": {
                    "containers": [{"name": "classifier", "image": "img:1",
                        "env": [{"name": "PREDICTOR_ID", "value": "default"},
                                {"name": "ENGINE_PREDICTOR", "value": "eyJ…"}],
                        "readinessProbe": {"tcpSocket": {"port": 9000}}}],
                    "initContainers": [{"name": "init", "image": "init:1", "args": ["x"]}],
                    "volumes": [{"name": "v", "emptyDir": {}}],
                    "nodeSelector": {"k": "v"}
                }}}
        }))
        .unwrap();
        let d = Deployment::from(d);
        let t = serde_json::to_value(&d.spec.template).unwrap();
        assert_eq!(
            t,
            json!({
                "metadata": {"labels": {"app": "x"}, "annotations": {"a": "b"}},
                "spec": {
                    "containers": [{"name": "classifier", "image": "img:1",
                        "env": [{"name": "PREDICTOR_ID", "value": "default"}]}],
                    "initContainers": [{"name": "init", "image": "init:1"}]
                }
            })
        );
    }
}
