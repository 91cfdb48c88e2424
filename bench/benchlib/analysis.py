"""When did the cluster really reach each state, and when did a peer move on?

Input: the independent watcher's event log (benchlib.watcher), one dict per watch event, in
arrival order, each stamped with the time the watcher received it. A timeline replays them and
keeps, per SeldonDeployment, the transitions of one status:

* ``("ready", N)``: the strict rule: the SDep exists with ``status.state == "Available"``, it owns
  at least one Deployment, and every Deployment it owns has ``spec.replicas == N``,
  ``status.observedGeneration >= metadata.generation`` and
  ``availableReplicas == updatedReplicas == replicas == N``;
* ``("gone",)``: neither the SDep nor any Deployment it owns exists;
* ``("other",)``: anything else.

Detection lag of a wait phase = (time the peer moved on) - (time the condition first held).
A negative lag means the peer moved on before the condition held (it trusted stale status or
did not wait).
"""
from __future__ import annotations

from typing import Iterable, Optional

OTHER = ("other",)
# Two watchers (the peer's and the harness's) do not get the same event at the same instant: a
# peer moving on up to this long before the harness's watcher saw the condition is not "early".
EARLY_TOLERANCE = 0.02
GONE = ("gone",)


def deployment_ready_at(d: dict) -> Optional[int]:
    """N if this Deployment is rolled out at N replicas by the rollout-status rule, else None."""
    n = d.get("spec")
    if n is None:
        return None
    if (d.get("ogen") or 0) < (d.get("gen") or 0):
        return None
    if d.get("available", 0) == d.get("updated", 0) == d.get("replicas", 0) == n:
        return n
    return None


def sdep_status(sdep: Optional[dict], deps: list[dict], confirmed: bool = False) -> tuple:
    """The status above. With confirmed=True, ready at N also needs the SDep's own
    status.deploymentStatus to say so (every entry replicas == available == N): the moment the
    operator has caught up, which a client reading only the SDep must wait for."""
    if sdep is None:
        return GONE if not deps else OTHER
    if sdep.get("state") != "Available" or not deps:
        return OTHER
    ns = {deployment_ready_at(d) for d in deps}
    if len(ns) == 1:
        (n,) = ns
        if n is not None:
            if confirmed:
                entries = list((sdep.get("deps") or {}).values())
                if not entries or any(e.get("replicas") != n or e.get("available") != n for e in entries):
                    return OTHER
            return ("ready", n)
    return OTHER


class Timeline:
    """Per-SDep status transitions, built from the watcher's events in one pass."""

    def __init__(self) -> None:
        self.sdeps: dict[tuple[str, str], dict] = {}
        self.deps: dict[tuple[str, str], dict] = {}          # (ns, deployment name) -> record
        self.owned: dict[tuple[str, str], set[str]] = {}     # (ns, sdep) -> deployment names
        self.status: dict[tuple[str, str], tuple] = {}
        self.transitions: dict[tuple[str, str], list[tuple[float, tuple]]] = {}
        self.cstatus: dict[tuple[str, str], tuple] = {}   # the same with confirmed=True
        self.ctransitions: dict[tuple[str, str], list[tuple[float, tuple]]] = {}

    def feed(self, events: Iterable[dict]) -> "Timeline":
        for ev in events:
            self.apply(ev)
        return self

    def apply(self, ev: dict) -> None:
        ns, name, kind = ev.get("ns", ""), ev.get("name", ""), ev.get("kind")
        deleted = ev.get("type") == "DELETED"
        if kind == "SeldonDeployment":
            key = (ns, name)
            if deleted:
                self.sdeps.pop(key, None)
            else:
                self.sdeps[key] = ev
            self._update(key, ev["t"])
        elif kind == "Deployment":
            owner = ev.get("sdep")
            dkey = (ns, name)
            old = self.deps.get(dkey)
            if deleted:
                self.deps.pop(dkey, None)
            else:
                self.deps[dkey] = ev
            owners = {o for o in (owner, old.get("sdep") if old else None) if o}
            for o in owners:
                s = self.owned.setdefault((ns, o), set())
                if deleted or (o != owner):
                    s.discard(name)
                else:
                    s.add(name)
                self._update((ns, o), ev["t"])

    def _update(self, key: tuple[str, str], t: float) -> None:
        ns = key[0]
        deps = [self.deps[(ns, d)] for d in self.owned.get(key, ()) if (ns, d) in self.deps]
        for confirmed, status, transitions in ((False, self.status, self.transitions),
                                               (True, self.cstatus, self.ctransitions)):
            st = sdep_status(self.sdeps.get(key), deps, confirmed)
            if key not in status:
                # First sighting: the SDep did not exist before, record "gone" as the prior state.
                status[key] = GONE
                transitions[key] = []
            if st != status[key]:
                status[key] = st
                transitions[key].append((t, st))

    def first(self, ns: str, name: str, status: tuple, after: float = 0.0, confirmed: bool = False) -> Optional[float]:
        """First time >= after at which the SDep entered (or was already in) ``status``."""
        trans = (self.ctransitions if confirmed else self.transitions).get((ns, name), [])
        current = GONE
        for t, st in trans:
            if t > after:
                break
            current = st
        if current == status and trans:
            # Already in that state at `after`: the condition held at `after` itself.
            return after
        for t, st in trans:
            if t > after and st == status:
                return t
        return None

    def names(self, ns: str) -> list[str]:
        return sorted(n for (s, n) in self.transitions if s == ns)


def lag(moved_on: Optional[float], condition: Optional[float]) -> Optional[float]:
    if moved_on is None or condition is None:
        return None
    return moved_on - condition


def is_early(moved: Optional[float], cond: Optional[float]) -> bool:
    """Moved on, and the condition never held or held only later (beyond the tolerance)."""
    return moved is not None and (cond is None or moved < cond - EARLY_TOLERANCE)


def lifecycle_lags(tl: Timeline, ns: str, name: str, *, n1: int, n2: int, create: Optional[float],
                   scale: Optional[float], delete: Optional[float], done: Optional[float]) -> dict:
    """Condition times and lags for the three wait phases of one lifecycle.

    create/scale/delete: when the peer's requests reached the apiserver (audit log);
    done: when the peer said it was finished (process exit, or its own report)."""
    out: dict = {}
    c1 = tl.first(ns, name, ("ready", n1), after=create) if create is not None else None
    c2 = tl.first(ns, name, ("ready", n2), after=scale) if scale is not None else None
    cg = tl.first(ns, name, GONE, after=delete) if delete is not None else None
    out["ready1_at"], out["ready2_at"], out["gone_at"] = c1, c2, cg
    # The same moments once the SDep's own status also says so (the operator caught up).
    out["ready1c_at"] = tl.first(ns, name, ("ready", n1), after=create, confirmed=True) if create is not None else None
    out["ready2c_at"] = tl.first(ns, name, ("ready", n2), after=scale, confirmed=True) if scale is not None else None
    out["lag_ready1"] = lag(scale, c1)
    out["lag_ready2"] = lag(delete, c2)
    out["lag_gone"] = lag(done, cg)
    # Moved on before the condition held: a negative lag, or a condition that never held at all
    # (e.g. it deleted the SDep before it was ever ready at N).
    for phase, moved, cond in (("ready1", scale, c1), ("ready2", delete, c2), ("gone", done, cg)):
        out[f"early_{phase}"] = is_early(moved, cond)
    return out


# ---------------------------------------------------------------- update (rollout) benchmark
#
# "Rollout complete" after an update of a live SeldonDeployment, from the same watcher events:
# the SDep says Available, and the Deployments it owns are exactly the expected ones (none
# missing, none left from a removed component), each with the new images in its pod template,
# its generation observed, and replicas == updatedReplicas == availableReplicas == N (so no pod
# of an older ReplicaSet is left). `expected` maps each Deployment name to
# {"replicas": N, "images": {container name: image}}; containers it does not name (the
# operator's executor) are not checked.

PODS, COMPLETE, CONFIRMED = "pods", "complete", "confirmed"


def rollout_complete(sdep: Optional[dict], deps: dict[str, dict], expected: dict[str, dict],
                     level: str = COMPLETE) -> bool:
    """level PODS: the Deployments' part only (every new pod ready, no old pod left), whatever
    the SDep says. COMPLETE: also the SDep `Available`. CONFIRMED: also the SDep's own
    status.deploymentStatus showing exactly the expected Deployments, each with
    replicas == available == N: the operator has caught up."""
    if sdep is None or not expected or (level != PODS and sdep.get("state") != "Available"):
        return False
    if level == CONFIRMED:
        entries = sdep.get("deps") or {}
        if set(entries) != set(expected) or any(
                entries[d].get("replicas") != w["replicas"] or entries[d].get("available") != w["replicas"]
                for d, w in expected.items()):
            return False
    if set(deps) != set(expected):
        return False
    for name, want in expected.items():
        d = deps[name]
        n = want["replicas"]
        if d.get("spec") != n or (d.get("ogen") or 0) < (d.get("gen") or 0):
            return False
        if not (d.get("replicas", 0) == d.get("updated", 0) == d.get("available", 0) == n):
            return False
        images = d.get("images") or {}
        if any(images.get(c) != img for c, img in want["images"].items()):
            return False
    return True


def rollout_complete_at(events: Iterable[dict], ns: str, name: str, expected: dict[str, dict],
                        after: float, level: str = COMPLETE) -> Optional[float]:
    """First time >= after at which the rollout of SDep ns/name was complete (`after` itself if
    it already was), replaying the watcher's events (in arrival order); None if never."""
    sdep: Optional[dict] = None
    deps: dict[str, dict] = {}
    passed = False  # whether the replay has gone past `after`
    for ev in events:
        kind, t = ev.get("kind"), ev.get("t", 0.0)
        if ev.get("ns") != ns or kind not in ("SeldonDeployment", "Deployment"):
            continue
        if kind == "SeldonDeployment" and ev.get("name") != name:
            continue
        if t > after and not passed:
            passed = True
            if rollout_complete(sdep, deps, expected, level):
                return after
        deleted = ev.get("type") == "DELETED"
        if kind == "SeldonDeployment":
            sdep = None if deleted else ev
        elif deleted or ev.get("sdep") != name:
            deps.pop(ev.get("name", ""), None)
        else:
            deps[ev.get("name", "")] = ev
        if passed and rollout_complete(sdep, deps, expected, level):
            return t
    return after if not passed and rollout_complete(sdep, deps, expected, level) else None


def update_lags(events: Iterable[dict], ns: str, name: str, expected: dict[str, dict], *,
                update: Optional[float], done: Optional[float], own: Optional[float] = None) -> dict:
    """Truth and lags of one update run.

    update: when the peer's write of the new spec reached the apiserver (audit log);
    done: when the peer moved on (process exit); own: when it said its wait ended."""
    events = list(events)
    at = {lv: rollout_complete_at(events, ns, name, expected, update, lv) if update is not None else None
          for lv in (PODS, COMPLETE, CONFIRMED)}
    c, cc = at[COMPLETE], at[CONFIRMED]
    return {"complete_at": c, "confirmed_at": cc, "pods_done_at": at[PODS], "rollout_s": lag(c, update),
            "lag_update": lag(done, c), "self_lag_update": lag(own, c), "early_update": is_early(done, c),
            # Moved on while pods of the old version still served (or new ones were not ready yet),
            # as opposed to only before the operator's state said Available again.
            "early_pods": is_early(done, at[PODS]),
            # How long the operator took to write a status showing the finished rollout, and the
            # peer's own end against that moment (the part of the lag that is not the client's).
            "status_delay": lag(cc, c), "clag_update": lag(own if own is not None else done, cc)}
