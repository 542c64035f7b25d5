"""A loopback HTTP server answering like the Kubernetes API for the reads servewise makes.

Shapes follow the Kubernetes API reference (https://kubernetes.io/docs/reference/kubernetes-api/):
lists are `{apiVersion, kind: <Kind>List, metadata: {resourceVersion, continue}, items}`; errors are
`Status` objects (`{kind: Status, apiVersion: v1, status: Failure, message, reason, code}`) with the
apiserver's own wording for 401, 403 and 404. It checks the bearer token, honours `limit` and
`continue` (capping pages at `max_page` so paging is exercised with few objects), `fieldSelector`
on pods (`spec.nodeName`, `status.phase` with `=` / `!=`), `labelSelector` `k=v`, and the
`as=PartialObjectMetadataList` Accept header. Every request is recorded; anything but GET gets 405.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml

from tests.fakes.loopback import LoopbackServer, QuietHandler

USER = "alice@example.com"

# path -> (resource, API group, List kind, list apiVersion) of the collections servewise lists.
CLUSTER_LISTS = {
    "/api/v1/nodes": ("nodes", "", "NodeList", "v1"),
    "/api/v1/pods": ("pods", "", "PodList", "v1"),
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions": (
        "customresourcedefinitions", "apiextensions.k8s.io", "CustomResourceDefinitionList", "apiextensions.k8s.io/v1"),
    "/apis/monitoring.coreos.com/v1/prometheuses": ("prometheuses", "monitoring.coreos.com", "PrometheusList",
                                                    "monitoring.coreos.com/v1"),
}
NAMESPACED_LISTS = {
    ("api", "v1", "resourcequotas"): ("", "ResourceQuotaList", "v1"),
    ("api", "v1", "limitranges"): ("", "LimitRangeList", "v1"),
    ("apis", "apps/v1", "deployments"): ("apps", "DeploymentList", "apps/v1"),
}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class FakeKubeApi:
    """The cluster's state plus knobs for failures. Use as a context manager; `url` is its base URL."""

    token: str = "fake-token-0123456789"
    version: dict = field(default_factory=lambda: {"major": "1", "minor": "33", "gitVersion": "v1.33.2",
                                                   "platform": "linux/amd64"})
    nodes: list[dict] = field(default_factory=list)
    pods: list[dict] = field(default_factory=list)
    crds: list[str] = field(default_factory=list)
    prometheuses: list[dict] = field(default_factory=list)  # monitoring.coreos.com/v1 Prometheus objects
    namespaced: dict[tuple[str, str], list[dict]] = field(default_factory=dict)  # (namespace, resource) -> items
    objects: dict[tuple[str, str, str, str], dict] = field(default_factory=dict)  # (group, ns, plural, name) -> obj
    forbidden: set[str] = field(default_factory=set)  # resources this user may not read
    max_page: int = 1000
    delay_s: float = 0.0
    tls_dir: Path | None = None  # serve HTTPS with a self-signed certificate written here (ca.crt)
    requests: list[Request] = field(default_factory=list)

    def __enter__(self) -> FakeKubeApi:
        fake = self

        class Handler(QuietHandler):
            def _any(self):
                fake._handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        tls = None
        if self.tls_dir is not None:
            cert, key = self_signed_certificate(self.tls_dir)
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(cert, key)
        self._server = LoopbackServer(Handler, tls=tls, poll_interval_s=0.02)
        return self

    def __exit__(self, *exc) -> None:
        self._server.close()

    @property
    def url(self) -> str:
        return self._server.url

    # ------------------------------------------------------------------ dispatch

    def _handle(self, h: QuietHandler) -> None:
        parts = urlsplit(h.path)
        path = parts.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.requests.append(Request(h.command, path, query, {k.lower(): v for k, v in h.headers.items()}))
        if self.delay_s:
            time.sleep(self.delay_s)
        if h.command != "GET":
            return h.send_json(405, _status(405, "MethodNotAllowed", "the fake API serves reads only"))
        scheme, _, token = (h.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or token != self.token:
            return h.send_json(401, _status(401, "Unauthorized", "Unauthorized"))
        code, body = self._route(path, query, h.headers.get("Accept", ""))
        h.send_json(code, body)

    def _route(self, path: str, query: dict[str, str], accept: str) -> tuple[int, dict]:
        if path == "/version":
            return 200, self.version
        if path in CLUSTER_LISTS:
            resource, group, kind, api_version = CLUSTER_LISTS[path]
            if resource in self.forbidden:
                return _forbidden(resource, group, "list")
            items = {"nodes": self.nodes, "pods": self.pods, "prometheuses": self.prometheuses,
                     "customresourcedefinitions": [_crd(n) for n in self.crds]}[resource]
            if resource == "pods" and "fieldSelector" in query:
                try:
                    items = [p for p in items if _field_match(p, query["fieldSelector"])]
                except ValueError as exc:
                    return 400, _status(400, "BadRequest", str(exc))
            if "as=PartialObjectMetadataList" in accept:
                kind, api_version = "PartialObjectMetadataList", "meta.k8s.io/v1"
                items = [{"metadata": i["metadata"]} for i in items]
            return 200, self._page(items, query, kind, api_version)
        seg = path.strip("/").split("/")
        # /api/v1/namespaces/{ns}/{resource} and /apis/{group}/{version}/namespaces/{ns}/{resource}[/{name}]
        prefix, rest = (("api", "v1"), seg[2:]) if seg[:2] == ["api", "v1"] else \
            (("apis", "/".join(seg[1:3])), seg[3:]) if seg[:1] == ["apis"] else (None, [])
        if prefix and len(rest) >= 3 and rest[0] == "namespaces":
            ns, resource = rest[1], rest[2]
            group = "" if prefix[0] == "api" else prefix[1].split("/")[0]
            if len(rest) == 3 and (prefix[0], prefix[1], resource) in NAMESPACED_LISTS:
                if resource in self.forbidden:
                    return _forbidden(resource, group, "list", ns)
                _, kind, api_version = NAMESPACED_LISTS[(prefix[0], prefix[1], resource)]
                items = self.namespaced.get((ns, resource), [])
                if "labelSelector" in query:
                    key, _, value = query["labelSelector"].partition("=")
                    items = [i for i in items if (i["metadata"].get("labels") or {}).get(key) == value]
                return 200, self._page(items, query, kind, api_version)
            if len(rest) == 4:
                name = rest[3]
                if resource in self.forbidden:
                    return _forbidden(resource, group, "get", ns, name)
                obj = self.objects.get((group, ns, resource, name))
                if obj is None:
                    return 404, _status(404, "NotFound", f'{resource}.{group} "{name}" not found',
                                        {"name": name, "group": group, "kind": resource})
                return 200, obj
        return 404, _status(404, "NotFound", "the server could not find the requested resource")

    def _page(self, items: list[dict], query: dict[str, str], kind: str, api_version: str) -> dict:
        start = int(base64.b64decode(query["continue"]).decode()) if query.get("continue") else 0
        size = min(int(query["limit"]), self.max_page) if query.get("limit") else len(items)
        end = start + size
        meta = {"resourceVersion": "4242"}
        if end < len(items):
            meta["continue"] = base64.b64encode(str(end).encode()).decode()
            meta["remainingItemCount"] = len(items) - end
        return {"apiVersion": api_version, "kind": kind, "metadata": meta, "items": items[start:end]}


def _status(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, **({"details": details} if details else {}), "code": code}


def _forbidden(resource: str, group: str, verb: str, namespace: str | None = None,
               name: str | None = None) -> tuple[int, dict]:
    """403 worded as the apiserver's RBAC authorizer words it."""
    qualified = f"{resource}.{group}" if group else resource
    subject = f'{qualified} "{name}"' if name else qualified
    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    message = (f'{subject} is forbidden: User "{USER}" cannot {verb} resource "{resource}" '
               f'in API group "{group}" {where}')
    return 403, _status(403, "Forbidden", message, {"kind": resource, **({"group": group} if group else {}),
                                                     **({"name": name} if name else {})})


def _crd(name: str) -> dict:
    plural, _, group = name.partition(".")
    return {"metadata": {"name": name, "resourceVersion": "1"},
            "spec": {"group": group, "names": {"plural": plural}, "scope": "Namespaced"}}


def _field_match(pod: dict, selector: str) -> bool:
    fields = {"spec.nodeName": (pod.get("spec") or {}).get("nodeName", ""),
              "status.phase": (pod.get("status") or {}).get("phase", ""),
              "metadata.namespace": pod["metadata"].get("namespace", "")}
    for term in selector.split(","):
        negate = "!=" in term
        key, value = term.split("!=" if negate else "=", 1)
        key = key.rstrip("=")
        if key not in fields:
            raise ValueError(f'"{key}" is not a known field selector: only "metadata.name", "metadata.namespace", '
                             '"spec.nodeName", "status.phase"')
        if (fields[key] == value.lstrip("=")) == negate:
            return False
    return True


# ------------------------------------------------------------------ builders of API objects


def node(name: str, gpus: int, product: str | None = None, *, ready: bool = True, cordoned: bool = False) -> dict:
    labels = {"kubernetes.io/hostname": name, **({"nvidia.com/gpu.product": product} if product else {})}
    allocatable = {"cpu": "190", "memory": "2013Gi", "pods": "110", **({"nvidia.com/gpu": str(gpus)} if gpus else {})}
    return {"metadata": {"name": name, "labels": labels, "resourceVersion": "1"},
            "spec": {"unschedulable": True} if cordoned else {},
            "status": {"allocatable": allocatable, "capacity": allocatable,
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def pod(name: str, node_name: str, gpus: int, *, phase: str = "Running", namespace: str = "default",
        init_gpus: int = 0, limits_only: bool = False) -> dict:
    res = {"nvidia.com/gpu": str(gpus)} if gpus else {}
    resources = {"limits": res} if limits_only else {"requests": res, "limits": res}
    spec: dict = {"nodeName": node_name, "containers": [{"name": "main", "image": "x", "resources": resources}]}
    if init_gpus:
        spec["initContainers"] = [{"name": "init", "image": "x",
                                   "resources": {"limits": {"nvidia.com/gpu": str(init_gpus)}}}]
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec, "status": {"phase": phase}}


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own CA (`ca.crt`), and its key (`tls.key`)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-kube-apiserver")])
    now = datetime.datetime.now(datetime.timezone.utc)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "ca.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def write_kubeconfig(path: Path, server: str, token: str, *, context: str = "fake",
                     namespace: str | None = None, extra_contexts: tuple[str, ...] = (),
                     ca_file: Path | None = None) -> Path:
    """A kubeconfig with a bearer-token user pointing at `server`; `extra_contexts` share the same cluster."""
    ctx = {"cluster": "fake", "user": "fake", **({"namespace": namespace} if namespace else {})}
    cluster = {"server": server, **({"certificate-authority-data": base64.b64encode(ca_file.read_bytes()).decode()}
                                    if ca_file else {})}
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": "fake", "cluster": cluster}],
        "users": [{"name": "fake", "user": {"token": token}}],
        "contexts": [{"name": c, "context": ctx} for c in (context, *extra_contexts)],
    }))
    return path
