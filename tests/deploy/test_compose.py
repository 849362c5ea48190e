"""docker/compose.yml, checked without a Docker daemon.

The file is read with PyYAML: what it references exists, it sets only real settings, both
services are health-checked and the server waits for a healthy database, and the database
password is read from a secret file, never written inline. The server's command that builds
the database URL from that file is run here too, with a password full of URL syntax. When the
Compose plugin is installed, ``docker compose config`` validates the file as well (it needs no
daemon).
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import make_url

from plancast.server.config import SETTINGS, Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yml"
SECRET_MOUNT = "/run/secrets/"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def server(compose: dict[str, Any]) -> dict[str, Any]:
    service: dict[str, Any] = compose["services"]["server"]
    return service


@pytest.fixture(scope="module")
def db(compose: dict[str, Any]) -> dict[str, Any]:
    service: dict[str, Any] = compose["services"]["db"]
    return service


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the KEY=VALUE list form
        env = dict(item.partition("=")[::2] for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _gitignored(folder: Path, name: str) -> bool:
    """Whether ``folder/.gitignore`` ignores ``name`` (last matching pattern wins, as in git)."""
    ignored = False
    for line in (folder / ".gitignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        if fnmatch.fnmatch(name, pattern.removeprefix("!")):
            ignored = not negated
    return ignored


def test_build_context_and_dockerfile_exist(server: dict[str, Any]) -> None:
    context = (DOCKER / server["build"]["context"]).resolve()
    assert context == ROOT
    assert (context / server["build"]["dockerfile"]).is_file()


def test_secret_files_are_documented_and_kept_out_of_git(compose: dict[str, Any]) -> None:
    """The password file is the operator's to create: its folder, README and ignore rule ship."""
    secrets = compose["secrets"]
    assert secrets
    for name, secret in secrets.items():
        path = DOCKER / secret["file"]
        assert path.parent.is_dir(), f"secret {name}: {path.parent} is missing"
        assert _gitignored(path.parent, path.name), f"{path.name} would be committed"
        assert not _gitignored(path.parent, "README.md")
        assert path.name in (path.parent / "README.md").read_text()


def test_volumes_are_named_or_existing_paths(compose: dict[str, Any]) -> None:
    named = set(compose.get("volumes") or {})
    for service in compose["services"].values():
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            if source.startswith((".", "/")):
                assert (DOCKER / source).exists(), source
            else:
                assert source in named, f"volume {source} is not declared"
    assert named, "the data would live in anonymous volumes"


def test_only_real_settings(compose: dict[str, Any]) -> None:
    """Every PLANCAST_* name anywhere in the file, the command included, is a real setting."""
    real = {s.env for s in SETTINGS}
    names = set(re.findall(r"\bPLANCAST_[A-Z0-9_]+", COMPOSE.read_text()))
    assert "PLANCAST_DATABASE_URL" in names
    assert names <= real, names - real
    for service in compose["services"].values():
        plancast_env = {k for k in _environment(service) if k.startswith("PLANCAST_")}
        assert plancast_env <= real


def test_both_services_are_health_checked_and_the_server_waits(
    server: dict[str, Any], db: dict[str, Any]
) -> None:
    assert "/readyz" in " ".join(server["healthcheck"]["test"])
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert server["depends_on"]["db"]["condition"] == "service_healthy"


def test_no_password_inline(compose: dict[str, Any], server: dict[str, Any]) -> None:
    for service in compose["services"].values():
        for key, value in _environment(service).items():
            if re.search(r"PASSWORD|SECRET|TOKEN", key):
                assert key.endswith("_FILE") and value.startswith(SECRET_MOUNT), key
    assert "PLANCAST_DATABASE_URL" not in _environment(server)
    # No URL with a literal user:password@ anywhere in the file.
    assert not re.search(r"://[^/\s:@\"']+:[^@\s\"'+]+@", COMPOSE.read_text())
    assert "db_password" in server["secrets"]


def test_the_server_listens_on_host_loopback_only(server: dict[str, Any]) -> None:
    """Plain HTTP: beyond this machine it belongs behind a TLS proxy."""
    assert server["ports"] and all(str(p).startswith("127.0.0.1:") for p in server["ports"])


def test_stop_grace_outlasts_the_shutdown_grace(server: dict[str, Any]) -> None:
    grace = Settings.load(environ=_environment(server)).shutdown_grace_s
    assert re.fullmatch(r"\d+s", server["stop_grace_period"])
    assert int(server["stop_grace_period"][:-1]) > grace


def test_server_command_builds_the_database_url_from_the_secret(
    compose: dict[str, Any],
    server: dict[str, Any],
    db: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Run the command's script with a password that breaks a naively built URL."""
    assert server["entrypoint"] == ["python", "-c"]
    (script,) = server["command"]
    password = "p@ss:w/rd?#%&= x"
    secret = tmp_path / "db_password"
    secret.write_text(password + "\n")  # as `echo`/`print` write it
    assert script.count(SECRET_MOUNT + "db_password") == 1
    script = script.replace(SECRET_MOUNT + "db_password", str(secret))

    execs: list[tuple[str, list[str]]] = []

    def fake_execvp(file: str, args: list[str]) -> None:
        execs.append((file, args))

    monkeypatch.setattr("os.execvp", fake_execvp)
    monkeypatch.delenv("PLANCAST_DATABASE_URL", raising=False)
    exec(compile(script, "compose.yml:server.command", "exec"), {})

    assert execs == [("plancast-server", ["plancast-server"])]
    settings = Settings.load()  # reads the variable the script set, as the server will
    url = make_url(settings.database_url)
    env = _environment(db)
    assert url.drivername == "postgresql+asyncpg"
    assert url.password == password
    assert (url.username, url.database) == (env["POSTGRES_USER"], env["POSTGRES_DB"])
    assert compose["services"].get(url.host) is db and url.host in server["depends_on"]
    assert env["POSTGRES_PASSWORD_FILE"] == SECRET_MOUNT + "db_password"


def _compose_plugin() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    version = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=60)
    return version.returncode == 0


def test_compose_file_is_valid(compose: dict[str, Any], tmp_path: Path) -> None:
    """The shape Compose expects; and Compose's own verdict where its plugin is installed."""
    assert set(compose) <= {"name", "services", "secrets", "volumes", "networks", "configs"}
    for name, service in compose["services"].items():
        assert "image" in service or "build" in service, name
        for secret in service.get("secrets") or []:
            assert secret in compose["secrets"], f"{name} uses undeclared secret {secret}"
    if not _compose_plugin():
        return
    # A copy, with a stand-in password file: nothing is written into the checkout.
    copy = tmp_path / "docker"
    shutil.copytree(DOCKER, copy, ignore=shutil.ignore_patterns("helm"))
    for secret in compose["secrets"].values():
        (copy / secret["file"]).write_text("stand-in\n")
    result = subprocess.run(
        ["docker", "compose", "-f", str(copy / "compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
