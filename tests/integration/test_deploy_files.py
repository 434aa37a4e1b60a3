"""The deploy files cannot silently rot: each is parsed as its tool parses it and checked against the
bridge it deploys — compose.yaml and the GitHub workflow against their published JSON schemas
(vendored by check-jsonschema), every `mpesa-bridge …` command against the real CLI, every
`MPESA_BRIDGE_*` name against Settings, every health path against the app's routes, every make
target against the Makefile, the proxies' limits against the bridge's own defaults, the systemd
units with `systemd-analyze` where it exists. tests/e2e/test_docker_steps.py runs the image's steps."""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
import tomllib
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import trove_classifiers
import yaml
from typer.testing import CliRunner

import mpesa_bridge
from mpesa_bridge.api import health
from mpesa_bridge.api.v1 import stream
from mpesa_bridge.cli import register_commands
from mpesa_bridge.config import Settings
from mpesa_bridge.core.crypto import generate_master_key
from tests.fixtures.deployfiles import (
    OTHER_BRIDGE_NAMES,
    ROOT,
    SETTING_NAMES,
    Stage,
    check_cli_command,
    healthcheck_command,
    parse_dockerfile,
)

BRIDGE_SERVICES = ("migrate", "api", "worker")
DEFAULTS = Settings.model_fields


def load_yaml(name: str) -> Any:
    return yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))


def vendored_schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((files("check_jsonschema") / "builtin_schemas" / "vendor" / name).read_text())
    return schema


def schema_errors(document: Any, schema: dict[str, Any]) -> list[str]:
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in validator.iter_errors(document)]


def bridge_names(text: str) -> set[str]:
    return set(re.findall(r"\bMPESA_BRIDGE_[A-Z0-9_]+\b", text))


def routes() -> set[str]:
    return {route.path for route in (*health.router.routes, *stream.router.routes)}  # type: ignore[attr-defined]


def default(name: str) -> Any:
    return DEFAULTS[name].default


def runtime_stage() -> Stage:
    return parse_dockerfile()[1][-1]


# --- compose.yaml -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml("compose.yaml")
    return document


def test_compose_file_is_valid_against_the_compose_spec_schema(compose: dict[str, Any]) -> None:
    assert schema_errors(compose, vendored_schema("compose-spec.json")) == []


def test_the_compose_schema_refuses_what_compose_would(compose: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["api"]["helthcheck"] = broken["services"]["api"].pop("healthcheck")
    broken["services"]["worker"]["depends_on"]["migrate"]["condition"] = "service_finished"
    errors = schema_errors(broken, vendored_schema("compose-spec.json"))
    assert any("helthcheck" in error for error in errors) and any("service_finished" in e for e in errors)


def test_compose_runs_postgres_redis_a_migration_n_api_processes_a_worker_and_a_proxy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "api", "worker", "proxy"}
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    replicas = re.fullmatch(r"\$\{API_REPLICAS:-(\d+)\}", str(services["api"]["deploy"]["replicas"]))
    assert replicas and int(replicas.group(1)) >= 2, "N API processes, 2 by default"
    for name in BRIDGE_SERVICES:
        service = services[name]
        assert service["build"] == {"context": ".", "dockerfile": "Dockerfile"}
        assert (ROOT / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        assert service["volumes"] == [f"bridge-data:{runtime_stage().env()['MPESA_BRIDGE_DATA_DIR']}"]
        assert {"path": ".env", "required": True} in service["env_file"]


def test_compose_commands_are_commands_of_the_cli(compose: dict[str, Any]) -> None:
    paths = {name: check_cli_command(compose["services"][name]["command"]) for name in BRIDGE_SERVICES}
    assert paths == {"migrate": ["db", "upgrade"], "api": ["serve"], "worker": ["worker"]}
    check_cli_command(compose["services"]["worker"]["healthcheck"]["test"][1:])


def test_compose_order_migrates_before_the_api_and_the_worker_start(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert services[name]["depends_on"]["postgres"] == {"condition": "service_healthy"}
        assert services[name]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert services["proxy"]["depends_on"]["api"] == {"condition": "service_healthy"}


def test_every_long_running_service_has_a_healthcheck_and_the_apis_is_the_images(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        if name in ("migrate", "proxy"):  # a one-shot; Caddy's image has none and serves no health route
            continue
        assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
        assert not service["healthcheck"].get("disable"), name
    assert services["api"]["healthcheck"]["test"] == ["CMD", *healthcheck_command(runtime_stage())]


def test_compose_sets_only_settings_the_bridge_has(compose: dict[str, Any]) -> None:
    text = (ROOT / "compose.yaml").read_text(encoding="utf-8")
    assert bridge_names(text) - SETTING_NAMES == set()
    for name in BRIDGE_SERVICES:
        environment = compose["services"][name]["environment"]
        assert set(environment) <= SETTING_NAMES
        assert environment["MPESA_BRIDGE_ENV"] == "production"
        assert environment["MPESA_BRIDGE_DATABASE_URL"].startswith("postgresql://")
        assert environment["MPESA_BRIDGE_DATABASE_URL"].split("@", 1)[1].startswith("postgres:5432/")
        assert environment["MPESA_BRIDGE_REDIS_URL"].startswith("redis://redis:6379/")
        given = {k.removeprefix("MPESA_BRIDGE_").lower(): v for k, v in environment.items() if "$" not in v}
        # What .env must add in production; the values compose itself sets must be valid settings.
        Settings(_env_file=None, master_key=generate_master_key(), public_base_url="https://pay.example.com", **given)


def test_compose_background_work_runs_in_the_worker_alone(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["api"]["environment"]["MPESA_BRIDGE_RECONCILE_ENABLED"] == "false"
    assert "MPESA_BRIDGE_RECONCILE_ENABLED" not in services["worker"]["environment"]  # default true


def test_compose_trusts_the_proxys_address_and_nothing_else(compose: dict[str, Any]) -> None:
    services = compose["services"]
    proxy_address = services["proxy"]["networks"]["backend"]["ipv4_address"]
    subnet = ipaddress.ip_network(compose["networks"]["backend"]["ipam"]["config"][0]["subnet"])
    assert ipaddress.ip_address(proxy_address) in subnet
    for name in BRIDGE_SERVICES:
        assert services[name]["environment"]["MPESA_BRIDGE_TRUSTED_PROXIES"] == proxy_address
        assert services[name]["networks"] == ["backend"]
    mounted = services["proxy"]["volumes"][0].split(":")
    assert (ROOT / mounted[0]).resolve() == ROOT / "deploy" / "caddy" / "Caddyfile"
    assert services["proxy"]["environment"]["UPSTREAM_HOST"] == "api"
    assert "ports" not in services["api"], "the API is reached through the proxy only"


# --- the Dockerfile -----------------------------------------------------------------------------


def test_dockerfile_builds_from_the_lock_then_copies_the_environment_into_a_slim_runtime() -> None:
    args, stages = parse_dockerfile()
    assert [stage.name for stage in stages] == ["uv", "build", "runtime"]
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", args["PYTHON_IMAGE"])
    assert [stage.image for stage in stages[1:]] == [args["PYTHON_IMAGE"]] * 2
    pinned = re.search(r"^uv==(\S+)$", (ROOT / "requirements.lock").read_text(), re.MULTILINE)
    assert pinned and args["UV_IMAGE"] == f"ghcr.io/astral-sh/uv:{pinned.group(1)}", "the locked uv builds the image"
    _, build, runtime = stages
    (install,) = build.all("RUN")
    assert "uv build --wheel" in install.text and "--constraint requirements.lock" in install.text
    assert "uv venv --relocatable" in install.text
    assert build.env()["UV_COMPILE_BYTECODE"] == "1" and build.env()["UV_PYTHON_DOWNLOADS"] == "never"
    venv = runtime.env()["VIRTUAL_ENV"]
    assert build.env()["VIRTUAL_ENV"] == venv
    assert [c.text for c in runtime.all("COPY")] == [f"--from=build {venv} {venv}"]
    assert runtime.env()["PATH"].startswith(f"{venv}/bin:")


def test_dockerfile_copies_only_what_dockerignore_lets_into_the_context() -> None:
    _, (_, build, _) = parse_dockerfile()
    allowed = {line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines() if line[:1] == "!"}
    copied = {word for copy in build.all("COPY") for word in shlex.split(copy.text)[:-1] if "--from" not in copy.text}
    assert copied == allowed
    assert all((ROOT / name).exists() for name in copied)


def test_dockerfile_runs_as_a_user_that_is_not_root() -> None:
    runtime = runtime_stage()
    (user,) = runtime.all("USER")
    uid = user.text.split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, "numeric, so that runAsNonRoot can check it"
    (user_step,) = (run.text for run in runtime.all("RUN"))
    assert f"useradd --system --uid {uid}" in user_step and "--shell /usr/sbin/nologin" in user_step
    data_dir = runtime.env()["MPESA_BRIDGE_DATA_DIR"]
    assert f"install -d -o {uid} -g {uid} -m 0700 {data_dir}" in user_step
    assert runtime.all("WORKDIR")[-1].text == data_dir
    assert json.loads(runtime.all("VOLUME")[0].text) == [data_dir]


def test_dockerfile_healthcheck_asks_the_readiness_route_and_cmd_serves() -> None:
    runtime = runtime_stage()
    command = healthcheck_command(runtime)
    assert command[:2] == ["python", "-c"]
    url = re.search(r"'(http://127\.0\.0\.1:%s(/\w+))'", command[2])
    assert url and url.group(2) == "/readyz" and "/readyz" in routes()
    assert "MPESA_BRIDGE_PORT" in command[2] and runtime.env()["MPESA_BRIDGE_PORT"] == "8000"
    assert runtime.all("EXPOSE")[0].text == runtime.env()["MPESA_BRIDGE_PORT"]
    (cmd,) = runtime.all("CMD")
    assert check_cli_command(cmd.json_or_words()) == ["serve"]
    assert runtime.env()["MPESA_BRIDGE_HOST"] == "0.0.0.0"
    assert bridge_names((ROOT / "Dockerfile").read_text()) <= SETTING_NAMES


# --- render.yaml --------------------------------------------------------------------------------


def test_render_blueprint_has_a_web_service_a_worker_postgres_and_redis() -> None:
    render = load_yaml("render.yaml")
    services = {service["name"]: service for service in render["services"]}
    types = sorted(service["type"] for service in services.values())
    assert types == ["keyvalue", "web", "worker"]
    assert len(render["databases"]) == 1
    web = next(s for s in services.values() if s["type"] == "web")
    worker = next(s for s in services.values() if s["type"] == "worker")
    for service in (web, worker):
        assert service["runtime"] == "docker"
        assert (ROOT / service["dockerfilePath"]).resolve() == ROOT / "Dockerfile"
    assert check_cli_command(web["preDeployCommand"]) == ["db", "upgrade"]
    assert check_cli_command(worker["dockerCommand"]) == ["worker"]
    assert web["healthCheckPath"] in routes() and web["healthCheckPath"] == "/readyz"


def test_render_env_names_and_references_exist() -> None:
    render = load_yaml("render.yaml")
    databases = {database["name"] for database in render["databases"]}
    services = {(service["type"], service["name"]) for service in render["services"]}
    groups = {group["name"]: group for group in render.get("envVarGroups", [])}
    variables = [v for service in render["services"] for v in service.get("envVars", [])]
    variables += [v for group in groups.values() for v in group["envVars"]]
    for variable in variables:
        if "fromGroup" in variable:
            assert variable["fromGroup"] in groups
            continue
        assert variable["key"] in SETTING_NAMES, variable["key"]
        if "fromDatabase" in variable:
            assert variable["fromDatabase"]["name"] in databases
            assert variable["fromDatabase"]["property"] == "connectionString"
        if "fromService" in variable:
            reference = variable["fromService"]
            assert (reference["type"], reference["name"]) in services
    web = next(s for s in render["services"] if s["type"] == "web")
    values = {v["key"]: v.get("value") for v in web["envVars"] if "key" in v}
    assert values["MPESA_BRIDGE_RECONCILE_ENABLED"] == "false"
    ipaddress.ip_network(values["MPESA_BRIDGE_TRUSTED_PROXIES"])


# --- the GitHub workflow ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(".github/workflows/ci.yml")
    # PyYAML reads YAML 1.1, where a bare `on` is True; GitHub (and the schema) read it as "on".
    document["on"] = document.pop(True)
    return document


def test_workflow_is_valid_against_the_github_workflow_schema(workflow: dict[str, Any]) -> None:
    assert schema_errors(workflow, vendored_schema("github-workflows.json")) == []


def test_the_workflow_schema_refuses_what_github_would(workflow: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(workflow))
    (job,) = broken["jobs"].values()
    job["step"] = job.pop("steps")
    assert schema_errors(broken, vendored_schema("github-workflows.json"))


def test_workflow_runs_lint_the_package_check_and_every_test_with_the_services(workflow: dict[str, Any]) -> None:
    (job,) = workflow["jobs"].values()
    runs = [step["run"] for step in job["steps"] if "run" in step]
    commands = [line.strip() for run in runs for line in run.splitlines() if line.strip()]
    assert "make lint" in commands
    assert "MPESA_BRIDGE_REQUIRE_SERVICES=1 make test" in commands
    assert "bash .ci/package" in commands and (ROOT / ".ci" / "package").is_file()
    targets = set(re.findall(r"^([a-zA-Z_-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    used = {word for command in commands for word in re.findall(r"\bmake (\S+)", command)}
    assert used and used <= targets
    assert any("apt-get install" in command and "chromium" in command.split() for command in commands)
    services = job["services"]
    assert set(services) == {"postgres", "redis"}
    env = job["env"]
    assert env["MPESA_BRIDGE_TEST_POSTGRES_URL"].split("@", 1)[1].startswith("postgres:5432/")
    assert env["MPESA_BRIDGE_TEST_REDIS_URL"].startswith("redis://redis:6379/")
    assert job["container"].startswith("python:3.11"), "the same Python as pyproject's floor and the image"
    assert "MPESA_BRIDGE_REQUIRE_SERVICES=1 make test" in (ROOT / ".ci" / "run").read_text()


# --- systemd ------------------------------------------------------------------------------------


def unit_entries(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) in order; repeated keys kept, as systemd reads them."""
    section, entries = "", []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.append((section, key, value))
    return entries


UNITS = {"mpesa-bridge.service": ["serve"], "mpesa-bridge-worker.service": ["worker"]}
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "CapabilityBoundingSet": "",
    "RestrictSUIDSGID": "yes",
    "UMask": "0077",
}


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_systemd_unit_runs_the_cli_as_its_own_user_with_hardening(unit: str) -> None:
    entries = unit_entries(ROOT / "deploy" / "systemd" / unit)
    service = {key: value for section, key, value in entries if section == "Service"}
    assert service["User"] == service["Group"] == "mpesa-bridge"
    assert service["EnvironmentFile"] == "/etc/mpesa-bridge/env"
    assert check_cli_command(shlex.split(service["ExecStart"].replace("/opt/mpesa-bridge/bin/", ""))) == UNITS[unit]
    for key, value in HARDENING.items():
        assert service.get(key) == value, f"{unit}: {key}={value}"
    environment = [value for section, key, value in entries if key == "Environment"]
    names = {value.split("=", 1)[0] for value in environment}
    assert names <= SETTING_NAMES
    assert "MPESA_BRIDGE_ENV=production" in environment
    data_dir = next(v.split("=", 1)[1] for v in environment if v.startswith("MPESA_BRIDGE_DATA_DIR="))
    assert data_dir == f"/var/lib/{service['StateDirectory']}" == service["WorkingDirectory"]


def test_systemd_server_unit_migrates_first_and_trusts_the_local_proxy_only() -> None:
    entries = unit_entries(ROOT / "deploy" / "systemd" / "mpesa-bridge.service")
    service = {key: value for section, key, value in entries if section == "Service"}
    pre = service["ExecStartPre"]
    assert check_cli_command(shlex.split(pre.replace("/opt/mpesa-bridge/bin/", ""))) == ["db", "upgrade"]
    environment = dict(v.split("=", 1) for section, k, v in entries if k == "Environment")
    assert environment["MPESA_BRIDGE_HOST"] == "127.0.0.1"
    assert environment["MPESA_BRIDGE_TRUSTED_PROXIES"] == "127.0.0.1,::1"
    assert environment["MPESA_BRIDGE_RECONCILE_ENABLED"] == "false", "the worker unit runs them"
    upstream = re.search(r"server (127\.0\.0\.1:\d+);", (ROOT / "deploy" / "nginx" / "mpesa-bridge.conf").read_text())
    assert upstream and upstream.group(1) == f"127.0.0.1:{environment['MPESA_BRIDGE_PORT']}"


# --- reverse proxies ----------------------------------------------------------------------------


def seconds(text: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m)?", text).groups()  # type: ignore[union-attr]
    return int(number) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[unit]


def test_nginx_example_matches_the_bridges_limits_tls_sse_and_forwarded_address() -> None:
    conf = (ROOT / "deploy" / "nginx" / "mpesa-bridge.conf").read_text()

    def directive(name: str) -> str:
        found = re.search(rf"^\s*{name}\s+([^;]+);", conf, re.MULTILINE)
        assert found, name
        return found.group(1).strip()

    assert seconds(directive("client_header_timeout")) == default("header_timeout")
    assert seconds(directive("client_body_timeout")) == default("body_timeout")
    assert directive("client_max_body_size") == f"{default('max_body_bytes') // 1024}k"
    assert seconds(directive("keepalive_timeout")) < default("keep_alive_timeout")  # the upstream's, first
    assert seconds(directive("proxy_read_timeout")) > default("sse_heartbeat_interval")
    assert directive("listen") == "80" and "listen 443 ssl;" in conf
    assert directive("ssl_certificate").endswith(".pem") and directive("ssl_certificate_key").endswith(".pem")
    assert directive("proxy_set_header X-Forwarded-For") == "$proxy_add_x_forwarded_for"
    locations = re.findall(r"location [^{]+\{([^}]*)\}", conf)
    assert len(locations) >= 4 and not any("proxy_set_header" in body for body in locations), (
        "a location with a proxy_set_header of its own inherits none of the server's (X-Forwarded-For)"
    )
    sse = re.search(r"location ~ (\S+) \{([^}]*)\}", conf)
    assert sse and "proxy_buffering off;" in sse.group(2)
    pattern = re.compile(sse.group(1))
    for path in (p for p in routes() if "events" in p or "stream" in p):
        assert pattern.match(re.sub(r"\{\w+\}", "id_1", path)), f"{path} is not passed on unbuffered"
    assert not pattern.match("/v1/events")  # the list of events is an ordinary answer


def test_caddy_example_matches_the_bridges_limits_sse_and_forwarded_address() -> None:
    caddy = (ROOT / "deploy" / "caddy" / "Caddyfile").read_text()

    def value(name: str) -> str:
        found = re.search(rf"^\s*{name}\s+(\S+)", caddy, re.MULTILINE)
        assert found, name
        return found.group(1)

    assert seconds(value("read_header")) == default("header_timeout")
    assert seconds(value("read_body")) == default("body_timeout")
    assert value("max_size") == f"{default('max_body_bytes') // 1024}KB"
    assert seconds(value("keepalive")) < default("keep_alive_timeout")
    assert value("flush_interval") == "-1"
    assert not re.search(r"^\s*write\s", caddy, re.MULTILINE), "a write timeout would cut SSE streams"
    assert re.search(r"^\{\$DOMAIN:[\w.-]+\} \{", caddy, re.MULTILINE), "a site address: Caddy's automatic TLS"
    assert "dynamic a {$UPSTREAM_HOST:127.0.0.1} {$UPSTREAM_PORT:8000}" in caddy


# --- licence and metadata -----------------------------------------------------------------------


def test_licence_matches_pyproject_and_the_package_metadata() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    licence = (ROOT / "LICENSE").read_text()
    assert project["license"] == {"text": "MIT"} and licence.startswith("MIT License\n")
    assert re.search(r"^Copyright \(c\) \d{4} mpesa-bridge contributors$", licence, re.MULTILINE)
    assert "License :: OSI Approved :: MIT License" in project["classifiers"]
    assert "Programming Language :: Python :: 3.11" in project["classifiers"]
    unknown = [c for c in project["classifiers"] if c not in trove_classifiers.classifiers]
    assert not unknown, f"PyPI refuses an upload with unknown classifiers: {unknown}"
    assert all(url.startswith("https://") for url in project.get("urls", {}).values())
    assert "mpesa" in project["keywords"]
    assert version("mpesa-bridge") == project["version"] == mpesa_bridge.__version__


def test_version_option_prints_the_installed_version() -> None:
    result = CliRunner().invoke(register_commands(), ["--version"])
    assert result.exit_code == 0 and result.output == f"mpesa-bridge {version('mpesa-bridge')}\n"


def test_changelog_keeps_an_unreleased_section_and_names_the_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert changelog.startswith("# Changelog")
    assert "keepachangelog.com" in changelog
    headings = re.findall(r"^## \[([^\]]+)\](.*)$", changelog, re.MULTILINE)
    assert headings[0] == ("Unreleased", "")
    for name, date in headings[1:]:  # a released version: "## [1.2.3] - 2027-01-31"
        assert re.fullmatch(r"\d+\.\d+\.\d+", name) and re.fullmatch(r" - \d{4}-\d{2}-\d{2}", date), name
    project_version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert project_version in changelog
    assert bridge_names(changelog) <= SETTING_NAMES | OTHER_BRIDGE_NAMES
