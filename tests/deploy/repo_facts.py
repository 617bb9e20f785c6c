"""What the code says about each service, read from the sources so deploy checks follow the code.

The deployment checks (Dockerfile, Kubernetes manifests, docs/operations.md) compare what they
deploy or document against these facts, extracted by regex:

- the services: every add_executable(<binary> main.cc) in services/*/CMakeLists.txt;
- each service's flags: the common ones registered in common/config/flags.cc
  (RegisterCommonFlags), with the defaults each main.cc passes to it, plus the service's own
  flags.String/Int/Bool calls in its main.cc, and the store client flags (RegisterStoreClientFlags)
  when its main.cc calls that;
- the default gRPC and metrics ports (from the --listen and --metrics_listen defaults);
- whether the service writes to --data_dir at all (main.cc reads *common.data_dir);
- the Prometheus metric families each service registers (.Name("...") after a Build* call);
- what its shutdown waits for after the gRPC drain (--grace_period_ms): jobs that stop at a batch
  boundary (a JobManager's Shutdown() after WaitForShutdownSignal(), whose running store call is
  bounded by the flag its GrpcStoreClient takes as timeout), and the largest memtable flush its
  RocksDB close may wait for (write_buffer_size x max_write_buffer_number in its sources).

Standard library only. Extraction fails loudly (ExtractionError) rather than return too little.
"""

import os
import re

ENV_PREFIX = "CONTACTS_"


class ExtractionError(Exception):
    pass


class Flag:
    def __init__(self, name, kind, default, source):
        self.name = name        # e.g. "listen"
        self.kind = kind        # "String", "Int" or "Bool"
        self.default = default  # the default as the server prints it ("info", "10000", "false")
        self.source = source    # repo-relative file that registers it
        self.allowed = None     # for string flags with a fixed vocabulary: the accepted values

    @property
    def env(self):
        return ENV_PREFIX + self.name.upper()

    def __repr__(self):
        return f"Flag({self.name!r}, {self.kind}, {self.default!r})"


class Service:
    def __init__(self, binary, directory):
        self.binary = binary        # "contact-store"
        self.directory = directory  # repo-relative "services/contact_store"
        self.flags = {}             # name -> Flag
        self.uses_data_dir = False
        self.metrics = []           # metric family names registered by this service's own code
        # Shutdown, after the gRPC drain: the flag bounding the store call a stopping job waits
        # for (None: no jobs), and the bytes of the largest memtable flush RocksDB's close may
        # wait for (0: no RocksDB).
        self.job_stop_timeout_flag = None
        self.rocksdb_close_flush_bytes = 0

    def default_port(self, flag_name):
        return port_of(self.flags[flag_name].default)

    @property
    def grpc_port(self):
        return self.default_port("listen")

    @property
    def metrics_port(self):
        return self.default_port("metrics_listen")


def port_of(address):
    """"HOST:PORT" or "[V6]:PORT" -> int PORT. Raises ValueError for anything else."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"{address!r} is not HOST:PORT")
    return int(port)


def host_of(address):
    host, _, _ = address.rpartition(":")
    return host


def read(repo, rel):
    with open(os.path.join(repo, rel), encoding="utf-8") as f:
        return f.read()


def strip_cxx_comments(text):
    # Good enough for our sources: drop // comments that are not inside a string literal, and
    # /* */ blocks. Keeps string literals intact.
    out = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def cxx_default(expr, kind, arguments=None):
    """The text a C++ default expression stands for, as the server prints it."""
    expr = expr.strip()
    m = re.fullmatch(r"std::move\((\w+)\)", expr)
    if m or re.fullmatch(r"[a-z_]\w*", expr) and expr not in ("true", "false"):
        name = m.group(1) if m else expr
        if arguments is None or name not in arguments:
            raise ExtractionError(f"default {expr!r} names a parameter with no known value")
        return arguments[name]
    if kind == "String":
        m = re.fullmatch(r'"((?:[^"\\]|\\.)*)"', expr)
        if not m:
            raise ExtractionError(f"cannot read string default {expr!r}")
        return m.group(1)
    if kind == "Bool":
        if expr not in ("true", "false"):
            raise ExtractionError(f"cannot read bool default {expr!r}")
        return expr
    # Int: a literal, int64_t{N}, optionally shifted or multiplied by literals.
    value_expr = re.sub(r"(?:u?int64_t|size_t)\{(\d+)\}", r"\1", expr)
    value_expr = re.sub(r"(\d+)(?:LL|ULL|L|UL|U)\b", r"\1", value_expr)
    if not re.fullmatch(r"[\d\s<>*+()-]+", value_expr):
        raise ExtractionError(f"cannot read int default {expr!r}")
    return str(int(eval(value_expr, {"__builtins__": {}})))  # digits and operators only


_FLAG_CALL = r"\b{var}\s*\.\s*(String|Int|Bool)\(\s*\"([a-z0-9_]+)\"\s*,\s*(.+?)\s*,\s*\""


def _flag_calls(text, var):
    return re.findall(_FLAG_CALL.format(var=re.escape(var)), text, flags=re.S)


def common_flags(repo):
    """(parameter names of RegisterCommonFlags after the FlagSet, [(name, kind, default_expr)])."""
    rel = "common/config/flags.cc"
    text = strip_cxx_comments(read(repo, rel))
    m = re.search(r"CommonFlags\s+RegisterCommonFlags\s*\(([^)]*)\)\s*\{(.*?)\n\}", text, flags=re.S)
    if not m:
        raise ExtractionError(f"{rel}: RegisterCommonFlags definition not found")
    params = [p.strip() for p in m.group(1).split(",")]
    flagset = re.fullmatch(r"FlagSet\s*&\s*(\w+)", params[0])
    if not flagset:
        raise ExtractionError(f"{rel}: RegisterCommonFlags does not take a FlagSet& first")
    names = []
    for p in params[1:]:
        pm = re.search(r"(\w+)\s*$", p)
        if not pm:
            raise ExtractionError(f"{rel}: cannot read parameter {p!r}")
        names.append(pm.group(1))
    calls = _flag_calls(m.group(2), flagset.group(1))
    if len(calls) < 4:
        raise ExtractionError(f"{rel}: found only {len(calls)} common flags")
    return names, [(name, kind, expr) for kind, name, expr in calls]


def store_client_flags(repo):
    """[(name, kind, default_expr)] of RegisterStoreClientFlags, which the services that call
    contact-store register from their main.cc."""
    rel = "common/config/flags.cc"
    text = strip_cxx_comments(read(repo, rel))
    m = re.search(r"StoreClientFlags\s+RegisterStoreClientFlags\s*\(\s*FlagSet\s*&\s*(\w+)\s*\)\s*\{(.*?)\n\}",
                  text, flags=re.S)
    if not m:
        raise ExtractionError(f"{rel}: RegisterStoreClientFlags definition not found")
    calls = _flag_calls(m.group(2), m.group(1))
    if not calls:
        raise ExtractionError(f"{rel}: RegisterStoreClientFlags registers no flag")
    return [(name, kind, expr) for kind, name, expr in calls]


def split_call_args(text):
    """Top-level comma-separated arguments of a call body (no parentheses around)."""
    args, depth, cur, i = [], 0, [], 0
    while i < len(text):
        c = text[i]
        if c == '"':
            j = i + 1
            while j < len(text) and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            cur.append(text[i:j + 1])
            i = j + 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == "," and depth == 0:
            args.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    if "".join(cur).strip():
        args.append("".join(cur).strip())
    return args


def service_dirs(repo):
    """[(binary, repo-relative dir)] from add_executable(<binary> main.cc) in services/*/."""
    found = []
    services_root = os.path.join(repo, "services")
    for entry in sorted(os.listdir(services_root)):
        cmake = os.path.join("services", entry, "CMakeLists.txt")
        if not os.path.isfile(os.path.join(repo, cmake)):
            continue
        for binary in re.findall(r"add_executable\(\s*([\w-]+)\s+main\.cc\s*\)", read(repo, cmake)):
            found.append((binary, os.path.join("services", entry)))
    if not found:
        raise ExtractionError("no add_executable(<name> main.cc) under services/*/CMakeLists.txt")
    return found


def metric_names(text):
    """Metric family names registered with prometheus::Build*().Name("...")."""
    return re.findall(r"Build(?:Counter|Gauge|Histogram|Summary)\(\)\s*\.Name\(\s*\"([a-zA-Z_:][\w:]*)\"", text)


# RocksDB's ColumnFamilyOptions defaults (rocksdb/options.h), for code that does not set them.
ROCKSDB_DEFAULT_WRITE_BUFFER_SIZE = 64 << 20
ROCKSDB_DEFAULT_MAX_WRITE_BUFFER_NUMBER = 2


def rocksdb_close_flush_bytes(texts):
    """The largest memtable flush a RocksDB close in these sources may have to wait for; 0 when
    they open no RocksDB. DB::Close() (DBImpl::CancelAllBackgroundWork) lets a flush that is
    already running finish, skips the ones not started, aborts compactions, and with the WAL on
    flushes nothing more. A running flush writes one column family's memtables: at most
    max_write_buffer_number of write_buffer_size each (the largest set in the sources, RocksDB's
    defaults when none is)."""
    if not any(re.search(r"\brocksdb::DB::Open\b", t) for t in texts):
        return 0
    sizes = [int(cxx_default(e, "Int")) for t in texts for e in re.findall(r"\.write_buffer_size\s*=\s*([^;]+);", t)]
    counts = [int(cxx_default(e, "Int"))
              for t in texts for e in re.findall(r"\.max_write_buffer_number\s*=\s*([^;]+);", t)]
    return (max(sizes) if sizes else ROCKSDB_DEFAULT_WRITE_BUFFER_SIZE) * \
        (max(counts) if counts else ROCKSDB_DEFAULT_MAX_WRITE_BUFFER_NUMBER)


def job_stop_timeout_flag(rel_main, text):
    """The flag that bounds the store call a running job waits for when main() stops its jobs
    after the gRPC drain, or None when main() stops nothing after WaitForShutdownSignal().

    import-processor: `runner.WaitForShutdownSignal(); manager.Shutdown();` where `manager` is a
    JobManager over a GrpcStoreClient built with std::chrono::milliseconds(*<flag variable>):
    jobs keep running during the drain, then each waits for the batch it has in flight."""
    m = re.search(r"\.\s*WaitForShutdownSignal\s*\(\s*\)\s*;", text)
    if not m:
        raise ExtractionError(f"{rel_main}: no WaitForShutdownSignal() call")
    flag_of_var = {var: name for var, name in re.findall(r"\b(\w+)\s*=\s*\w+\s*\.\s*Int\(\s*\"([a-z0-9_]+)\"", text)}
    flag = None
    for var in re.findall(r"\b(\w+)\s*\.\s*Shutdown\s*\(\s*\)", text[m.end():]):
        decl = re.search(r"\b(\w+)\s+" + re.escape(var) + r"\s*\(([^;]*)\)\s*;", text)
        if not decl or decl.group(1) != "JobManager":
            raise ExtractionError(f"{rel_main}: {var}.Shutdown() runs after the gRPC drain, but {var} is not a "
                                  f"JobManager: teach tests/deploy/repo_facts.py how long it may take")
        args = split_call_args(decl.group(2))
        client = args[1] if len(args) > 1 else ""  # JobManager(jobs, store, options, metrics)
        cm = re.search(r"\bGrpcStoreClient\s+" + re.escape(client) + r"\s*\((.*?)\)\s*;", text, flags=re.S)
        tm = re.search(r"milliseconds\(\s*\*\s*(\w+)\s*\)", cm.group(1)) if cm else None
        if not tm or tm.group(1) not in flag_of_var:
            raise ExtractionError(f"{rel_main}: cannot find the flag that times out {var}'s store calls "
                                  f"(a GrpcStoreClient {client or '?'} built with milliseconds(*<int flag>))")
        flag = flag_of_var[tm.group(1)]
    return flag


def services(repo):
    """{binary: Service} for every service binary the build produces."""
    param_names, common = common_flags(repo)
    result = {}
    for binary, directory in service_dirs(repo):
        rel_main = os.path.join(directory, "main.cc")
        text = strip_cxx_comments(read(repo, rel_main))
        fm = re.search(r"\bFlagSet\s+(\w+)\s*\(\s*\"([^\"]+)\"\s*\)", text)
        if not fm:
            raise ExtractionError(f"{rel_main}: no FlagSet <var>(\"name\")")
        var, program = fm.group(1), fm.group(2)
        if program != binary:
            raise ExtractionError(f"{rel_main}: FlagSet is named {program!r} but the binary is {binary!r}")
        cm = re.search(r"(\w+)\s*=\s*RegisterCommonFlags\s*\((.*?)\)\s*;", text, flags=re.S)
        if not cm:
            raise ExtractionError(f"{rel_main}: RegisterCommonFlags call not found")
        common_var = cm.group(1)
        args = split_call_args(cm.group(2))
        if len(args) != len(param_names) + 1:
            raise ExtractionError(f"{rel_main}: RegisterCommonFlags takes {len(param_names) + 1} arguments, "
                                  f"found {len(args)}")
        arguments = {}
        for pname, arg in zip(param_names, args[1:]):
            arguments[pname] = cxx_default(arg, "String")
        service = Service(binary, directory)
        for name, kind, expr in common:
            service.flags[name] = Flag(name, kind, cxx_default(expr, kind, arguments), "common/config/flags.cc")
        own = _flag_calls(text, var)
        if re.search(r"\bRegisterStoreClientFlags\s*\(\s*" + re.escape(var) + r"\s*\)", text):
            for name, kind, expr in store_client_flags(repo):
                service.flags[name] = Flag(name, kind, cxx_default(expr, kind), "common/config/flags.cc")
        for kind, name, expr in own:
            if name in service.flags:
                raise ExtractionError(f"{rel_main}: flag --{name} registered twice")
            service.flags[name] = Flag(name, kind, cxx_default(expr, kind), rel_main)
        service.uses_data_dir = re.search(r"\*\s*" + re.escape(common_var) + r"\s*\.\s*data_dir\b", text) is not None
        sources = []
        for root, _, files in os.walk(os.path.join(repo, directory)):
            for f in sorted(files):
                if f.endswith((".cc", ".h")):
                    with open(os.path.join(root, f), encoding="utf-8") as fh:
                        source = fh.read()
                    service.metrics += metric_names(source)
                    sources.append(strip_cxx_comments(source))
        service.job_stop_timeout_flag = job_stop_timeout_flag(rel_main, text)
        if service.job_stop_timeout_flag is not None and service.job_stop_timeout_flag not in service.flags:
            raise ExtractionError(f"{rel_main}: --{service.job_stop_timeout_flag} is not a flag of {binary}")
        service.rocksdb_close_flush_bytes = rocksdb_close_flush_bytes(sources)
        service.flags["log_level"].allowed = log_levels(repo)
        for required in ("listen", "metrics_listen", "data_dir", "grace_period_ms"):
            if required not in service.flags:
                raise ExtractionError(f"{binary}: common flag --{required} not found")
        result[binary] = service
    return result


def log_levels(repo):
    """The --log_level values common/logging/logging.cc accepts (compared in lower case)."""
    rel = "common/logging/logging.cc"
    levels = set(re.findall(r'\blower\s*==\s*"([a-z]+)"', strip_cxx_comments(read(repo, rel))))
    if "info" not in levels:
        raise ExtractionError(f"{rel}: cannot find the accepted log levels")
    return levels


def shared_metrics(repo):
    """Metric families every service registers (common/server)."""
    names = []
    for root, _, files in os.walk(os.path.join(repo, "common")):
        for f in sorted(files):
            if f.endswith((".cc", ".h")):
                with open(os.path.join(root, f), encoding="utf-8") as fh:
                    names += metric_names(fh.read())
    return names


def run_help(binary_path, env_overrides=None):
    """Runs `<binary> --help` (it parses the environment first, prints usage and exits; it opens no
    socket and no file). Returns (exit code, {name: (kind, env name, default)}, output).
    env_overrides replaces every CONTACTS_* variable of this process's environment."""
    import subprocess
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(env_overrides or {})
    proc = subprocess.run([binary_path, "--help"], capture_output=True, text=True, env=env, timeout=30,
                          check=False)
    flags = {}
    kinds = {"string": "String", "int": "Int", "bool": "Bool"}
    for m in re.finditer(r"^  --([a-z0-9_]+) \((string|int|bool); env (\w+)\)\n(?:      .*\n)*?.*Default: \"(.*)\"\.$",
                         proc.stdout, flags=re.M):
        flags[m.group(1)] = (kinds[m.group(2)], m.group(3), m.group(4))
    return proc.returncode, flags, proc.stdout + proc.stderr


def parse_bool(text):
    """The server's boolean parsing (common/config/flags.cc ParseBool); None if invalid."""
    lower = text.lower()
    if lower in ("true", "1", "yes", "on"):
        return True
    if lower in ("false", "0", "no", "off"):
        return False
    return None


def value_error(flag, value):
    """Why `value` would be refused for `flag` at startup, or None if it parses."""
    if flag.kind == "Int":
        if not re.fullmatch(r"[+-]?\d+", value.strip()):
            return f"{flag.env}={value!r} is not an integer"
    elif flag.kind == "Bool":
        if parse_bool(value) is None:
            return f"{flag.env}={value!r} is not a boolean"
    elif flag.allowed is not None and value.lower() not in flag.allowed:
        return f"{flag.env}={value!r} is not one of {sorted(flag.allowed)}"
    return None


class Checks:
    """Collects failures so one run reports every broken rule, then exits non-zero."""

    def __init__(self, name):
        self.name = name
        self.failures = []
        self.passed = 0

    def check(self, ok, message):
        if ok:
            self.passed += 1
        else:
            self.failures.append(message)
        return ok

    def fail(self, message):
        self.failures.append(message)

    def finish(self):
        for f in self.failures:
            print(f"FAIL: {f}")
        print(f"{self.name}: {self.passed} checks passed, {len(self.failures)} failed")
        return 1 if self.failures else 0
