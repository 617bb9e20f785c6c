#!/usr/bin/env python3
"""Runs the scripts of scripts/ against stand-ins (no apt, no build, no real service) to check how
they behave where a fresh machine, CI or an operator would notice:

- setup.sh run by a non-root user goes through sudo, whose env_reset drops the caller's
  environment: apt-get must still see DEBIAN_FRONTEND=noninteractive (else debconf may prompt, or
  wait on a CI machine with no input); and a second run with everything installed touches no apt;
- crash_test.sh with NO_BUILD=1 and an absolute BUILD_DIR (an existing build elsewhere) hands the
  test binary the right CONTACTS_BIN_DIR, run from another directory;
- run_local.sh exits non-zero when a service fails to start (a port in use), stopping the others,
  and stops every service on SIGHUP (terminal closed): they run in sessions of their own, so
  nothing else would stop them and the next run would find their ports taken.

Each stand-in is a small shell script on PATH or in a copy of the script's folder. Standard library
only; Linux (setsid, bash).

Usage: scripts_test.py [--repo DIR]
"""

import argparse
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import repo_facts  # noqa: E402


def write_exec(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(repo_facts.ENV_PREFIX) and k not in ("DEBIAN_FRONTEND", "BUILD_DIR", "NO_BUILD",
                                                                   "DATA_DIR", "JOBS")}
    env.update(extra)
    return env


def check_setup(checks, repo, tmp):
    shims = os.path.join(tmp, "setup-shims")
    log = os.path.join(tmp, "apt.log")
    state = os.path.join(tmp, "installed")  # present: every package is installed
    # A non-root user; sudo with Debian's env_reset (only PATH survives); dpkg-query reporting zip
    # missing until apt-get "installs" it.
    write_exec(os.path.join(shims, "id"), '#!/bin/sh\n[ "$1" = -u ] && { echo 1000; exit 0; }\nexec /usr/bin/id "$@"\n')
    write_exec(os.path.join(shims, "sudo"), '#!/bin/sh\nexec env -i PATH="$PATH" "$@"\n')
    write_exec(os.path.join(shims, "dpkg-query"),
               f'#!/bin/sh\nfor a; do p=$a; done\n'
               f'if [ "$p" = zip ] && [ ! -e "{state}" ]; then exit 1; fi\nprintf "install ok installed"\n')
    write_exec(os.path.join(shims, "apt-get"),
               f'#!/bin/sh\necho "DEBIAN_FRONTEND=${{DEBIAN_FRONTEND:-}} $*" >>"{log}"\n'
               f'case "$*" in *install*) : >"{state}";; esac\n')
    env = clean_env(PATH=shims + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"))
    script = os.path.join(repo, "scripts", "setup.sh")
    first = subprocess.run(["bash", script], env=env, cwd=tmp, capture_output=True, text=True, timeout=60,
                           check=False)
    if not checks.check(first.returncode == 0, f"scripts/setup.sh failed (exit {first.returncode}):\n"
                                               f"{first.stdout}{first.stderr}"):
        return
    calls = open(log, encoding="utf-8").read().splitlines() if os.path.exists(log) else []
    installs = [c for c in calls if " install " in f" {c} "]
    checks.check(bool(installs) and all("zip" in c.split() for c in installs),
                 f"scripts/setup.sh: expected one apt-get install of the missing zip, saw {calls}")
    checks.check(bool(calls) and all(c.startswith("DEBIAN_FRONTEND=noninteractive ") for c in calls),
                 f"scripts/setup.sh: apt-get run through sudo lost DEBIAN_FRONTEND=noninteractive (sudo resets "
                 f"the environment), so debconf may prompt on a fresh machine: {calls}")
    os.remove(log)
    second = subprocess.run(["bash", script], env=env, cwd=tmp, capture_output=True, text=True, timeout=60,
                            check=False)
    checks.check(second.returncode == 0 and not os.path.exists(log),
                 f"scripts/setup.sh: a second run with everything installed must not touch apt "
                 f"(exit {second.returncode}): {second.stdout}{second.stderr}")


def check_crash_test(checks, repo, tmp):
    build = os.path.join(tmp, "some-build")  # absolute, outside the repository
    seen = os.path.join(tmp, "bin-dir.txt")
    write_exec(os.path.join(build, "services", "import_processor", "import_processor_integration_test"),
               f'#!/bin/sh\nprintf %s "$CONTACTS_BIN_DIR" >"{seen}"\n')
    elsewhere = os.path.join(tmp, "elsewhere")
    os.makedirs(elsewhere, exist_ok=True)
    proc = subprocess.run(["bash", os.path.join(repo, "scripts", "crash_test.sh")],
                          env=clean_env(NO_BUILD="1", BUILD_DIR=build), cwd=elsewhere, capture_output=True,
                          text=True, timeout=60, check=False)
    if not checks.check(proc.returncode == 0 and os.path.exists(seen),
                        f"scripts/crash_test.sh with NO_BUILD=1 BUILD_DIR={build} did not run the test binary "
                        f"(exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"):
        return
    got = open(seen, encoding="utf-8").read()
    checks.check(os.path.realpath(got) == os.path.realpath(os.path.join(build, "bin")),
                 f"scripts/crash_test.sh with BUILD_DIR={build}: CONTACTS_BIN_DIR is {got!r}, not {build}/bin")


def fake_repo_for_run_local(repo, root, store_exit=None):
    """A copy of scripts/run_local.sh whose build.sh does nothing, and fake services in build/bin:
    each writes "<name> started" and, on SIGTERM, "<name> stopped" to <root>/events, then exits."""
    os.makedirs(os.path.join(root, "scripts"))
    shutil.copy(os.path.join(repo, "scripts", "run_local.sh"), os.path.join(root, "scripts"))
    write_exec(os.path.join(root, "scripts", "build.sh"), "#!/usr/bin/env bash\nexit 0\n")
    events = os.path.join(root, "events")
    for name in ("contact-store", "import-processor", "audience-query"):
        if name == "contact-store" and store_exit is not None:
            body = f'echo "{name} started" >>"{events}"\nsleep 0.5\nexit {store_exit}\n'
        else:
            body = (f'trap \'echo "{name} stopped" >>"{events}"; exit 0\' TERM\n'
                    f'echo $$ >>"{events}.pids"\n'
                    f'echo "{name} started" >>"{events}"\n'
                    'i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done\n'
                    f'echo "{name} timed out" >>"{events}"\n')
        write_exec(os.path.join(root, "build", "bin", name), "#!/bin/bash\n" + body)
    return events


def read_events(path):
    return open(path, encoding="utf-8").read().splitlines() if os.path.exists(path) else []


def wait_for(predicate, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def check_run_local(checks, repo, tmp):
    script_rel = os.path.join("scripts", "run_local.sh")
    # A service that cannot start (exit 3, as with a port in use): the suite is down, so the
    # script must say so with its exit status, after stopping the two others.
    root = os.path.join(tmp, "run-local-fail")
    events = fake_repo_for_run_local(repo, root, store_exit=3)
    proc = subprocess.run(["bash", os.path.join(root, script_rel)], env=clean_env(), cwd=tmp,
                          capture_output=True, text=True, timeout=60, check=False)
    got = read_events(events)
    checks.check(proc.returncode != 0,
                 f"scripts/run_local.sh exits {proc.returncode} when contact-store fails to start; it must fail")
    checks.check("import-processor stopped" in got and "audience-query stopped" in got,
                 f"scripts/run_local.sh: the other services were not stopped after contact-store exited: {got}")

    # SIGHUP (the terminal closed): the services, in sessions of their own, must be stopped too.
    root = os.path.join(tmp, "run-local-hup")
    events = fake_repo_for_run_local(repo, root)
    proc = subprocess.Popen(["bash", os.path.join(root, script_rel)], env=clean_env(), cwd=tmp,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        started = wait_for(lambda: sum(e.endswith(" started") for e in read_events(events)) == 3, 20)
        if checks.check(started, f"scripts/run_local.sh did not start the three fake services: {read_events(events)}"):
            time.sleep(0.3)  # let the script reach its wait
            proc.send_signal(signal.SIGHUP)
            stopped = wait_for(lambda: sum(e.endswith(" stopped") for e in read_events(events)) == 3, 15)
            checks.check(stopped, f"scripts/run_local.sh on SIGHUP left services running: {read_events(events)}")
    finally:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # Fake services that outlived the script would exit by themselves within 30 s; end them now.
        for pid in read_events(events + ".pids"):
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--repo", default=os.path.normpath(os.path.join(here, "..", "..")))
    args = parser.parse_args()
    checks = repo_facts.Checks("scripts_test")
    with tempfile.TemporaryDirectory(prefix="scripts-test-") as tmp:
        check_setup(checks, args.repo, tmp)
        check_crash_test(checks, args.repo, tmp)
        check_run_local(checks, args.repo, tmp)
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
