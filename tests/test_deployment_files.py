"""The container image and the deployment files (deploy/), read and cross-checked without Docker or a cluster.

Every PARLEY_* variable they set must be a field of parley.config.Settings, and the values must pass its
validation; ports, probes, Services and the load balancer must agree on the gateway's port; the Dockerfile must
build in two stages, run as a non-root user and copy only files that exist. With kubernetes-validate installed,
every Kubernetes object is also checked against the Kubernetes API's own schemas.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from parley.config import Settings
from parley.models import CATALOG

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
NGINX_CONF = DEPLOY / "nginx.conf"
KUBERNETES = DEPLOY / "kubernetes"
DEPLOYMENT_DOC = ROOT / "docs" / "deployment.md"

GATEWAY_PORT = 8000
GATEWAY_SERVICE = "parley"  # the compose service of the gateways
SEED_MODEL = CATALOG["qwen2.5-coder-0.5b-instruct"]  # the GGUF the image ships and the LLM volume is seeded with


# --- PARLEY_* names and values -----------------------------------------------------------------------------


def unknown_settings(names: Iterable[str]) -> list[str]:
    """The PARLEY_* names that no Settings field reads (pydantic-settings maps PARLEY_X to the field x)."""
    fields = set(Settings.model_fields)
    return sorted({n for n in names if n.startswith("PARLEY_") and n.removeprefix("PARLEY_").lower() not in fields})


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as a gateway started with exactly ``env`` would read them (no .env, nothing inherited)."""
    for name in list(os.environ):
        if name.upper().startswith("PARLEY_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_a_misspelt_setting_is_caught() -> None:
    assert unknown_settings(["PARLEY_PROFLE", "PARLEY_PROFILE", "PARLEY_LLM_BASE_URL", "OTHER"]) == ["PARLEY_PROFLE"]


# --- Dockerfile --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined; comments dropped (also inside a continued instruction)."""
    instructions: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not pending and not stripped):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        pending += stripped
        keyword, _, args = pending.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        pending = ""
    assert not pending, f"Dockerfile ends inside a continued instruction (line {start})"
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """The build stages, each starting with its FROM (ARGs before the first FROM are left out)."""
    found: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def stage_name(stage: list[Instruction]) -> str | None:
    words = stage[0].args.split()
    return words[2] if len(words) == 3 and words[1].upper() == "AS" else None


def env_of(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in stage:
        if instruction.keyword != "ENV":
            continue
        words = shlex.split(instruction.args)
        if "=" not in words[0]:  # the old "ENV NAME value" form
            env[words[0]] = " ".join(words[1:])
            continue
        for word in words:
            name, _, value = word.partition("=")
            env[name] = value
    return env


def copy_parts(args: str) -> tuple[dict[str, str], list[str], str]:
    """A COPY's flags, sources and destination."""
    flags: dict[str, str] = {}
    rest = args
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        name, _, value = flag[2:].partition("=")
        flags[name] = value
        rest = rest.lstrip()
    paths = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
    return flags, paths[:-1], paths[-1]


def exec_form(instruction: Instruction | None) -> list[str]:
    if instruction is None:
        return []
    assert instruction.args.startswith("["), f"line {instruction.line}: use the JSON form, so signals reach parley"
    return json.loads(instruction.args)


def last(stage: list[Instruction], keyword: str) -> Instruction | None:
    matches = [i for i in stage if i.keyword == keyword]
    return matches[-1] if matches else None


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Whether Docker leaves ``path`` out of the build context: the last pattern matching it or one of its
    parent folders decides, ``!`` patterns putting paths back."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.removeprefix("!").strip("/")
        regex = re.compile(
            "".join(
                ".*" if token == "**" else "[^/]*" if token == "*" else "[^/]" if token == "?" else re.escape(token)
                for token in re.findall(r"\*\*|\*|\?|[^*?]+", body)
            )
        )
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = not negated
    return excluded


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines() if DOCKERIGNORE.exists() else []
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


@pytest.fixture(scope="module")
def docker_stages() -> list[list[Instruction]]:
    return stages(parse_dockerfile(DOCKERFILE.read_text()))


def test_the_dockerfile_parser_reads_continuations_and_copies() -> None:
    parsed = parse_dockerfile("FROM a AS b\n# note\nENV X=1 \\\n    # inside\n    Y=2\nCOPY --from=b /x /x\n")
    assert [i.keyword for i in parsed] == ["FROM", "ENV", "COPY"]
    assert env_of(stages(parsed)[0]) == {"X": "1", "Y": "2"}
    assert copy_parts(parsed[2].args) == ({"from": "b"}, ["/x"], "/x")
    assert copy_parts('["a b", "c"]') == ({}, ["a b"], "c")


def test_the_image_is_built_in_one_stage_and_run_in_another(docker_stages: list[list[Instruction]]) -> None:
    assert len(docker_stages) >= 2, "a builder stage and a runtime stage"
    builder = stage_name(docker_stages[0])
    assert builder, "the builder stage is named, for COPY --from"
    runtime_copies = [copy_parts(i.args)[0] for i in docker_stages[-1] if i.keyword == "COPY"]
    assert any(flags.get("from") == builder for flags in runtime_copies), "the runtime stage takes the build"
    # The venv's python links to the base image's interpreter: both stages must start from the same image.
    assert docker_stages[0][0].args.split()[0] == docker_stages[-1][0].args.split()[0]


def test_the_builder_runs_the_install_script(docker_stages: list[list[Instruction]]) -> None:
    runs = " ".join(i.args for i in docker_stages[0] if i.keyword == "RUN")
    assert "scripts/install.sh" in runs
    installs = " ".join(i.args for i in docker_stages[0] if i.keyword == "RUN" and "apt-get install" in i.args)
    for package in ("build-essential", "cmake", "npm"):
        assert package in installs, f"install.sh needs {package}"


def test_the_runtime_stage_has_no_build_tools(docker_stages: list[list[Instruction]]) -> None:
    installs = " ".join(i.args for i in docker_stages[-1] if i.keyword == "RUN" and "install" in i.args)
    for tool in ("build-essential", "cmake", "npm", "gcc", "git "):
        assert tool not in installs
    assert "libgomp1" in installs, "llama.cpp's OpenMP runtime"


def test_the_server_runs_as_a_non_root_user(docker_stages: list[list[Instruction]]) -> None:
    user = last(docker_stages[-1], "USER")
    assert user is not None, "the runtime stage sets USER"
    name = user.args.split(":")[0]
    assert name not in ("root", "0"), f"line {user.line}: USER {user.args} is root"


def test_the_server_user_owns_none_of_the_copied_files(docker_stages: list[list[Instruction]]) -> None:
    for instruction in docker_stages[-1]:
        if instruction.keyword in ("COPY", "ADD"):
            flags = copy_parts(instruction.args)[0]
            assert "chown" not in flags and "chmod" not in flags, f"line {instruction.line}: files stay read-only"


def test_the_models_are_found_where_they_were_prepared(docker_stages: list[list[Instruction]]) -> None:
    builder, runtime = docker_stages[0], docker_stages[-1]
    cache = env_of(builder).get("PARLEY_CACHE_DIR")
    assert cache, "the builder prepares the models into PARLEY_CACHE_DIR"
    assert env_of(runtime).get("PARLEY_CACHE_DIR") == cache, "the runtime reads the same cache"
    workdir = last(builder, "WORKDIR")
    assert workdir is not None
    copied = {
        source.rstrip("/"): destination.rstrip("/")
        for flags, sources, destination in (copy_parts(i.args) for i in runtime if i.keyword == "COPY")
        if flags.get("from") == stage_name(builder)
        for source in sources
    }
    # The install is editable and the venv has absolute paths: both must land where they were built.
    for path in (cache, workdir.args):
        assert any(path == s or path.startswith(s + "/") for s in copied), f"{path} is copied from the builder"
        assert all(copied[s] == s for s in copied if path == s or path.startswith(s + "/")), f"{path} moved"


def test_every_copied_path_exists(docker_stages: list[list[Instruction]]) -> None:
    sources = [
        source
        for stage in docker_stages
        for i in stage
        if i.keyword in ("COPY", "ADD")
        for flags, stage_sources, _ in [copy_parts(i.args)]
        if "from" not in flags
        for source in stage_sources
    ]
    assert sources, "the builder copies the repository"
    for source in sources:
        assert list(ROOT.glob(source.rstrip("/"))), f"COPY {source}: no such file in the repository"


def test_the_build_context_holds_what_the_dockerfile_copies(docker_stages: list[list[Instruction]]) -> None:
    patterns = dockerignore_patterns()
    assert dockerignore_excludes(patterns, ".venv/bin/python"), "a local virtual environment stays out"
    for stage in docker_stages:
        for i in stage:
            if i.keyword not in ("COPY", "ADD"):
                continue
            flags, sources, _ = copy_parts(i.args)
            if "from" in flags:
                continue
            for source in sources:
                top = ROOT / source.rstrip("/")
                files = [p for p in top.rglob("*") if p.is_file()] if top.is_dir() else [top]
                for file in files:
                    relative = file.relative_to(ROOT).as_posix()
                    if "__pycache__" in relative or ".egg-info" in relative or relative.endswith(".pyc"):
                        continue
                    assert not dockerignore_excludes(patterns, relative), f".dockerignore leaves out {relative}"


def test_the_dockerignore_matcher() -> None:
    patterns = ["*", "!src/", "**/__pycache__"]
    assert dockerignore_excludes(patterns, "README.md")
    assert not dockerignore_excludes(patterns, "src/parley/app.py")
    assert dockerignore_excludes(patterns, "src/parley/__pycache__/app.cpython-311.pyc")


def test_the_healthcheck_asks_readyz(docker_stages: list[list[Instruction]]) -> None:
    check = last(docker_stages[-1], "HEALTHCHECK")
    assert check is not None
    assert "/readyz" in check.args
    start = re.search(r"--start-period=(\d+)s", check.args)
    assert start and int(start.group(1)) >= 60, "models load and warm before /readyz answers 200"
    assert "curl" not in check.args, "the slim image has no curl"


def test_the_image_serves_on_every_interface_and_the_gateway_port(docker_stages: list[list[Instruction]]) -> None:
    runtime = docker_stages[-1]
    exposed = " ".join(i.args for i in runtime if i.keyword == "EXPOSE").split()
    assert str(GATEWAY_PORT) in [port.split("/")[0] for port in exposed]
    command = exec_form(last(runtime, "ENTRYPOINT")) + exec_form(last(runtime, "CMD"))
    assert command[:2] == ["parley", "serve"] or (command[0].endswith("/parley") and command[1] == "serve")
    host = command[command.index("--host") + 1] if "--host" in command else env_of(runtime).get("PARLEY_HOST")
    assert host == "0.0.0.0"
    assert not unknown_settings(env_of(runtime)) and not unknown_settings(env_of(docker_stages[0]))


# --- compose and nginx -------------------------------------------------------------------------------------


_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error}, through nested values."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if env.get(name):
            return env[name]
        if op and op.endswith("?"):
            raise KeyError(f"{name} must be set: {arg}")
        return arg if op else ""

    return _VARIABLE.sub(substitute, value)


@pytest.fixture(scope="module")
def compose_raw() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def compose(compose_raw: dict[str, Any]) -> dict[str, Any]:
    return interpolate(compose_raw, {"PARLEY_API_KEYS": "test-key"})


def service_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {name: str(value) for name, value in env.items()}


def flag(arguments: list[str], name: str) -> str:
    assert name in arguments, f"{name} is not among {arguments}"
    return str(arguments[arguments.index(name) + 1])


def test_the_compose_stack_needs_api_keys(compose_raw: dict[str, Any]) -> None:
    with pytest.raises(KeyError, match="PARLEY_API_KEYS"):
        interpolate(compose_raw, {})


def test_compose_runs_several_gateways_behind_the_load_balancer(compose: dict[str, Any]) -> None:
    services = compose["services"]
    gateway = services[GATEWAY_SERVICE]
    assert gateway["deploy"]["replicas"] >= 2
    assert "ports" not in gateway, "gateways are reached through the load balancer only"
    assert "container_name" not in gateway, "a fixed name would stop scaling"
    context = (COMPOSE.parent / gateway["build"]["context"]).resolve()
    assert context == ROOT and (context / gateway["build"].get("dockerfile", "Dockerfile")).is_file()
    test = " ".join(gateway["healthcheck"]["test"])
    assert f"127.0.0.1:{GATEWAY_PORT}/readyz" in test
    lb = services["lb"]
    assert lb["image"].split(":")[0] == "nginx", "the official nginx image"
    assert any(str(port).endswith(":80") for port in lb["ports"])


def test_compose_mounts_files_that_exist(compose: dict[str, Any]) -> None:
    mounted = []
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            # Bind mounts but the models folder, which the operator fills (docs/deployment.md).
            if source.startswith(".") and source != "./models":
                assert (COMPOSE.parent / source).exists(), f"{name} mounts {source}, which does not exist"
                mounted.append(source)
    assert "./nginx.conf" in mounted


def test_compose_gateway_settings_are_valid(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    env = service_env(compose["services"][GATEWAY_SERVICE])
    assert not unknown_settings(env)
    docker_env = env_of(stages(parse_dockerfile(DOCKERFILE.read_text()))[-1])
    settings = settings_from({**docker_env, **env}, monkeypatch)
    settings.check_bind()  # listens on 0.0.0.0 with keys
    assert settings.api_keys == ["test-key"]


def test_compose_gateways_reach_the_llm_server(compose: dict[str, Any]) -> None:
    services = compose["services"]
    env = service_env(services[GATEWAY_SERVICE])
    url = urlsplit(env["PARLEY_LLM_BASE_URL"])
    llm = services[url.hostname]
    assert llm["image"] == "ghcr.io/ggml-org/llama.cpp:server"
    command = [str(word) for word in llm["command"]]
    assert url.port == int(flag(command, "--port")) and url.path == "/v1"
    assert env["PARLEY_LLM_MODEL"] == flag(command, "--alias")
    mounts = [volume.split(":")[1] for volume in llm["volumes"]]
    assert any(flag(command, "--model").startswith(mount + "/") for mount in mounts), "the GGUF is on a volume"
    assert "/health" in " ".join(llm["healthcheck"]["test"])


def nginx_directives(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def nginx_seconds(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([smh]?)", value).groups()  # type: ignore[union-attr]
    return int(number) * {"": 1, "s": 1, "m": 60, "h": 3600}[unit]


def test_nginx_keeps_each_client_on_one_gateway_and_passes_websockets(compose: dict[str, Any]) -> None:
    conf = nginx_directives(NGINX_CONF.read_text())
    upstreams = dict(re.findall(r"upstream\s+(\w+)\s*\{([^}]*)\}", conf))
    passed = re.findall(r"proxy_pass\s+http://(\w+)\s*;", conf)
    assert passed and all(name in upstreams for name in passed), "proxy_pass names an upstream"
    for name in passed:
        block = upstreams[name]
        assert re.search(r"^\s*ip_hash\s*;", block, re.MULTILINE), f"upstream {name} is sticky"
        servers = re.findall(r"^\s*server\s+([\w.-]+):(\d+)([^;]*);", block, re.MULTILINE)
        assert servers and all((host, int(port)) == (GATEWAY_SERVICE, GATEWAY_PORT) for host, port, _ in servers)
        if any("resolve" in options.split() for _, _, options in servers):
            assert re.search(r"^\s*zone\s+\w+", block, re.MULTILINE) and re.search(r"^\s*resolver\s", conf, re.M)
            version = tuple(int(n) for n in compose["services"]["lb"]["image"].split(":")[1].split("-")[0].split("."))
            assert version >= (1, 27, 3), "upstream servers re-resolve only from nginx 1.27.3"
    assert re.search(r"proxy_http_version\s+1\.1\s*;", conf)
    assert re.search(r"proxy_set_header\s+Upgrade\s+\$http_upgrade\s*;", conf)
    connection = re.search(r"proxy_set_header\s+Connection\s+(\S+)\s*;", conf)
    assert connection, "the Connection header is passed on"
    if connection.group(1).startswith("$") and connection.group(1) != "$http_connection":
        assert re.search(rf"map\s+\$http_upgrade\s+{re.escape(connection.group(1))}\s*\{{", conf)
    session_s = float(service_env(compose["services"][GATEWAY_SERVICE]).get("PARLEY_MAX_SESSION_MINUTES", 60)) * 60
    for directive in ("proxy_read_timeout", "proxy_send_timeout"):
        found = re.search(rf"{directive}\s+(\w+)\s*;", conf)
        assert found and nginx_seconds(found.group(1)) >= session_s, f"{directive} outlasts a session"
    assert re.search(r"listen\s+80\s*;", conf)


# --- Kubernetes --------------------------------------------------------------------------------------------


def kubernetes_files() -> list[Path]:
    return sorted(p for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    found = []
    for path in kubernetes_files():
        for document in yaml.safe_load_all(path.read_text()):
            if document is not None:
                assert isinstance(document, dict), f"{path.name}: a document is not a mapping"
                found.append(document)
    return found


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o.get("kind") == kind]


def named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} named {name}, found {len(matches)}"
    return matches[0]


def is_gateway(container: dict[str, Any]) -> bool:
    return container["image"].split("/")[-1].split(":")[0] == "parley"


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    return deployment["spec"]["template"]["metadata"]["labels"]


def containers(deployment: dict[str, Any], *, init: bool = False) -> Iterator[dict[str, Any]]:
    yield from pod_spec(deployment)["containers"]
    if init:
        yield from pod_spec(deployment).get("initContainers", [])


def gateway_deployments(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in of_kind(objects, "Deployment") if any(is_gateway(c) for c in containers(d))]


def backend_of(service: dict[str, Any], objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The one Deployment whose pods a Service selects."""
    backends = [d for d in of_kind(objects, "Deployment") if selects(service["spec"]["selector"], pod_labels(d))]
    assert len(backends) == 1, f"Service {service['metadata']['name']} selects {len(backends)} Deployments"
    return backends[0]


def port_number(port: int | str, pod_containers: Iterable[dict[str, Any]]) -> int:
    """A port by number or by the name a container gives it."""
    declared = [p for c in pod_containers for p in c.get("ports", [])]
    if isinstance(port, int):
        assert port in [p["containerPort"] for p in declared], f"port {port} is not a container port"
        return port
    matches = [p["containerPort"] for p in declared if p.get("name") == port]
    assert len(matches) == 1, f"port name {port!r} names {len(matches)} container ports"
    return matches[0]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def service_link_names(service: dict[str, Any]) -> set[str]:
    """The variables Kubernetes sets in pods with service links on, for this Service."""
    prefix = service["metadata"]["name"].upper().replace("-", "_")
    names = {f"{prefix}_SERVICE_HOST", f"{prefix}_SERVICE_PORT", f"{prefix}_PORT"}
    for port in service["spec"]["ports"]:
        base = f"{prefix}_PORT_{port['port']}_{port.get('protocol', 'TCP')}"
        names |= {base, f"{base}_PROTO", f"{base}_PORT", f"{base}_ADDR"}
        if "name" in port:
            names.add(f"{prefix}_SERVICE_PORT_{port['name'].upper().replace('-', '_')}")
    return names


def gateway_env(objects: list[dict[str, Any]]) -> dict[str, str]:
    """What a gateway pod gets from its ConfigMaps, Secrets and own env (the Secret's keys as shipped)."""
    env: dict[str, str] = {}
    for deployment in gateway_deployments(objects):
        for container in filter(is_gateway, containers(deployment)):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    env |= named(objects, "ConfigMap", source["configMapRef"]["name"]).get("data", {})
                if "secretRef" in source:
                    secret = named(objects, "Secret", source["secretRef"]["name"])
                    env |= secret.get("stringData", {}) | {k: "(encoded)" for k in secret.get("data", {})}
            env |= {e["name"]: str(e.get("value", "")) for e in container.get("env", [])}
    return env


def test_every_object_has_api_version_kind_and_name(objects: list[dict[str, Any]]) -> None:
    assert objects
    for o in objects:
        assert isinstance(o.get("apiVersion"), str) and o["apiVersion"], o
        assert isinstance(o.get("kind"), str) and o["kind"], o
        assert isinstance(o.get("metadata", {}).get("name"), str) and o["metadata"]["name"], o
    identities = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(identities) == len(set(identities)), "no two objects of a kind share a name"


def test_the_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed))
    assert sorted(listed) == [p.name for p in kubernetes_files()]


def test_the_gateways_serve_and_are_probed_on_one_port(objects: list[dict[str, Any]]) -> None:
    deployments = gateway_deployments(objects)
    assert deployments
    for deployment in deployments:
        pod = list(containers(deployment))
        gateway = next(c for c in pod if is_gateway(c))
        assert [p["containerPort"] for p in gateway["ports"]] == [GATEWAY_PORT]
        readiness, liveness = gateway["readinessProbe"]["httpGet"], gateway["livenessProbe"]["httpGet"]
        assert readiness["path"] == "/readyz" and liveness["path"] == "/healthz"
        assert port_number(readiness["port"], pod) == port_number(liveness["port"], pod) == GATEWAY_PORT


def test_every_probe_asks_a_declared_port(objects: list[dict[str, Any]]) -> None:
    for deployment in of_kind(objects, "Deployment"):
        pod = list(containers(deployment))
        for container in pod:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                if probe in container:
                    port_number(container[probe]["httpGet"]["port"], [container])


def test_deployments_select_their_own_pods(objects: list[dict[str, Any]]) -> None:
    for deployment in of_kind(objects, "Deployment"):
        assert selects(deployment["spec"]["selector"]["matchLabels"], pod_labels(deployment)), deployment["metadata"][
            "name"
        ]


def test_services_reach_container_ports(objects: list[dict[str, Any]]) -> None:
    for service in of_kind(objects, "Service"):
        backend = backend_of(service, objects)
        for port in service["spec"]["ports"]:
            number = port_number(port.get("targetPort", port["port"]), containers(backend))
            if backend in gateway_deployments(objects):
                assert number == GATEWAY_PORT


def test_the_gateway_service_and_ingress_are_sticky(objects: list[dict[str, Any]]) -> None:
    ingresses = of_kind(objects, "Ingress")
    assert ingresses
    session_s = float(gateway_env(objects).get("PARLEY_MAX_SESSION_MINUTES", 60)) * 60
    for ingress in ingresses:
        annotations = ingress["metadata"].get("annotations", {})
        assert annotations.get("nginx.ingress.kubernetes.io/affinity") == "cookie"
        for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
            assert int(annotations[f"nginx.ingress.kubernetes.io/{timeout}"]) >= session_s
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = named(objects, "Service", backend["name"])
                assert service["spec"].get("sessionAffinity") == "ClientIP"
                ports = [name for p in service["spec"]["ports"] for name in (p.get("name"), p["port"])]
                assert backend["port"].get("name", backend["port"].get("number")) in ports


def test_gateway_settings_exist_and_validate(objects: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    env = gateway_env(objects)
    assert not unknown_settings(env)
    settings = settings_from({**env, "PARLEY_HOST": "0.0.0.0", "PARLEY_API_KEYS": "test-key"}, monkeypatch)
    settings.check_bind()
    url = urlsplit(settings.llm_base_url or "")
    service = named(objects, "Service", url.hostname or "")
    assert url.port in [p["port"] for p in service["spec"]["ports"]] and url.path == "/v1"
    server = next(containers(backend_of(service, objects)))
    assert settings.llm_model == flag(server["args"], "--alias")
    target = next(p.get("targetPort", p["port"]) for p in service["spec"]["ports"] if p["port"] == url.port)
    assert port_number(target, [server]) == int(flag(server["args"], "--port"))


def test_the_shipped_secret_holds_no_usable_key(objects: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    # A key anyone can read in this repository would open every deployment made without changing it.
    settings = settings_from({**gateway_env(objects), "PARLEY_HOST": "0.0.0.0"}, monkeypatch)
    with pytest.raises(ValueError, match="without API keys"):
        settings.check_bind()


def test_no_service_link_variable_reads_as_a_setting(objects: list[dict[str, Any]]) -> None:
    for deployment in gateway_deployments(objects):
        assert pod_spec(deployment).get("enableServiceLinks") is False
    for service in of_kind(objects, "Service"):
        clashes = [n for n in service_link_names(service) if n.startswith("PARLEY_") and not unknown_settings([n])]
        assert not clashes, f"Service {service['metadata']['name']} would set {clashes}"


def test_a_service_named_parley_would_clash() -> None:
    service = {"metadata": {"name": "parley"}, "spec": {"ports": [{"port": 8000}]}}
    assert "PARLEY_PORT" in service_link_names(service) and not unknown_settings(["PARLEY_PORT"])


def quantity(value: str | int) -> float:
    """A Kubernetes quantity: cores for CPU, bytes for memory."""
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    for unit, factor in units.items():
        if text.endswith(unit):
            return float(text.removesuffix(unit)) * factor
    return float(text)


def test_each_gateway_asks_for_two_cores(objects: list[dict[str, Any]]) -> None:
    for deployment in gateway_deployments(objects):
        gateway = next(c for c in containers(deployment) if is_gateway(c))
        requests, limits = gateway["resources"]["requests"], gateway["resources"].get("limits", {})
        assert quantity(requests["cpu"]) == 2
        assert 2 * 2**30 <= quantity(requests["memory"]) <= 3 * 2**30
        assert quantity(limits.get("memory", requests["memory"])) >= quantity(requests["memory"])


def test_references_between_objects_resolve(objects: list[dict[str, Any]]) -> None:
    for deployment in of_kind(objects, "Deployment"):
        spec = pod_spec(deployment)
        for volume in spec.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                named(objects, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
        mounted = {m["name"] for c in containers(deployment, init=True) for m in c.get("volumeMounts", [])}
        assert mounted <= {v["name"] for v in spec.get("volumes", [])}
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    named(objects, "ConfigMap", source["configMapRef"]["name"])
                if "secretRef" in source:
                    named(objects, "Secret", source["secretRef"]["name"])


def test_the_llm_volume_is_seeded_from_the_image(objects: list[dict[str, Any]]) -> None:
    cache = env_of(stages(parse_dockerfile(DOCKERFILE.read_text()))[-1])["PARLEY_CACHE_DIR"]
    seeded = 0
    for deployment in of_kind(objects, "Deployment"):
        for init in pod_spec(deployment).get("initContainers", []):
            if is_gateway(init):
                command = " ".join(init["command"])
                assert f"{cache}/models/" in command and SEED_MODEL.filename in command
                server = next(containers(deployment))
                assert flag(server["args"], "--model").split("/")[-1] in command
                seeded += 1
    assert seeded == 1


def test_the_images_agree(objects: list[dict[str, Any]], compose: dict[str, Any]) -> None:
    image = compose["services"][GATEWAY_SERVICE]["image"]
    for deployment in of_kind(objects, "Deployment"):
        for container in containers(deployment, init=True):
            if is_gateway(container):
                assert container["image"] == image
    llm = next(c for d in of_kind(objects, "Deployment") for c in containers(d) if not is_gateway(c))
    assert llm["image"] == compose["services"]["llm"]["image"]


KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")  # an older cluster and the newest schemas kubernetes-validate has


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_objects_match_the_kubernetes_schemas(objects: list[dict[str, Any]], version: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    if version not in kubernetes_validate.utils.all_versions():
        pytest.skip(f"kubernetes-validate {kubernetes_validate.__version__} has no schemas for {version}")
    for o in objects:
        kubernetes_validate.validate(o, version, strict=True)


def test_the_schema_check_catches_a_misspelt_field() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"sessionAfinity": "ClientIP"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, KUBERNETES_VERSIONS[-1], strict=True)


# --- docs --------------------------------------------------------------------------------------------------


def test_the_deployment_doc_names_real_settings_and_files() -> None:
    text = DEPLOYMENT_DOC.read_text()
    assert not unknown_settings(re.findall(r"\bPARLEY_[A-Z0-9_]*[A-Z0-9]", text))
    for path in set(re.findall(r"\b(?:deploy|docs|scripts)/[\w./-]*\w", text)):
        if not path.startswith("deploy/models"):  # the operator's folder
            assert (ROOT / path).exists(), f"docs/deployment.md names {path}, which does not exist"
