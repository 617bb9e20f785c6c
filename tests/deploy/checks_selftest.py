#!/usr/bin/env python3
"""Shows that the deploy checks can fail: each scenario breaks a copy of the repository in a known
way and expects the named check to exit non-zero with a message that names the break.

A scenario whose pattern no longer matches fails too ("no longer applies"): update it when the
files it mutates change shape. The unbroken copy must pass the Dockerfile and doc checks (the
unbroken manifests are deploy_k8s_manifests_test's job). The k8s scenario is skipped when kubectl
is missing.

Usage: checks_selftest.py [--repo DIR] [--skip-code N]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKS = {
    "dockerfile": "dockerfile_rules_test.py",
    "k8s": "k8s_manifests_test.py",
    "doc": "operations_doc_test.py",
}

K8S = "deploy/k8s"
BASE_KUSTOMIZATION = f"{K8S}/base/kustomization.yaml"
TLS_COMPONENT = f"{K8S}/components/tls"

# (name, [(file, regex, replacement, count)], {check: [expected fragments]})
SCENARIOS = [
    ("floating base image",
     [("deploy/docker/Dockerfile", r"FROM debian:\S+ AS runtime", "FROM debian:latest AS runtime", 1)],
     {"dockerfile": ["pin a Debian 12 point release"]}),
    ("final target runs as root",
     [("deploy/docker/Dockerfile", r"USER 10001:10001\nENTRYPOINT \[\"/usr/local/bin/audience-query\"\]",
       'USER root\nENTRYPOINT ["/usr/local/bin/audience-query"]', 1)],
     {"dockerfile": ["audience-query", "must run as uid 10001"]}),
    ("apt lists kept",
     [("deploy/docker/Dockerfile", r" \\\n \&\& rm -rf /var/lib/apt/lists/\*\n", "\n", 1)],
     {"dockerfile": ["remove /var/lib/apt/lists/*"]}),
    ("wrong binary copied",
     [("deploy/docker/Dockerfile", r"COPY --from=build (\S+)/audience-query ", r"COPY --from=build \1/contact-store ", 1)],
     {"dockerfile": ["audience-query", "must COPY --from=build"]}),
    ("build stage misses a package of scripts/setup.sh",
     [("deploy/docker/Dockerfile", r" zipcmp ", " ", 1)],
     {"dockerfile": ["scripts/setup.sh installs zipcmp but the image build does not"]}),
    ("ADD of a URL",
     [("deploy/docker/Dockerfile", r"\nWORKDIR /src\n", "\nWORKDIR /src\nADD https://example.com/x.tar.gz /tmp/\n", 1)],
     {"dockerfile": ["ADD of a URL"]}),
    ("metrics port not exposed",
     [("deploy/docker/Dockerfile", r"EXPOSE 50053 9466", "EXPOSE 50053", 1)],
     {"dockerfile": ["EXPOSE [50053]"]}),
    ("service target missing",
     [("deploy/docker/Dockerfile", r" AS audience-query\n", " AS audience\n", 1)],
     {"dockerfile": ["no final target named 'audience-query'"]}),
    ("doc misses a flag, has a stale one, a wrong default, a metric and an RPC",
     [("docs/operations.md", r"\n\| `--store_retry_ms` \|[^\n]*", "", 1),
      ("docs/operations.md", r"\| `--rocksdb_memory_mb` \| `CONTACTS_ROCKSDB_MEMORY_MB` \| `\d+` \|",
       "| `--rocksdb_memory_mb` | `CONTACTS_ROCKSDB_MEMORY_MB` | `1` |", 1),
      ("docs/operations.md", r"(\n\| `--workers` \|[^\n]*)",
       r"\1\n| `--frobnicate` | `CONTACTS_FROBNICATE` | `1` | does nothing at all |", 1),
      ("docs/operations.md", r"`import_jobs`", "`import_job`", 0),
      ("docs/operations.md", r"contacts\.v1\.ContactStore/Backup", "contacts.v1.ContactStore/Backups", 1)],
     {"doc": ["--store_retry_ms", "is not documented", "--rocksdb_memory_mb: default is", "--frobnicate is documented",
              "metric import_jobs", "contacts.v1.ContactStore/Backups"]}),
    ("a flag renamed in the code",
     [("services/contact_store/main.cc", r"\"rocksdb_memory_mb\"", "\"block_cache_mib\"", 1)],
     {"doc": ["--block_cache_mib", "--rocksdb_memory_mb is documented but"],
      "dockerfile": []}),  # the Dockerfile sets no such variable: it must still pass
    ("broken manifests",
     [(BASE_KUSTOMIZATION, r"CONTACTS_WORKERS=", "CONTACTS_WORKER=", 1),
      (BASE_KUSTOMIZATION, r"CONTACTS_LOG_LEVEL=info", "CONTACTS_LOG_LEVEL=verbose", 1),
      (BASE_KUSTOMIZATION, r"CONTACTS_STORE=contact-store:50051", "CONTACTS_STORE=contact-store:50052", 1),
      (f"{K8S}/base/audience-query.yaml", r"readinessProbe:", "xReadinessProbe:", 1),
      (f"{K8S}/base/contact-store.yaml", r"terminationGracePeriodSeconds: \d+", "terminationGracePeriodSeconds: 5", 1),
      (f"{K8S}/base/contact-store.yaml", r"readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", 1),
      (f"{K8S}/base/import-processor.yaml", r"mountPath: /data\n", "mountPath: /var/data\n", 1),
      (f"{K8S}/overlays/prod/kustomization.yaml", r"\n  - hpa.yaml", "", 1),
      (f"{K8S}/overlays/prod/networkpolicy.yaml", r"(\n( +)- import-processor\n)", r"\1\2- contact-store\n", 1),
      (f"{K8S}/overlays/dev/kustomization.yaml", r"(\n( +)- CONTACTS_LOG_LEVEL=debug)",
       r"\1\n\2- CONTACTS_API_KEYS_FILE=/etc/keys/api_keys", 1),
      (f"{K8S}/base/audience-query.yaml", r"\n +fsGroup: 10001\n", "\n", 1),
      (BASE_KUSTOMIZATION, r"CONTACTS_BATCH_ROWS=\d+", "CONTACTS_BATCH_ROWS=2000", 1),
      ("services/contact_store/main.cc", r"\"sync_writes\"", "\"fsync_writes\"", 1)],
     {"k8s": ["CONTACTS_WORKER is not a flag of import-processor",
              "CONTACTS_LOG_LEVEL='verbose' is not one of",
              "--store=contact-store:50052: Service contact-store does not map port 50052",
              "Deployment/audience-query: no readinessProbe",
              "terminationGracePeriodSeconds 5 s must exceed --grace_period_ms=10000",
              "StatefulSet/contact-store: readOnlyRootFilesystem must be true",
              "--data_dir=/data must be on a writable volume",
              "stateless Deployment/audience-query needs a HorizontalPodAutoscaler",
              "only ['audience-query', 'import-processor'] may call it",
              "dev runs with auth off",
              "CONTACTS_SYNC_WRITES is not a flag of contact-store",
              "Deployment/audience-query: uid 10001 cannot read --api_keys_file",
              "--batch_rows=2000 sends at most 4000 RocksDB entries"]}),
    ("API keys Secret mounted with subPath",
     [(f"{K8S}/overlays/prod/api-keys.yaml",
       r"mountPath: /etc/contacts/api-keys\n( +)readOnly: true\n",
       r"mountPath: /etc/contacts/api-keys/api_keys\n\1subPath: api_keys\n\1readOnly: true\n", 1)],
     {"k8s": ["StatefulSet/contact-store: mount the API key Secret as a folder, not with subPath"]}),
    ("TLS component: grpc probes kept, unreadable and subPath Secrets, certificates and flags that do not fit",
     [(f"{TLS_COMPONENT}/kustomization.yaml", r"\n  - path: tcp-probes.yaml", "", 1),
      (f"{TLS_COMPONENT}/secret-mounts.yaml", r"defaultMode: 0440", "defaultMode: 0400", 1),
      (f"{TLS_COMPONENT}/secret-mounts.yaml",
       r"(name: audience-query\n( +)volumeMounts:\n +- name: tls\n +)mountPath: /etc/contacts/tls\n",
       r"\1mountPath: /etc/contacts/tls/tls.crt\n\2    subPath: tls.crt\n", 1),
      (f"{TLS_COMPONENT}/certificates.yaml", r"(secretName: import-processor-tls[\s\S]*?)\n +- client auth", r"\1", 1),
      (f"{TLS_COMPONENT}/certificates.yaml", r"\n +- contact-store\n", "\n", 1),
      (f"{TLS_COMPONENT}/kustomization.yaml",
       r"(name: audience-query-flags[\s\S]*?)\n +- CONTACTS_STORE_TLS_CERT_FILE=[^\n]*", r"\1", 1)],
     {"k8s": ["StatefulSet/contact-store: readinessProbe: --tls_cert_file is set and a native grpc: probe cannot "
              "speak TLS",
              "StatefulSet/contact-store: uid 10001 cannot read --tls_cert_file=/etc/contacts/tls/tls.crt",
              "Deployment/audience-query: mount the TLS Secret as a folder, not with subPath",
              "Certificate/import-processor is StatefulSet/import-processor's client certificate to contact-store: "
              "usages need 'client auth'",
              "Certificate/contact-store (for StatefulSet/contact-store) lacks dnsNames ['contact-store']",
              "Deployment/audience-query: contact-store asks for client certificates (--tls_client_ca_file), but "
              "--store_tls_cert_file is empty"]}),
]


def copy_repo(repo, dest):
    def sources_only(directory, names):
        return [n for n in names if not os.path.isdir(os.path.join(directory, n))
                and not n.endswith((".cc", ".h", ".txt", ".proto", ".py"))]

    for d in ("common", "services", "proto"):
        shutil.copytree(os.path.join(repo, d), os.path.join(dest, d), ignore=sources_only)
    shutil.copytree(os.path.join(repo, "deploy"), os.path.join(dest, "deploy"))
    shutil.copytree(os.path.join(repo, "tests", "deploy"), os.path.join(dest, "tests", "deploy"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    os.makedirs(os.path.join(dest, "docs"))
    shutil.copy(os.path.join(repo, "docs", "operations.md"), os.path.join(dest, "docs"))
    shutil.copy(os.path.join(repo, "CMakeLists.txt"), dest)
    os.makedirs(os.path.join(dest, "scripts"))
    shutil.copy(os.path.join(repo, "scripts", "setup.sh"), os.path.join(dest, "scripts"))


def mutate(root, path, pattern, replacement, count):
    full = os.path.join(root, path)
    with open(full, encoding="utf-8") as f:
        text = f.read()
    new, n = re.subn(pattern, replacement, text, count=count)
    if n == 0:
        return f"{path}: /{pattern}/ no longer applies; update {os.path.basename(__file__)}"
    with open(full, "w", encoding="utf-8") as f:
        f.write(new)
    return None


def run_check(check, root):
    proc = subprocess.run([sys.executable, os.path.join(HERE, CHECKS[check]), "--repo", root],
                          capture_output=True, text=True, check=False, env=dict(os.environ, CONTACTS_BIN_DIR=""))
    return proc.returncode, proc.stdout + proc.stderr


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=os.path.normpath(os.path.join(HERE, "..", "..")))
    parser.add_argument("--skip-code", type=int, default=0, help="unused unless every scenario is skipped")
    args = parser.parse_args()
    have_kubectl = shutil.which("kubectl") is not None
    failures, passed, skipped = [], 0, 0
    with tempfile.TemporaryDirectory(prefix="deploy-selftest-") as tmp:
        pristine = os.path.join(tmp, "pristine")
        copy_repo(args.repo, pristine)
        # The unbroken k8s manifests are deploy_k8s_manifests_test's job (rendering is the slow part).
        for check in ("dockerfile", "doc"):
            code, out = run_check(check, pristine)
            if code != 0:
                failures.append(f"unbroken copy: {check} check fails:\n{out}")
            else:
                passed += 1
        for index, (name, mutations, expectations) in enumerate(SCENARIOS):
            if "k8s" in expectations and not have_kubectl:
                print(f"SKIP: scenario '{name}' needs kubectl")
                skipped += 1
                continue
            root = os.path.join(tmp, f"scenario{index}")
            copy_repo(args.repo, root)
            problems = [p for p in (mutate(root, *m) for m in mutations) if p]
            if problems:
                failures.extend(f"scenario '{name}': {p}" for p in problems)
                continue
            for check, fragments in expectations.items():
                code, out = run_check(check, root)
                if not fragments:
                    ok = code == 0
                    why = f"{check} check should still pass:\n{out}"
                else:
                    missing = [f for f in fragments if f not in out]
                    ok = code != 0 and not missing
                    why = (f"{check} check exited {code}, missing {missing} in its output:\n{out}")
                if ok:
                    passed += 1
                else:
                    failures.append(f"scenario '{name}': {why}")
    for f in failures:
        print(f"FAIL: {f}")
    print(f"checks_selftest: {passed} passed, {len(failures)} failed, {skipped} skipped")
    if failures:
        return 1
    return args.skip_code if passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
