#!/usr/bin/env python3
"""Renders every kustomize overlay under deploy/k8s/overlays and checks it against the code.

For each overlay (`kubectl kustomize`, offline) and each service binary the build produces:

- there is exactly one workload whose container is named after the binary, with a pinned image;
- every CONTACTS_* variable it gets (env, envFrom ConfigMaps) and every --flag in its args is a
  flag of that service (extracted from services/*/main.cc and common/config/flags.cc), with a
  value the server's parser accepts;
- --listen and --metrics_listen bind 0.0.0.0 on the ports the container declares (named grpc and
  metrics), and those are the service's default ports;
- readiness and liveness (and startup, if any) probes are native gRPC probes on the gRPC port, or,
  when the service serves TLS (--tls_cert_file), tcpSocket probes on it: a grpc: probe cannot speak
  TLS;
- resources have cpu and memory requests and limits, requests <= limits;
- the pod runs as non-root uid 10001 with a read-only root filesystem, no privilege escalation,
  ALL capabilities dropped, the RuntimeDefault seccomp profile and an emptyDir on /tmp;
- a service that writes --data_dir is a one-replica StatefulSet whose data_dir lies on a volume
  from its volumeClaimTemplates; a service that does not is a Deployment without claims;
- --api_keys_file, when set, is a file of a mounted Secret volume (a folder mount, not subPath,
  so that key changes reach the running services) that uid 10001 can read (group
  read and a pod fsGroup: the kubelet writes Secret files as root), and is set for all services or
  none (audience-query and import-processor forward the caller's key to contact-store);
- every TLS file flag that is set (--tls_cert_file, --store_tls_ca_file, ...) names a file of a
  Secret volume under the same rules (renewed certificates must reach the running services);
  clients use TLS to contact-store exactly when it serves TLS, with a client certificate when it
  asks for one; a cert-manager Certificate writing a TLS workload's Secret names its Services (and
  the store's the --store host) in dnsNames, with the usages it needs (server auth, client auth);
- a full import batch of new contacts (--batch_rows, two RocksDB entries each) reaches
  contact-store's --ingest_min_entries, so imports take the SST ingest path;
- terminationGracePeriodSeconds exceeds --grace_period_ms, and covers the service's worst case
  from pod deletion to exit (docs/operations.md, "Pod termination") plus a margin: the preStop
  delay, then --grace_period_ms for in-flight calls, then what main() waits for after the drain
  (read by repo_facts from the source: a running job's store call, bounded by that service's
  --store_timeout_ms as configured, and a RocksDB close waiting for a running memtable flush);
- every container delays SIGTERM with a preStop sleep, so the endpoints drop the pod first: an
  exec of a sleep binary the image has (its Dockerfile target starts from Debian), or the native
  sleep action only if the Kubernetes version docs/operations.md requires has it (1.30);
- --store names a Service that selects contact-store and maps its gRPC port;
- every Service selects a workload and targets ports it declares; StatefulSets name a headless
  governing Service;
- overlays named prod: auth on, no Namespace object (deleting the overlay must not delete the
  data volumes), a default-deny NetworkPolicy, a policy selecting each workload,
  contact-store's gRPC port reachable only from import-processor and audience-query, metrics ports
  only from a namespace selector, clients' egress to contact-store allowed, an HPA for every
  stateless service (and none for the stateful ones, whose Deployment/StatefulSet then has no
  fixed replicas when autoscaled), a PodDisruptionBudget for each workload;
- overlays named dev: auth off, one replica of everything.

deploy/k8s/tools/*.yaml (hand-applied pods) get the same pod security checks.

kubectl converts the rendered YAML to JSON (`kubectl annotate --local -o json`), so no YAML
library is needed. Without kubectl the test prints SKIP and exits with --skip-code (default 0):
Debian 12 has no kubectl package that renders kustomize v5 (its kubernetes-client 1.20 bundles
kustomize v2).

When the binaries are built (--bin-dir, default $CONTACTS_BIN_DIR), each workload's environment
is also fed to the real binary (`<binary> --help` parses the environment, then exits without
opening a socket or a file), so the servers' own parser has the last word on every value.

Usage: k8s_manifests_test.py [--repo DIR] [--skip-code N] [--bin-dir DIR]
"""

import argparse
import functools
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dockerfile_rules_test  # noqa: E402 (its Dockerfile parser)
import repo_facts  # noqa: E402

OVERLAYS = "deploy/k8s/overlays"
TOOLS = "deploy/k8s/tools"
BASE = "deploy/k8s/base"
RUNTIME_UID = 10001
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
STORE_BINARY = "contact-store"
DOCKERFILE = "deploy/docker/Dockerfile"
OPERATIONS_DOC = "docs/operations.md"

# Shutdown timing (docs/operations.md, "Pod termination").
PRESTOP_MIN_SECONDS = 2        # kube-proxy and clients' resolvers need a moment to drop the endpoint
PRESTOP_SLEEP_ACTION_SINCE = (1, 30)  # lifecycle.preStop.sleep: beta and on by default from 1.30
SLEEP_BINARIES = ("/bin/sleep", "/usr/bin/sleep")  # coreutils, in every Debian image (Essential)
FLUSH_MIB_PER_SECOND = 20      # a slow network volume, for the memtable flush a RocksDB close awaits
SHUTDOWN_MARGIN_SECONDS = 10   # calls that do not check cancellation, checkpoints, process exit


# ---- rendering ---------------------------------------------------------------------------------

class RenderError(Exception):
    pass


def kubectl(args, stdin=None):
    env = dict(os.environ, KUBECONFIG=os.devnull)  # never talk to a cluster
    proc = subprocess.run(["kubectl"] + args, input=stdin, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RenderError(f"kubectl {' '.join(args)} failed:\n{proc.stderr.strip()}")
    return proc.stdout


def to_objects(yaml_text):
    """Rendered YAML -> list of dicts, converted by kubectl itself (offline)."""
    if not yaml_text.strip():
        return []
    out = kubectl(["annotate", "--local", "-f", "-", "-o", "json", "contacts.test/parsed=1"], stdin=yaml_text)
    decoder = json.JSONDecoder()
    objects, i = [], 0
    while True:
        while i < len(out) and out[i].isspace():
            i += 1
        if i >= len(out):
            break
        obj, i = decoder.raw_decode(out, i)
        if obj.get("kind") == "List":
            objects.extend(obj.get("items", []))
        else:
            objects.append(obj)
    for obj in objects:
        annotations = obj.get("metadata", {}).get("annotations", {})
        annotations.pop("contacts.test/parsed", None)
    return objects


def render(path):
    return to_objects(kubectl(["kustomize", path]))


# ---- small helpers -----------------------------------------------------------------------------

def name_of(obj):
    return obj.get("metadata", {}).get("name", "?")


def selector_matches(selector, labels):
    """Kubernetes label selector semantics (matchLabels + matchExpressions); {} matches all."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


_CPU = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")
_MEM = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|K|M|G|T|P|E|m)?$")
_MEM_FACTORS = {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
                "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18, "m": 1e-3}


def quantity(resource, value):
    text = str(value)
    if resource == "cpu":
        m = _CPU.match(text)
        if not m:
            raise ValueError(f"bad cpu quantity {text!r}")
        return float(m.group(1)) / (1000 if m.group(2) else 1)
    m = _MEM.match(text)
    if not m:
        raise ValueError(f"bad memory quantity {text!r}")
    return float(m.group(1)) * _MEM_FACTORS[m.group(2)]


def port_covers(rule_ports, port_number, container_ports):
    """True if a NetworkPolicy rule's ports list admits `port_number` (absent list: every port)."""
    if not rule_ports:
        return True
    names = {p.get("name"): p.get("containerPort") for p in container_ports}
    for p in rule_ports:
        value = p.get("port")
        if value is None:
            return True
        if isinstance(value, str) and not value.isdigit():
            value = names.get(value)
        if value is not None and int(value) <= port_number <= int(p.get("endPort", value)):
            return True
    return False


class Workload:
    def __init__(self, obj, service, where):
        self.where = where  # the overlay, for messages
        self.obj = obj
        self.kind = obj["kind"]
        self.name = name_of(obj)
        self.service = service
        self.pod_spec = obj["spec"]["template"]["spec"]
        self.pod_labels = obj["spec"]["template"].get("metadata", {}).get("labels", {}) or {}
        self.container = next(c for c in self.pod_spec.get("containers", []) if c.get("name") == service.binary)
        self.env = {}   # CONTACTS_* and others, resolved
        self.flags = {}  # flag name -> effective value (env, args or default)

    def __repr__(self):
        return f"{self.where}: {self.label}"

    @property
    def label(self):
        return f"{self.kind}/{self.name}"


# ---- checks --------------------------------------------------------------------------------------

def resolve_env(checks, where, container, configmaps, optional_ok=True):
    env = {}
    for source in container.get("envFrom") or []:
        ref = source.get("configMapRef")
        if ref:
            cm = configmaps.get(ref["name"])
            if cm is None:
                checks.check(ref.get("optional", False), f"{where}: envFrom ConfigMap {ref['name']} is not rendered")
                continue
            prefix = source.get("prefix", "")
            for k, v in (cm.get("data") or {}).items():
                env[prefix + k] = v
        elif source.get("secretRef"):
            checks.fail(f"{where}: flags come from ConfigMaps; API keys from a mounted file, not envFrom Secret")
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "configMapKeyRef" in (item.get("valueFrom") or {}):
            ref = item["valueFrom"]["configMapKeyRef"]
            cm = configmaps.get(ref["name"])
            if checks.check(cm is not None and ref["key"] in (cm.get("data") or {}),
                            f"{where}: env {item['name']} refers to missing {ref['name']}/{ref['key']}"):
                env[item["name"]] = cm["data"][ref["key"]]
        else:
            env[item["name"]] = None  # fieldRef, secretKeyRef: value unknown here
    return env


def check_flags(checks, w):
    service = w.service
    flags = {name: flag.default for name, flag in service.flags.items()}
    by_env = {flag.env: flag for flag in service.flags.values()}
    for key, value in w.env.items():
        if not key.startswith(repo_facts.ENV_PREFIX):
            continue
        flag = by_env.get(key)
        if not checks.check(flag is not None, f"{w}: {key} is not a flag of {service.binary} (it would be ignored)"):
            continue
        if value is None:
            continue
        error = repo_facts.value_error(flag, value)
        checks.check(error is None, f"{w}: {error}")
        flags[flag.name] = value
    args = list(w.container.get("command") or [])[1:] + list(w.container.get("args") or [])
    i = 0
    while i < len(args):
        arg = args[i]
        m = re.fullmatch(r"--?([a-z0-9_]+)(?:=(.*))?", arg)
        if checks.check(m is not None, f"{w}: argument {arg!r} is not a --flag"):
            name, value = m.group(1), m.group(2)
            flag = service.flags.get(name) or (service.flags.get(name[2:]) if name.startswith("no") else None)
            if checks.check(flag is not None, f"{w}: --{name} is not a flag of {service.binary}"):
                if value is None and flag.kind != "Bool" and i + 1 < len(args):
                    i += 1
                    value = args[i]
                if value is None:
                    value = "false" if name != flag.name else "true"
                error = repo_facts.value_error(flag, value)
                checks.check(error is None, f"{w}: {error}")
                flags[flag.name] = value
        i += 1
    w.flags = flags


def check_real_parser(checks, w, bin_dir):
    """The built binary's own parser accepts the workload's environment (`<binary> --help` parses it)."""
    path = os.path.join(bin_dir, w.service.binary) if bin_dir else ""
    if not path or not os.path.isfile(path):
        return False
    env = {k: v for k, v in w.env.items() if k.startswith(repo_facts.ENV_PREFIX) and v is not None}
    code, _, output = repo_facts.run_help(path, env)
    checks.check(code == 0, f"{w}: {w.service.binary} refuses this environment (exit {code}): {output.strip()}")
    return True


def check_ports_and_probes(checks, w):
    service = w.service
    ports = w.container.get("ports") or []
    by_name = {p.get("name"): p for p in ports}
    listen = w.flags["listen"]
    try:
        port = repo_facts.port_of(listen)
    except ValueError as e:
        checks.fail(f"{w}: --listen: {e}")
        return
    checks.check(repo_facts.host_of(listen) in ("0.0.0.0", "[::]"),
                 f"{w}: --listen={listen}: in a pod the server must listen on 0.0.0.0, not loopback")
    checks.check(port == service.grpc_port,
                 f"{w}: --listen port {port} differs from {service.binary}'s documented port {service.grpc_port}")
    grpc_port = by_name.get("grpc", {}).get("containerPort")
    checks.check(grpc_port == port, f"{w}: container port 'grpc' is {grpc_port}, the server listens on {port}")
    declared = {p.get("containerPort") for p in ports}
    metrics = w.flags["metrics_listen"]
    if metrics not in ("", "off"):
        mport = repo_facts.port_of(metrics)
        checks.check(repo_facts.host_of(metrics) in ("0.0.0.0", "[::]"),
                     f"{w}: --metrics_listen={metrics}: Prometheus scrapes from outside the pod, listen on 0.0.0.0")
        checks.check(mport == service.metrics_port,
                     f"{w}: --metrics_listen port {mport} differs from the documented {service.metrics_port}")
        checks.check(by_name.get("metrics", {}).get("containerPort") == mport,
                     f"{w}: container port 'metrics' must be {mport}")
        checks.check(declared == {port, mport}, f"{w}: container ports {sorted(declared)}, server uses {port}, {mport}")
    else:
        checks.check(declared == {port}, f"{w}: container ports {sorted(declared)}, server uses only {port}")
    for probe_name in ("readinessProbe", "livenessProbe", "startupProbe"):
        probe = w.container.get(probe_name)
        if probe is None:
            checks.check(probe_name == "startupProbe", f"{w}: no {probe_name}")
            continue
        if serves_tls(w):
            # Kubernetes' grpc: probe speaks plaintext only: against a TLS port it always fails.
            tcp = probe.get("tcpSocket")
            if checks.check(tcp is not None and "grpc" not in probe,
                            f"{w}: {probe_name}: --tls_cert_file is set and a native grpc: probe cannot speak "
                            f"TLS (the pod would never become ready); use a tcpSocket probe on port {port}"):
                checks.check(tcp.get("port") in (port, "grpc"),
                             f"{w}: {probe_name} probes port {tcp.get('port')}, gRPC is on {port}")
            continue
        grpc = probe.get("grpc")
        if checks.check(grpc is not None, f"{w}: {probe_name} must be a native gRPC probe (grpc.health.v1)"):
            checks.check(grpc.get("port") == port,
                         f"{w}: {probe_name} probes port {grpc.get('port')}, gRPC is on {port}")
            checks.check(grpc.get("service", "") == "",
                         f"{w}: {probe_name} asks for service {grpc.get('service')!r}; the servers report overall "
                         f"health under \"\"")


def check_resources(checks, w, container):
    resources = container.get("resources") or {}
    for kind in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            checks.check(resource in (resources.get(kind) or {}), f"{w}: resources.{kind}.{resource} missing")
    for resource in ("cpu", "memory"):
        try:
            request = quantity(resource, resources["requests"][resource])
            limit = quantity(resource, resources["limits"][resource])
        except (KeyError, TypeError):
            continue
        except ValueError as e:
            checks.fail(f"{w}: {e}")
            continue
        checks.check(request <= limit, f"{w}: {resource} request {resources['requests'][resource]} exceeds limit "
                                       f"{resources['limits'][resource]}")


def check_pod_security(checks, where, pod_spec, container):
    pod_sc = pod_spec.get("securityContext") or {}
    sc = container.get("securityContext") or {}

    def get(key):
        return sc.get(key, pod_sc.get(key))

    checks.check(get("runAsNonRoot") is True, f"{where}: runAsNonRoot must be true")
    checks.check(get("runAsUser") == RUNTIME_UID, f"{where}: runAsUser must be {RUNTIME_UID} (the image's user)")
    checks.check(sc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem must be true")
    checks.check(sc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation must be false")
    checks.check(sc.get("privileged") in (None, False), f"{where}: privileged container")
    drop = (sc.get("capabilities") or {}).get("drop") or []
    checks.check("ALL" in drop, f"{where}: capabilities.drop must include ALL")
    checks.check(not (sc.get("capabilities") or {}).get("add"), f"{where}: adds capabilities")
    seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
    checks.check(seccomp == "RuntimeDefault", f"{where}: seccompProfile must be RuntimeDefault, found {seccomp}")
    checks.check(not pod_spec.get("hostNetwork") and not pod_spec.get("hostPID") and not pod_spec.get("hostIPC"),
                 f"{where}: uses host namespaces")
    volumes = {v["name"]: v for v in pod_spec.get("volumes") or []}
    mounts = {m["mountPath"].rstrip("/") or "/": m for m in container.get("volumeMounts") or []}
    tmp = mounts.get("/tmp")
    checks.check(tmp is not None and "emptyDir" in volumes.get(tmp["name"], {}),
                 f"{where}: a read-only root needs an emptyDir mounted on /tmp")
    checks.check(pod_spec.get("automountServiceAccountToken") is False,
                 f"{where}: the servers never call the Kubernetes API: automountServiceAccountToken: false")


def mount_for(container, path):
    """The volumeMount holding `path` (the longest matching mountPath), or None."""
    best = None
    for m in container.get("volumeMounts") or []:
        mp = m["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if best is None or len(mp) > len(best["mountPath"].rstrip("/")):
                best = m
    return best


def check_storage(checks, w):
    data_dir = w.flags["data_dir"]
    spec = w.obj["spec"]
    claims = {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates") or []}
    volumes = {v["name"]: v for v in w.pod_spec.get("volumes") or []}
    if w.service.uses_data_dir:
        checks.check(w.kind == "StatefulSet", f"{w}: {w.service.binary} keeps state in --data_dir: use a StatefulSet")
        checks.check(spec.get("replicas", 1) == 1,
                     f"{w}: {w.service.binary} is the single writer of its data dir: replicas must be 1, "
                     f"found {spec.get('replicas')}")
        checks.check(data_dir.startswith("/"), f"{w}: --data_dir={data_dir} must be absolute")
        mount = mount_for(w.container, data_dir)
        checks.check(mount is not None and mount["name"] in claims and not mount.get("readOnly"),
                     f"{w}: --data_dir={data_dir} must be on a writable volume from volumeClaimTemplates {claims}")
        for t in spec.get("volumeClaimTemplates") or []:
            checks.check("storage" in (t["spec"].get("resources", {}).get("requests") or {}),
                         f"{w}: volumeClaimTemplate {t['metadata']['name']} has no storage request")
    else:
        checks.check(w.kind == "Deployment", f"{w}: {w.service.binary} is stateless: use a Deployment")
        checks.check(not claims and not any("persistentVolumeClaim" in v for v in volumes.values()),
                     f"{w}: a stateless service has no persistent volumes")
        mount = mount_for(w.container, data_dir) if data_dir.startswith("/") else None
        checks.check(mount is not None and not mount.get("readOnly"),
                     f"{w}: --data_dir={data_dir} should point into a writable mount (the root is read-only)")


def check_secret_file(checks, w, flag, secret, updates):
    """The file --flag names lies on a Secret volume mounted as a folder (the kubelet never updates a
    subPath mount, and the services re-read these files: `updates` says what a restart would then be
    needed for) that uid 10001 can read and nobody else. `secret` names the Secret for messages."""
    path = w.flags[flag]
    mount = mount_for(w.container, path)
    volumes = {v["name"]: v for v in w.pod_spec.get("volumes") or []}
    if not checks.check(mount is not None, f"{w}: --{flag}={path} is not on a mounted volume"):
        return
    volume = volumes.get(mount["name"], {})
    source = volume.get("secret")
    if not checks.check(source is not None, f"{w}: --{flag} must come from a Secret volume"):
        return
    relative = path[len(mount["mountPath"].rstrip("/")) + 1:]
    items = source.get("items")
    if items:
        checks.check(any(i.get("path") == relative for i in items),
                     f"{w}: Secret {source.get('secretName')} items do not provide {relative}")
    checks.check(mount.get("readOnly") is True, f"{w}: mount {secret} readOnly")
    checks.check("subPath" not in mount and "subPathExpr" not in mount,
                 f"{w}: mount {secret} as a folder, not with subPath: a subPath mount never sees the Secret's "
                 f"updates, so {updates} until a restart")
    mode = source.get("defaultMode", 0o644)
    item = next((i for i in items or [] if i.get("path") == relative), {})
    mode = item.get("mode", mode)
    checks.check(mode & 0o007 == 0, f"{w}: --{flag}={path} must not be world-readable (defaultMode {oct(mode)})")
    # The kubelet writes Secret files as root, group root unless the pod sets fsGroup (then
    # group fsGroup, which the container's process also gets as a supplementary group). The
    # server runs as uid 10001, never root, so only the group bits can let it read the file.
    pod_sc = w.pod_spec.get("securityContext") or {}
    checks.check(mode & 0o040 != 0 and pod_sc.get("fsGroup") is not None,
                 f"{w}: uid {RUNTIME_UID} cannot read --{flag}={path}: the Secret's files are owned by "
                 f"root with mode {oct(mode)}, so they need group read and a pod securityContext.fsGroup "
                 f"(found {pod_sc.get('fsGroup')})")


def check_api_keys(checks, w):
    if w.flags["api_keys_file"] == "":
        return False
    check_secret_file(checks, w, "api_keys_file", "the API key Secret",
                      "keys added or revoked would not apply")
    return True


def tls_file_flags(service):
    """The service's TLS file flags (--tls_cert_file, --store_tls_ca_file, ...)."""
    return sorted(name for name in service.flags if re.search(r"(^|_)tls_\w+_file$", name))


def serves_tls(w):
    return w.flags.get("tls_cert_file", "") != ""


def check_tls_files(checks, w):
    """Certificates, keys and CAs come from Secret volumes too: a renewed certificate (cert-manager
    rewrites its Secret) must reach the running server, which re-reads the files."""
    for flag in tls_file_flags(w.service):
        if w.flags[flag] != "":
            check_secret_file(checks, w, flag, "the TLS Secret",
                              "renewed certificates would not be used")


def check_store_tls(checks, w, store):
    """A client's store channel must match how contact-store serves: plaintext against TLS (or the
    reverse), or no client certificate for a store that asks for one, fails every call."""
    if "store_tls_ca_file" not in w.flags:
        return
    client_tls = w.flags["store_tls_ca_file"] != ""
    checks.check(client_tls == serves_tls(store),
                 f"{w}: --store_tls_ca_file is {'set' if client_tls else 'empty'} but {STORE_BINARY} serves "
                 f"{'TLS' if serves_tls(store) else 'plaintext'}: every call to the store would fail")
    if client_tls and store.flags.get("tls_client_ca_file", "") != "":
        checks.check(w.flags.get("store_tls_cert_file", "") != "",
                     f"{w}: {STORE_BINARY} asks for client certificates (--tls_client_ca_file), but "
                     f"--store_tls_cert_file is empty: every call to the store would fail")


def check_grace(checks, w):
    grace_ms = int(w.flags["grace_period_ms"])
    seconds = w.pod_spec.get("terminationGracePeriodSeconds", 30)
    checks.check(seconds * 1000 > grace_ms,
                 f"{w}: terminationGracePeriodSeconds {seconds} s must exceed --grace_period_ms={grace_ms}, or "
                 f"Kubernetes kills calls the server would still finish")


def prestop_delay(checks, w, image_bases, min_kubernetes):
    """Seconds the container's preStop hook delays SIGTERM (0 when it has none that works)."""
    hook = ((w.container.get("lifecycle") or {}).get("preStop")) or {}
    if not checks.check(bool(hook), f"{w}: no lifecycle.preStop: Kubernetes removes a terminating pod from the "
                                    f"Service endpoints while it stops it, so clients are still routed to a server "
                                    f"that refuses new calls; sleep a few seconds before SIGTERM"):
        return 0
    if "sleep" in hook:
        version = min_kubernetes()
        checks.check(version is not None and version >= PRESTOP_SLEEP_ACTION_SINCE,
                     f"{w}: lifecycle.preStop.sleep needs Kubernetes "
                     f"{'.'.join(map(str, PRESTOP_SLEEP_ACTION_SINCE))}, {OPERATIONS_DOC} supports "
                     f"{'.'.join(map(str, version)) if version else '(version not found)'}: exec a sleep binary")
        seconds = hook["sleep"].get("seconds", 0)
    elif "exec" in hook:
        command = hook["exec"].get("command") or []
        if not checks.check(len(command) == 2 and command[0] in SLEEP_BINARIES and command[1].isdigit(),
                            f"{w}: preStop exec {command}: expected [\"/bin/sleep\", \"<seconds>\"] (no shell: "
                            f"the delay must be readable here)"):
            return 0
        base = image_bases.get(w.service.binary)
        checks.check(base is not None and re.match(r"^(docker\.io/library/)?debian:", base) is not None,
                     f"{w}: preStop runs {command[0]}, but the image's {DOCKERFILE} target {w.service.binary} "
                     f"starts from {base or '(no such target)'}, not Debian: it may have no {command[0]}")
        seconds = int(command[1])
    else:
        checks.fail(f"{w}: preStop {sorted(hook)}: use exec of /bin/sleep (or the sleep action) to delay SIGTERM")
        return 0
    checks.check(seconds >= PRESTOP_MIN_SECONDS,
                 f"{w}: preStop sleeps {seconds} s; give the endpoints at least {PRESTOP_MIN_SECONDS} s")
    return seconds


def shutdown_worst_case(w):
    """[(seconds, why)]: what the service may wait for between SIGTERM and exit, in order."""
    steps = [(int(w.flags["grace_period_ms"]) / 1000, f"--grace_period_ms={w.flags['grace_period_ms']} for calls")]
    flag = w.service.job_stop_timeout_flag
    if flag is not None:
        steps.append((int(w.flags[flag]) / 1000, f"--{flag}={w.flags[flag]} for a running job's store call"))
    flush = w.service.rocksdb_close_flush_bytes
    if flush:
        seconds = -(-flush // (FLUSH_MIB_PER_SECOND << 20))
        steps.append((seconds, f"{seconds} s for RocksDB's close to finish a {flush >> 20} MiB memtable flush "
                               f"at {FLUSH_MIB_PER_SECOND} MiB/s"))
    return steps


def check_shutdown(checks, w, image_bases, min_kubernetes):
    delay = prestop_delay(checks, w, image_bases, min_kubernetes)
    try:
        steps = [(delay, f"{delay} s preStop")] + shutdown_worst_case(w)
    except ValueError:
        return  # a flag that is not a number: reported by check_flags
    need = sum(seconds for seconds, _ in steps) + SHUTDOWN_MARGIN_SECONDS
    seconds = w.pod_spec.get("terminationGracePeriodSeconds", 30)
    checks.check(seconds >= need,
                 f"{w}: terminationGracePeriodSeconds {seconds} s < {need:g} s: "
                 + " + ".join(why for _, why in steps) + f" + {SHUTDOWN_MARGIN_SECONDS} s margin; Kubernetes "
                 f"SIGKILLs a shutdown still in progress")


def dockerfile_image_bases(repo):
    """{target name: the outside image its stage chain starts from} of deploy/docker/Dockerfile."""
    path = os.path.join(repo, DOCKERFILE)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        stages, _ = dockerfile_rules_test.parse_dockerfile(f.read())
    return {stage.name: list(stage.chain())[-1].base for stage in stages if stage.name}


def min_kubernetes_version(repo):
    """(major, minor) from "Needs Kubernetes X.Y or later" in docs/operations.md, or None."""
    try:
        text = repo_facts.read(repo, OPERATIONS_DOC)
    except OSError:
        return None
    m = re.search(r"Needs Kubernetes (\d+)\.(\d+) or later", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def service_port_target(svc_port, workload):
    target = svc_port.get("targetPort", svc_port.get("port"))
    for p in workload.container.get("ports") or []:
        if target in (p.get("name"), p.get("containerPort")):
            return p.get("containerPort")
    return None


def check_services(checks, where, objects, workloads):
    services = [o for o in objects if o["kind"] == "Service"]
    by_name = {}
    for svc in services:
        selector = svc["spec"].get("selector") or {}
        targets = [w for w in workloads if selector and selector_matches({"matchLabels": selector}, w.pod_labels)]
        if not checks.check(len(targets) == 1, f"{where}: Service {name_of(svc)} selects "
                                                f"{[t.label for t in targets]}, need exactly one"):
            continue
        by_name[name_of(svc)] = (svc, targets[0])
        for p in svc["spec"].get("ports") or []:
            checks.check(service_port_target(p, targets[0]) is not None,
                         f"{where}: Service {name_of(svc)} port {p.get('name')} targets {p.get('targetPort')}, "
                         f"which {targets[0]} does not declare")
    for w in workloads:
        if w.kind == "StatefulSet":
            governing = by_name.get(w.obj["spec"].get("serviceName"))
            checks.check(governing is not None and governing[1] is w
                         and governing[0]["spec"].get("clusterIP") == "None",
                         f"{w}: serviceName must name a headless Service selecting it")
        checks.check(any(t is w for _, t in by_name.values()), f"{w}: no Service selects it")
    return by_name


def check_store_address(checks, w, services_by_name, store_workload):
    if "store" not in w.service.flags:
        return
    address = w.flags["store"]
    try:
        port = repo_facts.port_of(address)
    except ValueError as e:
        checks.fail(f"{w}: --store: {e}")
        return
    host = repo_facts.host_of(address).split(".")[0]
    entry = services_by_name.get(host)
    if not checks.check(entry is not None and entry[1] is store_workload,
                        f"{w}: --store={address}: no Service {host!r} selecting {STORE_BINARY}"):
        return
    svc, _ = entry
    svc_port = next((p for p in svc["spec"].get("ports") or [] if p.get("port") == port), None)
    store_port = repo_facts.port_of(store_workload.flags["listen"])
    checks.check(svc_port is not None and service_port_target(svc_port, store_workload) == store_port,
                 f"{w}: --store={address}: Service {host} does not map port {port} to {STORE_BINARY}'s gRPC port "
                 f"{store_port}")


def check_batch_ingest(checks, w, store):
    """An import batch of new contacts (two RocksDB entries each, services/contact_store/README.md,
    "Large batches") must reach the store's --ingest_min_entries, or no import is ever ingested as
    SST files (1.4-1.5x slower imports) while the flag says it is on."""
    if "batch_rows" not in w.flags or "ingest_min_entries" not in store.flags:
        return
    try:
        rows = int(w.flags["batch_rows"])
        threshold = int(store.flags["ingest_min_entries"])
    except ValueError:
        return  # reported by check_flags
    checks.check(threshold <= 0 or 2 * rows >= threshold,
                 f"{w}: --batch_rows={rows} sends at most {2 * rows} RocksDB entries of new contacts per batch, "
                 f"below {STORE_BINARY}'s --ingest_min_entries={threshold}: no import batch is ever ingested as "
                 f"SST files")


def secret_name_of(w, path):
    """The Secret whose volume holds `path` in the workload's container, or None."""
    mount = mount_for(w.container, path)
    if mount is None:
        return None
    volume = next((v for v in w.pod_spec.get("volumes") or [] if v["name"] == mount["name"]), {})
    return (volume.get("secret") or {}).get("secretName")


def check_certificates(checks, where, objects, workloads, services_by_name, store):
    """cert-manager Certificates that write a TLS workload's Secret name what clients dial, with the
    usages the workload needs: a name missing or a usage refused reads as UNAVAILABLE at run time."""
    certificates = {o["spec"].get("secretName"): o for o in objects
                    if o["kind"] == "Certificate" and o.get("apiVersion", "").startswith("cert-manager.io/")}
    store_dials = {repo_facts.host_of(w.flags["store"]) for w in workloads
                   if w.flags.get("store_tls_ca_file") and not w.flags.get("store_tls_server_name")}
    for w in workloads:
        if serves_tls(w):
            cert = certificates.get(secret_name_of(w, w.flags["tls_cert_file"]))
            if cert is not None:
                names = set(cert["spec"].get("dnsNames") or [])
                wanted = {n for n, (_, target) in services_by_name.items() if target is w}
                if w is store:
                    wanted |= store_dials
                checks.check(wanted <= names, f"{where}: Certificate/{name_of(cert)} (for {w.label}) lacks dnsNames "
                                              f"{sorted(wanted - names)}: clients dialing them fail the handshake")
                usages = cert["spec"].get("usages")
                checks.check(usages is None or "server auth" in usages,
                             f"{where}: Certificate/{name_of(cert)} serves {w.label}'s TLS port: usages need "
                             f"'server auth'")
        client_cert = w.flags.get("store_tls_cert_file", "")
        if client_cert:
            cert = certificates.get(secret_name_of(w, client_cert))
            if cert is not None:
                usages = cert["spec"].get("usages")
                checks.check(usages is None or "client auth" in usages,
                             f"{where}: Certificate/{name_of(cert)} is {w.label}'s client certificate to "
                             f"{STORE_BINARY}: usages need 'client auth'")


def policy_selects(policy, w):
    return selector_matches(policy["spec"].get("podSelector", {}), w.pod_labels)


def peer_workloads(peer, workloads):
    """Workloads of this namespace a NetworkPolicy peer admits; None when it admits outsiders too."""
    if "ipBlock" in peer or "namespaceSelector" in peer:
        return None
    return {w.service.binary for w in workloads if selector_matches(peer.get("podSelector", {}), w.pod_labels)}


def check_network_policies(checks, where, objects, workloads):
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    checks.check(any(p["spec"].get("podSelector") == {} and "Ingress" in (p["spec"].get("policyTypes") or [])
                     and not p["spec"].get("ingress") and "Egress" in (p["spec"].get("policyTypes") or [])
                     and not p["spec"].get("egress") for p in policies),
                 f"{where}: no default-deny NetworkPolicy (podSelector {{}}, Ingress and Egress, no rules)")
    by_binary = {w.service.binary: w for w in workloads}
    store = by_binary.get(STORE_BINARY)
    clients = {b for b, w in by_binary.items() if "store" in w.service.flags}
    for w in workloads:
        selecting = [p for p in policies if policy_selects(p, w) and "Ingress" in (p["spec"].get("policyTypes") or [])]
        checks.check(bool(selecting), f"{where}: no ingress NetworkPolicy selects {w.label}")
        grpc_port = repo_facts.port_of(w.flags["listen"])
        metrics = w.flags["metrics_listen"]
        ports = w.container.get("ports") or []
        grpc_rules = [r for p in selecting for r in p["spec"].get("ingress") or []
                      if port_covers(r.get("ports"), grpc_port, ports)]
        checks.check(bool(grpc_rules), f"{where}: nothing may reach {w.label}'s gRPC port {grpc_port}")
        if w is store:
            admitted = set()
            for rule in grpc_rules:
                peers = rule.get("from") or []
                if not checks.check(bool(peers), f"{where}: a rule opens {w.label}'s gRPC port to everyone"):
                    continue
                for peer in peers:
                    allowed = peer_workloads(peer, workloads)
                    if checks.check(allowed is not None and allowed <= clients,
                                    f"{w}'s gRPC port admits {allowed or 'other namespaces or IPs'}; only "
                                    f"{sorted(clients)} may call it"):
                        pass
                    admitted |= (allowed or set()) & clients
            checks.check(admitted == clients,
                         f"{where}: {sorted(clients - admitted)} cannot reach {w.label}'s gRPC port")
        if metrics not in ("", "off"):
            mport = repo_facts.port_of(metrics)
            metric_rules = [r for p in selecting for r in p["spec"].get("ingress") or []
                            if port_covers(r.get("ports"), mport, ports) and r.get("ports")]
            checks.check(bool(metric_rules) and all(
                all("namespaceSelector" in peer and "ipBlock" not in peer and peer["namespaceSelector"] != {}
                    for peer in r.get("from") or [{}]) for r in metric_rules),
                f"{w}'s metrics port {mport} must be open only to a monitoring namespace selector")
        if w.service.binary in clients and store is not None:
            egress_policies = [p for p in policies if policy_selects(p, w)
                               and "Egress" in (p["spec"].get("policyTypes") or [])]
            store_port = repo_facts.port_of(store.flags["listen"])
            if egress_policies:
                ok = any(any(STORE_BINARY in (peer_workloads(peer, workloads) or set()) for peer in r.get("to") or [])
                         and port_covers(r.get("ports"), store_port, store.container.get("ports") or [])
                         for p in egress_policies for r in p["spec"].get("egress") or [])
                checks.check(ok, f"{w} may not reach {STORE_BINARY}:{store_port} (egress)")
                dns = any(any(port_covers(r.get("ports"), 53, []) for r in p["spec"].get("egress") or [])
                          for p in egress_policies)
                checks.check(dns, f"{w} cannot resolve {STORE_BINARY} (no egress to port 53)")


def check_autoscaling_and_budgets(checks, where, objects, workloads):
    hpas = [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]
    pdbs = [o for o in objects if o["kind"] == "PodDisruptionBudget"]
    for w in workloads:
        targeting = [h for h in hpas if h["spec"]["scaleTargetRef"].get("name") == w.name
                     and h["spec"]["scaleTargetRef"].get("kind") == w.kind]
        if w.service.uses_data_dir:
            checks.check(not targeting, f"{w} is a single writer and must not be autoscaled")
        else:
            if checks.check(len(targeting) == 1, f"{where}: stateless {w.label} needs a HorizontalPodAutoscaler"):
                hpa = targeting[0]["spec"]
                checks.check(hpa.get("minReplicas", 1) >= 2,
                             f"{where}: HPA of {w.label}: minReplicas >= 2 for availability")
                checks.check(hpa["maxReplicas"] >= hpa.get("minReplicas", 1), f"{where}: HPA of {w.label}: max < min")
                checks.check("replicas" not in w.obj["spec"],
                             f"{w} is autoscaled: leave spec.replicas out, or each apply resets it")
        checks.check(any(selector_matches(p["spec"].get("selector"), w.pod_labels) for p in pdbs),
                     f"{where}: no PodDisruptionBudget covers {w.label}")


NOTED = set()


def check_overlay(checks, where, objects, services, overlay_kind, bin_dir, image_bases, min_kubernetes):
    configmaps = {name_of(o): o for o in objects if o["kind"] == "ConfigMap"}
    workloads = []
    for binary, service in sorted(services.items()):
        matches = [o for o in objects if o["kind"] in WORKLOAD_KINDS
                   and any(c.get("name") == binary for c in o["spec"]["template"]["spec"].get("containers", []))]
        if not checks.check(len(matches) == 1, f"{where}: {len(matches)} workloads run {binary}, need exactly 1"):
            continue
        w = Workload(matches[0], service, where)
        image = w.container.get("image", "")
        checks.check(re.search(r"/" + re.escape(binary) + r"(:[\w.-]+|@sha256:[0-9a-f]{64})$", image) is not None
                     and not image.endswith(":latest"),
                     f"{w} image {image!r} must be .../{binary} with a pinned tag (not latest)")
        w.env = resolve_env(checks, f"{w}", w.container, configmaps)
        check_flags(checks, w)
        if not check_real_parser(checks, w, bin_dir) and binary not in NOTED:
            NOTED.add(binary)
            print(f"NOTE: {binary} not built in {bin_dir or '(no --bin-dir)'}: its parser did not check the env")
        check_ports_and_probes(checks, w)
        check_resources(checks, w, w.container)
        check_pod_security(checks, f"{w}", w.pod_spec, w.container)
        check_storage(checks, w)
        check_tls_files(checks, w)
        check_grace(checks, w)
        check_shutdown(checks, w, image_bases, min_kubernetes)
        workloads.append(w)
    if not workloads:
        return
    auth = {w.service.binary: check_api_keys(checks, w) for w in workloads}
    checks.check(len(set(auth.values())) == 1,
                 f"{where}: --api_keys_file set for {sorted(b for b, on in auth.items() if on)} only; set it for all "
                 f"(keys are forwarded to {STORE_BINARY}) or none")
    services_by_name = check_services(checks, where, objects, workloads)
    store = next((w for w in workloads if w.service.binary == STORE_BINARY), None)
    if checks.check(store is not None, f"{where}: no {STORE_BINARY} workload"):
        for w in workloads:
            check_store_address(checks, w, services_by_name, store)
            check_batch_ingest(checks, w, store)
            check_store_tls(checks, w, store)
        check_certificates(checks, where, objects, workloads, services_by_name, store)
    if overlay_kind == "prod":
        checks.check(all(auth.values()), f"{where}: prod must run with API keys (--api_keys_file)")
        checks.check(not any(o["kind"] == "Namespace" for o in objects),
                     f"{where}: prod must not manage its Namespace: `kubectl delete -k` would delete the data volumes")
        check_network_policies(checks, where, objects, workloads)
        check_autoscaling_and_budgets(checks, where, objects, workloads)
    if overlay_kind == "dev":
        checks.check(not any(auth.values()), f"{where}: dev runs with auth off (empty --api_keys_file)")
        for w in workloads:
            checks.check(w.obj["spec"].get("replicas", 1) == 1, f"{where}: dev runs one replica of {w.label}")
    namespaced = [o for o in objects if o["kind"] not in ("Namespace",)]
    namespaces = {o.get("metadata", {}).get("namespace") for o in namespaced}
    checks.check(len(namespaces) == 1, f"{where}: objects spread over namespaces {namespaces}")


def check_tools(checks, repo, services, prod_objects):
    tools_dir = os.path.join(repo, TOOLS)
    if not os.path.isdir(tools_dir):
        return
    store_images = set()
    claims = set()
    for o in prod_objects:
        if o["kind"] == "StatefulSet":
            for c in o["spec"]["template"]["spec"]["containers"]:
                if c["name"] == STORE_BINARY:
                    store_images.add(c["image"])
                    claims = {f"{t['metadata']['name']}-{name_of(o)}-0"
                              for t in o["spec"].get("volumeClaimTemplates", [])}
    for f in sorted(os.listdir(tools_dir)):
        if not f.endswith(".yaml"):
            continue
        with open(os.path.join(tools_dir, f), encoding="utf-8") as fh:
            objects = to_objects(fh.read())
        for o in objects:
            if o["kind"] != "Pod":
                continue
            where = f"{TOOLS}/{f}: Pod/{name_of(o)}"
            for c in o["spec"]["containers"]:
                check_pod_security(checks, where, o["spec"], c)
                check_resources(checks, f"{where} {c['name']}", c)
                if store_images:
                    checks.check(c["image"] in store_images, f"{where}: image {c['image']} is not prod's "
                                                             f"{STORE_BINARY} image {sorted(store_images)}")
            for v in o["spec"].get("volumes") or []:
                claim = (v.get("persistentVolumeClaim") or {}).get("claimName")
                if claim and claims:
                    checks.check(claim in claims, f"{where}: claim {claim} is not {STORE_BINARY}'s {sorted(claims)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--repo", default=os.path.normpath(os.path.join(here, "..", "..")))
    parser.add_argument("--skip-code", type=int, default=0, help="exit code when kubectl is missing")
    parser.add_argument("--bin-dir", default=os.environ.get("CONTACTS_BIN_DIR", ""),
                        help="built binaries: their own flag parser then checks each workload's env too")
    args = parser.parse_args()

    if shutil.which("kubectl") is None:
        print("SKIP: kubectl is not installed, so the kustomize overlays were not rendered or checked. "
              "Install a kubectl with kustomize v5 (Debian 12 has none) to run this test.")
        return args.skip_code

    checks = repo_facts.Checks("k8s_manifests_test")
    services = repo_facts.services(args.repo)
    overlays_dir = os.path.join(args.repo, OVERLAYS)
    overlays = sorted(d for d in os.listdir(overlays_dir) if os.path.isfile(os.path.join(overlays_dir, d,
                                                                                          "kustomization.yaml")))
    checks.check({"dev", "prod"} <= set(overlays), f"{OVERLAYS}: need dev and prod overlays, found {overlays}")
    prod_objects = []
    image_bases = dockerfile_image_bases(args.repo)
    min_kubernetes = functools.partial(min_kubernetes_version, args.repo)  # read only when needed
    for overlay in overlays:
        where = f"{OVERLAYS}/{overlay}"
        try:
            objects = render(os.path.join(overlays_dir, overlay))
        except RenderError as e:
            checks.fail(f"{where}: does not render: {e}")
            continue
        print(f"{where}: {len(objects)} objects: "
              + ", ".join(sorted({o['kind'] for o in objects})))
        kind = "prod" if overlay.startswith("prod") else "dev" if overlay.startswith("dev") else overlay
        check_overlay(checks, where, objects, services, kind, args.bin_dir, image_bases, min_kubernetes)
        if overlay == "prod":
            prod_objects = objects
    try:
        base = render(os.path.join(args.repo, BASE))
        checks.check(not any(o.get("metadata", {}).get("namespace") for o in base),
                     f"{BASE}: must stay namespace-agnostic (no metadata.namespace)")
    except RenderError as e:
        checks.fail(f"{BASE}: does not render: {e}")
    try:
        check_tools(checks, args.repo, services, prod_objects)
    except RenderError as e:
        checks.fail(f"{TOOLS}: {e}")
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
