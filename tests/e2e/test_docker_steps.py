"""The Dockerfile's steps, run outside a container (no container engine runs on our machines).

Each stage gets a folder standing for its filesystem root. WORKDIR, COPY and ENV are applied there
(an ENV value that is an absolute path is placed under that folder, so `$VIRTUAL_ENV`, `$WHEELS`
and the data directory land in it; the folder's `usr/local/bin` comes first on PATH, as the
image's does), and each RUN runs as written with `sh -c`, with this machine's Python 3.11 as the
image's. The uv image stands for the uv that requirements.lock pins (the same version: checked).
Only the step that creates the system user is not run (it would change this machine);
tests/integration/test_deploy_files.py checks it. Then the "container"
starts as compose starts it: `mpesa-bridge db upgrade` (the compose file's migrate command), the
image's CMD, and the image's HEALTHCHECK command until it passes. The wheel built here is checked
for the package's data, and the systemd units are verified against the installed command.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from mpesa_bridge.core.crypto import generate_master_key
from tests.fixtures.deployfiles import ROOT, Stage, expand, healthcheck_command, parse_dockerfile
from tests.fixtures.servers import free_port

pytestmark = pytest.mark.slow

USER_STEP = ("groupadd", "useradd", "install")  # the commands of the one RUN not run here
UV_IMAGE = "ghcr.io/astral-sh/uv"


@dataclass
class Built:
    """A stage after its steps: its root folder, its environment, where it stands."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)
    workdir: Path | None = None
    skipped: list[str] = field(default_factory=list)

    def path(self, inside: str, base: Path | None = None) -> Path:
        return (
            self.root / inside.lstrip("/") if inside.startswith("/") else (base or self.workdir or self.root) / inside
        )


def locked_uv() -> Path:
    """The uv of this environment, which must be the version requirements.lock pins."""
    binary = Path(sys.executable).parent / "uv"
    pinned = re.search(r"^uv==(\S+)$", (ROOT / "requirements.lock").read_text(), re.MULTILINE)
    assert pinned and binary.is_file()
    shown = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True).stdout
    assert shown.split()[1] == pinned.group(1)
    return binary


def run_stage(stage: Stage, root: Path, built: dict[str, Built]) -> Built:
    out = Built(root)
    (root / "usr" / "local" / "bin").mkdir(parents=True)
    if stage.image.startswith(UV_IMAGE):  # the uv image: its /uv is the locked uv, of the same version
        binary = locked_uv()
        assert stage.image == f"{UV_IMAGE}:{(ROOT / 'requirements.lock').read_text().split('uv==')[1].split()[0]}"
        shutil.copy2(binary, root / "uv")
        return out
    out.env["PATH"] = f"{root / 'usr' / 'local' / 'bin'}:{os.environ['PATH']}"
    for instruction in stage.instructions:
        keyword, text = instruction.keyword, instruction.text
        if keyword == "ENV":
            for word in shlex.split(text):
                name, _, value = word.partition("=")
                value = expand(value, out.env)
                out.env[name] = str(out.path(value)) if value.startswith("/") and name != "PATH" else value
        elif keyword == "WORKDIR":
            out.workdir = out.path(text)
            out.workdir.mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY":
            copy(shlex.split(text), out, built)
        elif keyword == "RUN":
            run_step(text, out)
    return out


def copy(words: list[str], into: Built, built: dict[str, Built]) -> None:
    source_of: Built | None = None
    if words[0].startswith("--from="):
        source_of = built[words.pop(0).removeprefix("--from=")]
    *sources, destination = words
    for source in sources:
        origin = source_of.path(source) if source_of else ROOT / source
        target = into.path(destination)
        if origin.is_dir():
            shutil.copytree(origin, target / origin.name if destination.endswith("/") and source != "." else target)
        else:
            target.mkdir(parents=True, exist_ok=True) if destination.endswith("/") else None
            shutil.copy2(origin, target / origin.name if target.is_dir() else target)


def run_step(text: str, stage: Built) -> None:
    if text.split()[0] in USER_STEP:
        commands = [part.split()[0] for part in re.split(r"\s*&&\s*", text)]
        assert set(commands) <= set(USER_STEP), f"a system step mixes in other commands: {text}"
        stage.skipped.append(text)
        return
    assert not re.search(r"(^|\s)/", text), f"a RUN names an absolute path (use an ENV variable): {text}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPESA_BRIDGE_")}
    result = subprocess.run(
        ["sh", "-c", text], cwd=stage.workdir, env={**env, **stage.env}, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, f"RUN {text}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"


@dataclass
class Image:
    build: Built
    runtime: Built
    stage: Stage


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    """The image's steps, run once for the module."""
    base = tmp_path_factory.mktemp("image")
    _, stages = parse_dockerfile()
    built: dict[str, Built] = {}
    for stage in stages:
        built[stage.name] = run_stage(stage, base / stage.name, built)
    return Image(built["build"], built["runtime"], stages[-1])


def installed(image: Image, name: str) -> Path:
    found = shutil.which(name, path=image.runtime.env["PATH"])
    assert found and Path(found).is_relative_to(image.runtime.root), f"{name} is not the image's: {found}"
    return Path(found)


@pytest.fixture(scope="module")
def container_env(image: Image) -> dict[str, str]:
    """What the container's processes see: the image's ENV plus what .env gives in production."""
    data_dir = Path(image.runtime.env["MPESA_BRIDGE_DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)  # WORKDIR made it; the user step's `install -d -m 0700`:
    data_dir.chmod(0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPESA_BRIDGE_")}
    env.update(image.runtime.env)
    env.update(
        MPESA_BRIDGE_PORT=str(free_port()),
        MPESA_BRIDGE_MASTER_KEY=generate_master_key(),
        MPESA_BRIDGE_PUBLIC_BASE_URL="https://pay.example.test",
    )
    return env


def compose_service(name: str) -> dict[str, object]:
    services: dict[str, dict[str, object]] = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    return services[name]


def healthcheck(image: Image, env: dict[str, str]) -> int:
    argv = healthcheck_command(image.stage)
    installed(image, argv[0])
    return subprocess.run(argv, env=env, cwd=image.runtime.workdir, capture_output=True, timeout=10).returncode


@pytest.fixture(scope="module")
def serving(image: Image, container_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Migrated as compose's `migrate` service does, then the image's CMD, healthy by its HEALTHCHECK."""
    env, workdir = container_env, image.runtime.workdir
    assert healthcheck(image, env) != 0, "the health check passes with nothing serving"
    migrate = compose_service("migrate")["command"]
    assert isinstance(migrate, list)
    installed(image, migrate[0])
    done = subprocess.run(migrate, env=env, cwd=workdir, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    (cmd,) = image.stage.all("CMD")
    log = tmp_path_factory.mktemp("container") / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(cmd.json_or_words(), env=env, cwd=workdir, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while healthcheck(image, env) != 0:
            assert server.poll() is None, f"serve exited with {server.returncode}:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"not healthy in 30 s:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        yield log.read_text()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)


def test_the_image_serves_and_its_healthcheck_passes_in_production(serving: str, container_env: dict[str, str]) -> None:
    assert container_env["MPESA_BRIDGE_ENV"] == "production"
    assert '"event": "bridge.started"' in serving or '"event":"bridge.started"' in serving, serving[-2000:]


def test_the_workers_healthcheck_in_compose_passes_against_the_migrated_database(
    image: Image, container_env: dict[str, str], serving: str
) -> None:
    test = compose_service("worker")["healthcheck"]["test"]  # type: ignore[index]
    assert test[0] == "CMD"
    installed(image, test[1])
    result = subprocess.run(test[1:], env=container_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    current, head = re.fullmatch(r"current: (\S+)\s+head: (\S+)\s*", result.stdout).groups()  # type: ignore[union-attr]
    assert current == head


def test_the_image_holds_the_locked_versions_and_no_development_tool(image: Image) -> None:
    venv = Path(image.runtime.env["VIRTUAL_ENV"])
    assert not (venv / "bin" / "pip").exists(), "no pip in the runtime's environment"
    assert {p.name for p in image.runtime.root.iterdir()} == {"opt", "usr", "var"}, "the build's files stay behind"
    assert any(venv.glob("lib/python*/site-packages/mpesa_bridge/__pycache__/*.pyc")), "byte-compiled at build"
    pins: dict[str, set[str]] = {}  # a universal lock may pin two versions, one per Python range
    for name, pin in re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+)", (ROOT / "requirements.lock").read_text(), re.M):
        pins.setdefault(re.sub(r"[-_.]+", "-", name), set()).add(pin)
    found = {}
    for record in venv.glob("lib/python*/site-packages/*.dist-info"):
        name, release = record.name.removesuffix(".dist-info").rsplit("-", 1)
        found[re.sub(r"[-_.]+", "-", name.lower())] = release
    assert "mpesa-bridge" in found
    assert {"pytest", "mypy", "ruff", "playwright", "hypothesis"}.isdisjoint(found)
    unpinned = {
        name: release
        for name, release in found.items()
        if name != "mpesa-bridge" and release not in pins.get(name, set())
    }
    assert not unpinned, f"installed at versions requirements.lock does not pin: {unpinned}"


def test_the_wheel_carries_every_file_of_the_package(image: Image) -> None:
    (wheel,) = Path(image.build.env["WHEELS"]).glob("mpesa_bridge-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(
        ["git", "ls-files", "src/mpesa_bridge"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    missing = [path for path in tracked if path.removeprefix("src/") not in names]
    assert not missing, f"not in the wheel: {missing}"
    for data in ("templates/", "static/", "locales/", "migrations/versions/", "script.py.mako"):
        assert any(data in name for name in names), data
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)


@pytest.mark.parametrize("unit", ["mpesa-bridge.service", "mpesa-bridge-worker.service"])
def test_systemd_accepts_the_units_with_the_installed_command(image: Image, unit: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: the units are checked by test_deploy_files.py alone")
    text = (ROOT / "deploy" / "systemd" / unit).read_text()
    copy = tmp_path / unit
    copy.write_text(text.replace("/opt/mpesa-bridge", image.runtime.env["VIRTUAL_ENV"]))
    verified = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert verified.returncode == 0 and not verified.stderr.strip(), verified.stderr
    security = subprocess.run(
        [analyze, "security", "--offline=yes", str(copy)], capture_output=True, text=True, timeout=60
    )
    exposure = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", security.stdout + security.stderr)
    assert exposure and float(exposure.group(1)) <= 2.0, security.stdout[-2000:]
