#!/usr/bin/env python3
"""Checks deploy/docker/Dockerfile against the rules it must keep and against the code.

hadolint is not packaged in Debian 12, so this test checks the rules we rely on:

- every FROM of an outside image names Debian 12 with a pinned tag (a point release or a digest,
  never "latest" or a floating tag) and every other FROM names an earlier stage;
- no ADD of a URL (downloads belong in a checked RUN, or better, a Debian package);
- every apt-get install runs in the same RUN as apt-get update, with -y and
  --no-install-recommends, and removes /var/lib/apt/lists/* afterwards;
- each service binary CMake builds (add_executable(<name> main.cc)) has a final target of that
  name that COPYs exactly that binary from the build stage's CMake binary dir (<build>/bin), which
  the build stage builds with --target; runs it as ENTRYPOINT; runs as uid 10001 (not root);
  EXPOSEs the service's default gRPC and metrics ports and sets CONTACTS_LISTEN /
  CONTACTS_METRICS_LISTEN to 0.0.0.0 on them; sets only CONTACTS_* variables that are flags of the
  service; declares a VOLUME holding CONTACTS_DATA_DIR when the service writes to --data_dir;
- the build stage installs every package of scripts/setup.sh except the developer-only ones
  (NOT_NEEDED_TO_BUILD), so the image builds with what CI builds with;
- a Dockerfile.dockerignore next to the Dockerfile keeps build trees out of the context;
- when the binaries are built (--bin-dir, default $CONTACTS_BIN_DIR): every shared library a
  binary needs comes from a package the target installs (or its dependencies, or the Debian base),
  and every package a final target installs is needed by its binary (runtime libraries only);
- any other binary copied from <build>/bin into a stage (contactsctl, in the shared runtime stage)
  is built by the build stage with --target and, when built, finds every shared library it needs
  in that stage's packages.
  Uses readelf, ldd and dpkg from the build machine, which has the same Debian 12 packages.

Usage: dockerfile_rules_test.py [--repo DIR] [--bin-dir DIR]
"""

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import repo_facts  # noqa: E402

DOCKERFILE = "deploy/docker/Dockerfile"
RUNTIME_UID = "10001"
SETUP_SCRIPT = "scripts/setup.sh"
# Packages of scripts/setup.sh the image build does without, and why.
NOT_NEEDED_TO_BUILD = {
    "ccache": "compiler cache for developers",
    "git": "the context is a checkout already",
    "zip": "command-line zip for tests",
    "postgresql": "benchmark comparison only",
    "python3": "test scripts only",
    "openssl": "the TLS integration test makes its certificates with it",
}
# In every debian:12 image already (Priority: required/important, or pulled in by apt).
BASE_IMAGE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"}


class Instruction:
    def __init__(self, line, keyword, args):
        self.line = line
        self.keyword = keyword
        self.args = args

    def __repr__(self):
        return f"line {self.line}: {self.keyword} {self.args}"


class Stage:
    def __init__(self, index, base, name, line):
        self.index = index
        self.base = base
        self.name = name
        self.line = line
        self.instructions = []
        self.parent = None  # the Stage it builds on, if its base is an earlier stage

    def chain(self):
        """This stage and the stages it builds on, nearest first."""
        stage = self
        while stage is not None:
            yield stage
            stage = stage.parent

    def __repr__(self):
        return f"stage {self.name or self.index} (line {self.line})"


def parse_dockerfile(text):
    """Stages with their instructions; continuation lines joined, comments and blanks dropped."""
    instructions = []
    pending, start = "", None
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction are dropped by Docker too
        if start is None:
            start = number
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        pending += raw
        keyword, _, args = pending.strip().partition(" ")
        instructions.append(Instruction(start, keyword.upper(), args.strip()))
        pending, start = "", None
    stages = []
    by_name = {}
    for inst in instructions:
        if inst.keyword == "FROM":
            words = inst.args.split()
            words = [w for w in words if not w.startswith("--platform")]
            base = words[0]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stage = Stage(len(stages), base, name, inst.line)
            stage.parent = by_name.get(base)
            stages.append(stage)
            if name:
                by_name[name] = stage
        elif stages:
            stages[-1].instructions.append(inst)
    return stages, instructions


def env_pairs(args):
    """ENV key=value ... (or the legacy ENV key value) -> [(key, value)]."""
    words = shlex.split(args)
    if words and "=" not in words[0]:
        return [(words[0], " ".join(words[1:]))]
    return [tuple(w.split("=", 1)) for w in words]


def exec_form(args):
    """["a", "b"] -> ["a", "b"]; shell form -> None."""
    args = args.strip()
    if not args.startswith("["):
        return None
    return re.findall(r'"((?:[^"\\]|\\.)*)"', args)


def apt_packages(run_args):
    """Packages named by apt-get install in a RUN (options dropped)."""
    packages = []
    for m in re.finditer(r"apt-get\s+install\s+(.*?)(?:&&|;|\|\||$)", run_args):
        for word in m.group(1).split():
            if not word.startswith("-"):
                packages.append(word)
    return packages


def check_from(checks, stages):
    names = set()
    for stage in stages:
        if stage.parent is not None:
            names.add(stage.name)
            continue
        base = stage.base
        checks.check("$" not in base, f"{stage}: FROM {base}: resolve build args to a literal pinned image")
        image, _, digest = base.partition("@")
        repo, _, tag = image.partition(":")
        pinned = bool(digest.startswith("sha256:")) or bool(re.fullmatch(r"12\.\d+(-slim)?", tag))
        checks.check(repo in ("debian", "docker.io/library/debian"),
                     f"{stage}: FROM {base}: the suite is built and run on Debian 12 (bookworm)")
        checks.check(pinned, f"{stage}: FROM {base}: pin a Debian 12 point release (debian:12.N-slim) or a "
                             f"digest, not a floating tag")
        if stage.name:
            names.add(stage.name)


def check_add_and_apt(checks, instructions):
    for inst in instructions:
        if inst.keyword == "ADD":
            checks.check(not re.search(r"(https?|ftp)://|git@", inst.args),
                         f"{inst}: ADD of a URL (download in a checked RUN or use a package)")
        if inst.keyword == "RUN" and re.search(r"apt-get\s+install", inst.args):
            run = inst.args
            checks.check(re.search(r"apt-get\s+update", run) is not None,
                         f"line {inst.line}: apt-get install without apt-get update in the same RUN")
            checks.check(re.search(r"apt-get\s+install\s+(-\S+\s+)*-y\b|apt-get\s+install.*\s-y\b", run) is not None,
                         f"line {inst.line}: apt-get install needs -y")
            checks.check("--no-install-recommends" in run,
                         f"line {inst.line}: apt-get install needs --no-install-recommends")
            checks.check(re.search(r"rm\s+-rf\s+/var/lib/apt/lists/\*", run) is not None,
                         f"line {inst.line}: remove /var/lib/apt/lists/* in the RUN that installs")
            if "rm -rf /var/lib/apt/lists" in run:
                checks.check(run.rfind("rm -rf /var/lib/apt/lists") > run.rfind("apt-get install"),
                             f"line {inst.line}: apt lists removed before the install")
        if inst.keyword == "RUN":
            checks.check(not re.search(r"\bcurl\b[^|]*\|\s*(ba)?sh|\bwget\b[^|]*\|\s*(ba)?sh", inst.args),
                         f"line {inst.line}: piping a download into a shell")


def effective(stage, keyword):
    """The last `keyword` instruction that applies to `stage` (own first, then its bases)."""
    for s in stage.chain():
        found = [i for i in s.instructions if i.keyword == keyword]
        if found:
            return found[-1]
    return None


def effective_env(stage):
    env = {}
    for s in reversed(list(stage.chain())):
        for inst in s.instructions:
            if inst.keyword == "ENV":
                env.update(env_pairs(inst.args))
    return env


def build_stage_facts(checks, stages):
    """(build stage, CMake binary dir, set of --target names) from the stage that runs cmake."""
    for stage in stages:
        for inst in stage.instructions:
            if inst.keyword != "RUN":
                continue
            m = re.search(r"cmake\b[^&;]*?-B\s*(\S+)", inst.args)
            if not m:
                continue
            build_dir = m.group(1).rstrip("/")
            targets = set()
            for tm in re.finditer(r"cmake\s+--build\s+(\S+)((?:\s+(?!&&)\S+)*)", inst.args):
                checks.check(tm.group(1).rstrip("/") == build_dir,
                             f"line {inst.line}: cmake --build {tm.group(1)} is not the configured {build_dir}")
                words = tm.group(2).split()
                if "--target" in words:
                    for w in words[words.index("--target") + 1:]:
                        if w.startswith("-"):
                            break
                        targets.add(w)
            return stage, build_dir, targets
    checks.fail("no RUN configures CMake with -B <dir> (the build stage)")
    return None, None, set()


def check_service_targets(checks, stages, services, build_stage, build_dir, targets):
    by_name = {s.name: s for s in stages if s.name}
    for binary, service in sorted(services.items()):
        stage = by_name.get(binary)
        if not checks.check(stage is not None, f"no final target named {binary!r} (docker build --target {binary})"):
            continue
        checks.check(binary in targets, f"the build stage does not build --target {binary}")
        copies = [i for i in stage.instructions if i.keyword == "COPY"]
        binary_copies = []
        for inst in copies:
            words = inst.args.split()
            from_stage = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
            paths = [w for w in words if not w.startswith("--")]
            checks.check(from_stage is not None,
                         f"{stage}: {inst}: a final target copies only from the build stage, not the context")
            if from_stage == (build_stage.name if build_stage else None) and len(paths) == 2:
                binary_copies.append(paths)
        expected_source = f"{build_dir}/bin/{binary}"
        checks.check(len(binary_copies) == 1 and binary_copies[0][0] == expected_source,
                     f"{stage}: must COPY --from={build_stage.name if build_stage else '?'} {expected_source} "
                     f"(CMake puts {binary} in <build>/bin), found {binary_copies}")
        installed_at = binary_copies[0][1] if binary_copies else None
        entry = effective(stage, "ENTRYPOINT")
        entry_words = exec_form(entry.args) if entry else None
        checks.check(entry_words is not None and installed_at is not None and entry_words[:1] == [installed_at],
                     f"{stage}: ENTRYPOINT must be the exec form of the copied binary {installed_at}, "
                     f"found {entry.args if entry else None}")
        user = effective(stage, "USER")
        uid = user.args.split(":")[0] if user else "root"
        checks.check(uid == RUNTIME_UID,
                     f"{stage}: must run as uid {RUNTIME_UID} (USER {RUNTIME_UID}:{RUNTIME_UID}), found USER {uid}")
        last_user_in_stage = [i for i in stage.instructions if i.keyword == "USER"]
        checks.check(not last_user_in_stage or last_user_in_stage[-1].args.split(":")[0] == RUNTIME_UID,
                     f"{stage}: the last USER of the stage must be {RUNTIME_UID}")
        exposed = set()
        for s in stage.chain():
            for inst in s.instructions:
                if inst.keyword == "EXPOSE":
                    exposed |= {int(p.split("/")[0]) for p in inst.args.split()}
        want = {service.grpc_port, service.metrics_port}
        checks.check(exposed == want, f"{stage}: EXPOSE {sorted(exposed)}, the service's ports are {sorted(want)}")
        env = effective_env(stage)
        for key, value in env.items():
            if not key.startswith(repo_facts.ENV_PREFIX):
                continue
            flag = next((f for f in service.flags.values() if f.env == key), None)
            if checks.check(flag is not None, f"{stage}: ENV {key} is not a flag of {binary}"):
                error = repo_facts.value_error(flag, value)
                checks.check(error is None, f"{stage}: {error}")
        for flag_name, port in (("listen", service.grpc_port), ("metrics_listen", service.metrics_port)):
            env_name = service.flags[flag_name].env
            value = env.get(env_name, "")
            checks.check(value == f"0.0.0.0:{port}",
                         f"{stage}: ENV {env_name} must be 0.0.0.0:{port} (a container serves on every interface), "
                         f"found {value!r}")
        volumes = set()
        for s in stage.chain():
            for inst in s.instructions:
                if inst.keyword == "VOLUME":
                    words = exec_form(inst.args) or inst.args.split()
                    volumes |= {w.rstrip("/") for w in words}
        data_dir = env.get("CONTACTS_DATA_DIR", service.flags["data_dir"].default)
        if service.uses_data_dir:
            checks.check(any(data_dir == v or data_dir.startswith(v + "/") for v in volumes),
                         f"{stage}: {binary} writes --data_dir={data_dir}: declare it as a VOLUME (have {volumes})")
            checks.check(data_dir.startswith("/"), f"{stage}: CONTACTS_DATA_DIR must be absolute, found {data_dir}")
        else:
            checks.check(not volumes, f"{stage}: {binary} keeps no files (never reads --data_dir): no VOLUME")
    return by_name


def setup_packages(repo):
    """The package list of scripts/setup.sh (the packages=( ... ) array)."""
    with open(os.path.join(repo, SETUP_SCRIPT), encoding="utf-8") as f:
        m = re.search(r"^packages=\((.*?)^\)", f.read(), flags=re.S | re.M)
    if not m:
        return None
    words = []
    for line in m.group(1).splitlines():
        words += line.split("#")[0].split()
    return words


def check_build_packages(checks, repo, build_stage):
    """The build stage installs what scripts/setup.sh installs for building (CI builds with those)."""
    packages = setup_packages(repo)
    if not checks.check(packages, f"{SETUP_SCRIPT}: no packages=( ... ) list found"):
        return
    installed = {p for s in build_stage.chain() for i in s.instructions if i.keyword == "RUN"
                 for p in apt_packages(i.args)}
    for package in packages:
        if package in NOT_NEEDED_TO_BUILD:
            continue
        checks.check(package in installed,
                     f"{build_stage}: {SETUP_SCRIPT} installs {package} but the image build does not (add it, or "
                     f"list it in NOT_NEEDED_TO_BUILD with the reason)")


def check_dockerignore(checks, repo):
    path = os.path.join(repo, DOCKERFILE + ".dockerignore")
    if not checks.check(os.path.isfile(path), f"missing {DOCKERFILE}.dockerignore"):
        return
    lines = [line.strip() for line in open(path, encoding="utf-8") if line.strip() and not line.startswith("#")]
    checks.check(lines[:1] == ["**"], f"{DOCKERFILE}.dockerignore should start from '**' (send only what is listed)")
    checks.check(any(re.fullmatch(r"(\*\*/)?build\*/?", line) for line in lines),
                 f"{DOCKERFILE}.dockerignore must exclude build*/ folders")


# ---- runtime libraries -------------------------------------------------------------------------

def run(argv):
    return subprocess.run(argv, check=False, capture_output=True, text=True).stdout


_owner_cache = {}


def owning_packages(paths):
    """{path: package} for files installed by dpkg. One `dpkg -S` for all paths not seen yet:
    dpkg reads every package's file list per call, so a call per library took minutes."""
    missing = [p for p in paths if p not in _owner_cache]
    if missing:
        for p in missing:
            _owner_cache[p] = None
        for line in run(["dpkg", "-S"] + missing).splitlines():
            owner, sep, path = line.partition(": ")
            if sep and path.strip() in _owner_cache:
                _owner_cache[path.strip()] = owner.split(":")[0].split(",")[0].strip()
    return {p: _owner_cache[p] for p in paths}


def needed_packages(binary_path):
    """{package: [sonames]} for the DT_NEEDED libraries of a binary, via ldd and dpkg."""
    sonames = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", run(["readelf", "-d", binary_path]))
    # ldd resolves each soname the way the loader would (right architecture, right path).
    cache = dict(re.findall(r"^\s*(\S+) => (/\S+)", run(["ldd", binary_path]), flags=re.M))
    candidates = {}
    for soname in sonames:
        path = cache.get(soname)
        candidates[soname] = [path, "/usr" + path, os.path.realpath(path)] if path else []
    owners = owning_packages(sorted({c for cs in candidates.values() for c in cs}))
    result = {}
    for soname in sonames:
        package = next((owners[c] for c in candidates[soname] if owners.get(c)), None)
        result.setdefault(package or f"?{soname}", []).append(soname)
    return result


def depends_closure(packages):
    """The packages plus everything they depend on (recursively), as installed on this machine."""
    seen = set()
    todo = list(packages)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        deps = run(["dpkg-query", "-W", "-f=${Depends},${Pre-Depends}", p])
        for alternative in deps.split(","):
            name = alternative.split("|")[0].strip().split(" ")[0].split(":")[0]
            if name and name not in seen:
                todo.append(name)
    return seen


def check_runtime_libraries(checks, stages, services, bin_dir):
    tools = [shutil.which(t) for t in ("readelf", "ldd", "dpkg", "dpkg-query")]
    if not all(tools):
        print("NOTE: runtime library check skipped: readelf/ldd/dpkg not found")
        return
    by_name = {s.name: s for s in stages if s.name}
    need_by_stage = {}
    for binary in sorted(services):
        path = os.path.join(bin_dir, binary) if bin_dir else None
        stage = by_name.get(binary)
        if stage is None:
            continue
        if not path or not os.path.isfile(path):
            print(f"NOTE: runtime library check of {binary} skipped: {path or '(no --bin-dir)'} not built")
            continue
        installed = []
        for s in stage.chain():
            for inst in s.instructions:
                if inst.keyword == "RUN":
                    installed += apt_packages(inst.args)
        closure = depends_closure(installed) | BASE_IMAGE_PACKAGES
        needed = needed_packages(path)
        for package, sonames in sorted(needed.items()):
            checks.check(package in closure,
                         f"{binary}: needs {', '.join(sonames)} from {package}, which target {binary} does not install")
        for s in stage.chain():
            need_by_stage.setdefault(s.name, set()).update(needed)
        own = [p for inst in stage.instructions if inst.keyword == "RUN" for p in apt_packages(inst.args)]
        for package in own:
            checks.check(package in needed,
                         f"{binary}: installs {package}, which {binary} does not link (runtime libraries only)")
    # Shared runtime stages: every package must be needed by at least one service built on them.
    for stage in stages:
        if stage.name in services or stage.name not in need_by_stage:
            continue
        users = [b for b in services if b in by_name and stage in by_name[b].chain()]
        checked = [b for b in users if bin_dir and os.path.isfile(os.path.join(bin_dir, b))]
        if len(checked) != len(users):
            continue  # cannot tell what is unused without every binary built on it
        for inst in stage.instructions:
            if inst.keyword == "RUN":
                for package in apt_packages(inst.args):
                    checks.check(package in need_by_stage[stage.name],
                                 f"{stage}: installs {package}, which no service built on it links")


def check_tool_binaries(checks, stages, services, build_stage, build_dir, targets, bin_dir):
    """Binaries besides the services that a stage copies from <build>/bin: built, and their libraries there."""
    if build_stage is None:
        return
    tools_present = all(shutil.which(t) for t in ("readelf", "ldd", "dpkg", "dpkg-query"))
    for stage in stages:
        for inst in stage.instructions:
            if inst.keyword != "COPY":
                continue
            words = inst.args.split()
            from_stage = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
            paths = [w for w in words if not w.startswith("--")]
            if from_stage != build_stage.name or len(paths) != 2 or not paths[0].startswith(f"{build_dir}/bin/"):
                continue
            binary = paths[0][len(f"{build_dir}/bin/"):]
            if binary in services:
                continue  # check_service_targets and check_runtime_libraries
            checks.check(binary in targets, f"{stage}: copies {binary}, which the build stage does not build --target")
            path = os.path.join(bin_dir, binary) if bin_dir else None
            if not tools_present or not path or not os.path.isfile(path):
                print(f"NOTE: runtime library check of {binary} skipped: {path or '(no --bin-dir)'} not built")
                continue
            installed = [p for s in stage.chain() for i in s.instructions if i.keyword == "RUN"
                         for p in apt_packages(i.args)]
            closure = depends_closure(installed) | BASE_IMAGE_PACKAGES
            for package, sonames in sorted(needed_packages(path).items()):
                checks.check(package in closure,
                             f"{stage}: {binary} needs {', '.join(sonames)} from {package}, which {stage} does not "
                             "install")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--repo", default=os.path.normpath(os.path.join(here, "..", "..")))
    parser.add_argument("--bin-dir", default=os.environ.get("CONTACTS_BIN_DIR", ""))
    args = parser.parse_args()

    checks = repo_facts.Checks("dockerfile_rules_test")
    services = repo_facts.services(args.repo)
    with open(os.path.join(args.repo, DOCKERFILE), encoding="utf-8") as f:
        stages, instructions = parse_dockerfile(f.read())
    if not checks.check(len(stages) >= 2, f"{DOCKERFILE}: expected a multi-stage build, found {len(stages)} stage(s)"):
        return checks.finish()
    check_from(checks, stages)
    check_add_and_apt(checks, instructions)
    build_stage, build_dir, targets = build_stage_facts(checks, stages)
    if build_stage is not None:
        check_service_targets(checks, stages, services, build_stage, build_dir, targets)
        check_build_packages(checks, args.repo, build_stage)
        checks.check(effective(stages[-1], "USER") is not None and stages[-1].name in services,
                     "the last stage (the default target) must be a service target running as non-root")
    check_dockerignore(checks, args.repo)
    check_runtime_libraries(checks, stages, services, args.bin_dir)
    check_tool_binaries(checks, stages, services, build_stage, build_dir, targets, args.bin_dir)
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
