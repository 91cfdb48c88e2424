"""A minimal Kubernetes API client over HTTPS (bearer token + CA file from a kubeconfig)."""
from __future__ import annotations

import http.client
import json
import re
import ssl
import urllib.parse
from typing import Any, Iterator, Optional


def read_kubeconfig(path: str) -> dict:
    """server, certificate-authority and token or client-certificate/client-key.

    Only the flat form that testenv/cluster writes is supported (one cluster, one user,
    file paths): enough for the harness's own clients."""
    out: dict[str, str] = {}
    with open(path) as f:
        for line in f:
            m = re.match(r"\s*(server|certificate-authority|token|client-certificate|client-key):\s*(\S+)\s*$", line)
            if m and m.group(1) not in out:
                out[m.group(1)] = m.group(2).strip("'\"")
    missing = {"server", "certificate-authority"} - out.keys()
    if "token" not in out and not {"client-certificate", "client-key"} <= out.keys():
        missing.add("token or client-certificate/client-key")
    if missing:
        raise ValueError(f"{path}: no {', '.join(sorted(missing))}")
    return out


class ApiError(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


class Api:
    def __init__(self, kubeconfig: str, user_agent: str = "seldon-deploy-bench"):
        kc = read_kubeconfig(kubeconfig)
        u = urllib.parse.urlparse(kc["server"])
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 443
        self.token = kc.get("token")
        self.ctx = ssl.create_default_context(cafile=kc["certificate-authority"])
        if not self.token:
            self.ctx.load_cert_chain(kc["client-certificate"], kc["client-key"])
        self.user_agent = user_agent

    def _conn(self, timeout: Optional[float]) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)

    def _headers(self, content_type: Optional[str] = None) -> dict:
        h = {"Accept": "application/json", "User-Agent": self.user_agent}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        if content_type:
            h["Content-Type"] = content_type
        return h

    def request(self, method: str, path: str, body: Any = None, *,
                content_type: str = "application/json", timeout: float = 60.0,
                ok: tuple[int, ...] = (200, 201, 202)) -> Any:
        conn = self._conn(timeout)
        try:
            data = None if body is None else (body if isinstance(body, (bytes, str)) else json.dumps(body))
            conn.request(method, path, body=data, headers=self._headers(content_type if data else None))
            resp = conn.getresponse()
            raw = resp.read().decode("utf-8", errors="replace")
            if resp.status not in ok:
                raise ApiError(resp.status, raw)
            return json.loads(raw) if raw else None
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def watch_lines(self, path: str, timeout: float) -> Iterator[bytes]:
        """Yield the raw lines of a watch response until the server ends it."""
        conn = self._conn(timeout)
        try:
            conn.request("GET", path, headers=self._headers())
            resp = conn.getresponse()
            if resp.status != 200:
                raise ApiError(resp.status, resp.read().decode("utf-8", errors="replace"))
            while True:
                line = resp.readline()
                if not line:
                    return
                yield line
        finally:
            conn.close()


def sdep_path(ns: Optional[str] = None, name: Optional[str] = None) -> str:
    p = "/apis/machinelearning.seldon.io/v1"
    if ns:
        p += f"/namespaces/{ns}"
    p += "/seldondeployments"
    if name:
        p += f"/{name}"
    return p


def deploy_path(ns: Optional[str] = None) -> str:
    return "/apis/apps/v1" + (f"/namespaces/{ns}" if ns else "") + "/deployments"
