"""The Helm chart in docker/helm/plancast: lint, render, and check what it renders.

Rendering needs helm, which ``scripts/tools/helm`` fetches into ``.tools/`` on first use (from
npm, so this module needs npm or a cached binary). Every rendered document is validated
against Kubernetes' own OpenAPI schemas (``kubernetes_validate``, strict: unknown fields fail
too), and the server-facing parts against the server itself: probes, port, user, and every
PLANCAST_* variable the pod gets, which must be settings ``Settings.load`` accepts.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from plancast.server.config import DEFAULT_PORT, SETTINGS, Settings
from plancast.server.web.auth import TOKEN_FILE

ROOT = Path(__file__).resolve().parents[2]
HELM = ROOT / "scripts" / "tools" / "helm"
CHART = ROOT / "docker" / "helm" / "plancast"

# Kubernetes versions to validate against: the oldest still commonly run, and the newest
# kubernetes_validate ships schemas for.
K8S_VERSIONS = ("1.30", kubernetes_validate.utils.latest_version())

# The settings the chart sets itself (pod address, port, data volume, secrets), or leaves out
# (TLS ends at the Ingress); every other setting is open to values' `config`.
CHART_MANAGED = {
    "host",
    "port",
    "data_dir",
    "database_url",
    "tls_certfile",
    "tls_keyfile",
    "smtp_password_file",
    "master_key",  # a secret: only ever from masterKey.existingSecret, as a file
    "master_key_file",
}

DATABASE_URL = "postgresql+asyncpg://plancast:p%40ss@postgres.db.svc:5432/plancast"
CUSTOM_VALUES: dict[str, Any] = {
    "replicaCount": 3,
    "config": {"log_level": "warning", "max_request_bytes": 33554432, "metrics_public": True},
    "database": {"url": DATABASE_URL},
    "masterKey": {"existingSecret": "plancast-master-key"},
    "auth": {"existingSecret": "plancast-token"},
    "ingress": {
        "enabled": True,
        "className": "nginx",
        "host": "plancast.example.org",
        "tls": {"enabled": True, "secretName": "plancast-example-tls"},
    },
    "resources": {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    },
}

Docs = dict[str, dict[str, Any]]  # kind -> the one rendered document of that kind


class Helm:
    """Runs scripts/tools/helm with a throwaway HOME, so nothing of the user's is read."""

    def __init__(self, home: Path) -> None:
        self.env = {"PATH": os.environ["PATH"], "HOME": str(home)}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(HELM), *args], capture_output=True, text=True, env=self.env, timeout=300
        )

    def template(self, tmp: Path, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The rendered documents; fails the test, with helm's message, if rendering fails."""
        result = self.render(tmp, values)
        assert result.returncode == 0, result.stderr
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    def render(
        self, tmp: Path, values: dict[str, Any] | None = None
    ) -> subprocess.CompletedProcess[str]:
        args = ["template", "rel", str(CHART), "--namespace", "plancast"]
        if values is not None:
            path = tmp / f"values-{len(list(tmp.glob('values-*')))}.yaml"
            path.write_text(yaml.safe_dump(values))
            args += ["--values", str(path)]
        return self.run(*args)


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """helm, fetched now if needed.

    The fetch runs with the environment the session started with (module fixtures are set up
    before the per-test clean environment), since npm needs its own configuration to reach a
    registry; helm itself then runs with a throwaway HOME.
    """
    if not (ROOT / ".tools" / "helm").exists():
        fetched = subprocess.run([str(HELM), "version"], capture_output=True, text=True)
        assert fetched.returncode == 0, (
            f"scripts/tools/helm could not fetch helm:\n{fetched.stderr}"
        )
    return Helm(tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("helm-values")


def _by_kind(docs: list[dict[str, Any]]) -> Docs:
    kinds = [doc["kind"] for doc in docs]
    assert len(kinds) == len(set(kinds)), f"one of each kind expected: {kinds}"
    return {doc["kind"]: doc for doc in docs}


@pytest.fixture(scope="module")
def default_docs(helm: Helm, scratch: Path) -> list[dict[str, Any]]:
    return helm.template(scratch)


@pytest.fixture(scope="module")
def custom_docs(helm: Helm, scratch: Path) -> list[dict[str, Any]]:
    return helm.template(scratch, CUSTOM_VALUES)


@pytest.fixture(scope="module")
def default(default_docs: list[dict[str, Any]]) -> Docs:
    return _by_kind(default_docs)


@pytest.fixture(scope="module")
def custom(custom_docs: list[dict[str, Any]]) -> Docs:
    return _by_kind(custom_docs)


def _container(docs: Docs) -> dict[str, Any]:
    (container,) = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def _pod_env(docs: Docs) -> dict[str, str]:
    """The PLANCAST_* variables the pod gets: the ConfigMap's, then the Secret's refs."""
    env = dict(docs["ConfigMap"]["data"])
    secret_data = docs["Secret"]["data"] if "Secret" in docs else {}
    for var in _container(docs).get("env", []):
        ref = var["valueFrom"]["secretKeyRef"]
        if ref["name"] == docs.get("Secret", {}).get("metadata", {}).get("name"):
            env[var["name"]] = base64.b64decode(secret_data[ref["key"]]).decode()
        else:
            env[var["name"]] = f"<from Secret {ref['name']}>"
    return env


def test_lint(helm: Helm) -> None:
    result = helm.run("lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("which", ["default_docs", "custom_docs"])
def test_every_document_is_valid_kubernetes(
    which: str, version: str, request: pytest.FixtureRequest
) -> None:
    docs: list[dict[str, Any]] = request.getfixturevalue(which)
    assert docs
    errors = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.absolute_path)
            errors.append(f"{doc['kind']} at {path}: {exc.message}")
    assert not errors, f"not valid for Kubernetes {version}:\n" + "\n".join(errors)


def test_expected_kinds(default: Docs, custom: Docs) -> None:
    always = {"Deployment", "Service", "Secret", "ConfigMap", "PodDisruptionBudget"}
    assert set(default) == always
    assert set(custom) == always | {"Ingress"}


def test_replicas_and_update_strategy_follow_the_database(default: Docs, custom: Docs) -> None:
    """SQLite is one process's file: one replica, and the old pod gone before the new starts."""
    assert default["Deployment"]["spec"]["replicas"] == 1
    assert default["Deployment"]["spec"]["strategy"]["type"] == "Recreate"
    assert custom["Deployment"]["spec"]["replicas"] == 3
    assert custom["Deployment"]["spec"]["strategy"]["type"] == "RollingUpdate"


@pytest.mark.parametrize("replicas", [2, 5])
def test_replicas_without_postgresql_fail_to_render(
    helm: Helm, scratch: Path, replicas: int
) -> None:
    for database in ({}, {"url": "sqlite+aiosqlite:////data/plancast.db"}):
        result = helm.render(scratch, {"replicaCount": replicas, "database": database})
        assert result.returncode != 0
        assert f"plancast: replicaCount {replicas} needs PostgreSQL" in result.stderr
    existing = {"replicaCount": replicas, "database": {"existingSecret": "plancast-db"}}
    result = helm.render(scratch, existing)  # PostgreSQL, but each pod its own master key
    assert result.returncode != 0
    assert f"plancast: replicaCount {replicas} needs masterKey.existingSecret" in result.stderr
    existing["masterKey"] = {"existingSecret": "plancast-master-key"}
    docs = _by_kind(helm.template(scratch, existing))
    assert docs["Deployment"]["spec"]["replicas"] == replicas
    (var,) = _container(docs)["env"]
    assert var["name"] == "PLANCAST_DATABASE_URL"
    assert var["valueFrom"]["secretKeyRef"] == {
        "name": "plancast-db",
        "key": "PLANCAST_DATABASE_URL",
    }


@pytest.mark.parametrize("which", ["default", "custom"])
def test_probes_hit_the_ops_endpoints_on_the_server_port(
    which: str, request: pytest.FixtureRequest
) -> None:
    docs: Docs = request.getfixturevalue(which)
    container = _container(docs)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}

    def probe(name: str) -> tuple[str, int]:
        get = container[name]["httpGet"]
        port = ports[get["port"]] if isinstance(get["port"], str) else get["port"]
        return get["path"], port

    assert probe("livenessProbe") == ("/healthz", DEFAULT_PORT)
    assert probe("readinessProbe") == ("/readyz", DEFAULT_PORT)
    assert probe("startupProbe") == ("/healthz", DEFAULT_PORT)
    # The port the server listens on is the one the probes and the Service use.
    assert Settings.load(environ=_pod_env(docs)).port == DEFAULT_PORT
    service_port = docs["Service"]["spec"]["ports"][0]
    assert ports[service_port["targetPort"]] == DEFAULT_PORT


@pytest.mark.parametrize("which", ["default", "custom"])
def test_pod_runs_as_non_root_with_nothing_writable_but_its_volumes(
    which: str, request: pytest.FixtureRequest
) -> None:
    docs: Docs = request.getfixturevalue(which)
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    context = _container(docs)["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in _container(docs)["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert "emptyDir" in volumes[mounts["/data"]]
    assert Settings.load(environ=_pod_env(docs)).data_dir == Path("/data")


@pytest.mark.parametrize("which", ["default", "custom"])
def test_pod_settings_are_real_and_accepted_by_the_server(
    which: str, request: pytest.FixtureRequest
) -> None:
    docs: Docs = request.getfixturevalue(which)
    real = {s.env for s in SETTINGS}
    keys = set(docs["ConfigMap"]["data"]) | {
        k for k in docs.get("Secret", {}).get("data", {}) if k.startswith("PLANCAST_")
    }
    assert keys <= real, keys - real
    env = _pod_env(docs)
    assert set(env) <= real
    assert env["PLANCAST_HOST"] == "0.0.0.0"
    settings = Settings.load(environ={k: v for k, v in env.items() if not v.startswith("<")})
    assert settings.host == "0.0.0.0"
    config = {"default": {"log_format": "json"}, "custom": CUSTOM_VALUES["config"]}[which]
    for name, value in config.items():
        assert getattr(settings, name) == value, name


def test_the_configmap_and_the_deployment_are_wired(custom: Docs) -> None:
    container = _container(custom)
    assert container["envFrom"] == [
        {"configMapRef": {"name": custom["ConfigMap"]["metadata"]["name"]}}
    ]
    # A big integer stays an integer (Helm reads YAML numbers as floats).
    assert custom["ConfigMap"]["data"]["PLANCAST_MAX_REQUEST_BYTES"] == "33554432"
    assert container["resources"] == CUSTOM_VALUES["resources"]
    assert container["image"] == "plancast-server:0.1.0"


def test_database_url_and_existing_token_secret(custom: Docs) -> None:
    secret = custom["Secret"]
    assert set(secret["data"]) == {"PLANCAST_DATABASE_URL"}  # the token is the user's Secret
    assert _pod_env(custom)["PLANCAST_DATABASE_URL"] == DATABASE_URL
    pod = custom["Deployment"]["spec"]["template"]["spec"]
    (token,) = [v for v in pod["volumes"] if v["name"] == "token"]
    assert token["secret"]["secretName"] == "plancast-token"
    assert token["secret"]["items"] == [{"key": "local-token", "path": "local-token"}]


def test_access_token_is_one_file_for_every_replica(
    default: Docs, helm: Helm, scratch: Path
) -> None:
    """The server reads DATA_DIR/local-token and only makes one if it is missing."""
    container = _container(default)
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "token"]
    assert mount["mountPath"] == f"/data/{TOKEN_FILE}" and mount["readOnly"] is True
    generated = base64.b64decode(default["Secret"]["data"][TOKEN_FILE]).decode()
    assert len(generated) >= 32 and generated.isalnum()
    given = _by_kind(helm.template(scratch, {"auth": {"token": "a-token-of-my-own"}}))
    assert base64.b64decode(given["Secret"]["data"][TOKEN_FILE]) == b"a-token-of-my-own"


def test_ingress_has_tls_and_routes_to_the_service(custom: Docs) -> None:
    ingress = custom["Ingress"]["spec"]
    host = CUSTOM_VALUES["ingress"]["host"]
    assert ingress["ingressClassName"] == "nginx"
    assert ingress["tls"] == [{"hosts": [host], "secretName": "plancast-example-tls"}]
    (rule,) = ingress["rules"]
    assert rule["host"] == host
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == custom["Service"]["metadata"]["name"]
    assert backend["port"]["name"] in {p["name"] for p in custom["Service"]["spec"]["ports"]}


def test_selectors_match_the_pods(custom: Docs) -> None:
    labels = custom["Deployment"]["spec"]["template"]["metadata"]["labels"]
    for selector in (
        custom["Deployment"]["spec"]["selector"]["matchLabels"],
        custom["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
        custom["Service"]["spec"]["selector"],
    ):
        assert selector and selector.items() <= labels.items()


def test_disruption_budget_from_values(default: Docs, helm: Helm, scratch: Path) -> None:
    assert default["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1
    docs = _by_kind(
        helm.template(
            scratch,
            {
                "replicaCount": 3,
                "database": {"url": DATABASE_URL},
                "masterKey": {"existingSecret": "plancast-master-key"},
                "podDisruptionBudget": {"minAvailable": 2},
            },
        )
    )
    spec = docs["PodDisruptionBudget"]["spec"]
    assert spec["minAvailable"] == 2 and "maxUnavailable" not in spec


def test_termination_grace_outlasts_the_shutdown_grace(default: Docs) -> None:
    pod = default["Deployment"]["spec"]["template"]["spec"]
    grace = Settings.load(environ=_pod_env(default)).shutdown_grace_s
    assert pod["terminationGracePeriodSeconds"] > grace


def test_smtp_password_file_is_mounted_where_the_setting_points(helm: Helm, scratch: Path) -> None:
    docs = _by_kind(helm.template(scratch, {"smtp": {"passwordSecret": "plancast-smtp"}}))
    path = Path(docs["ConfigMap"]["data"]["PLANCAST_SMTP_PASSWORD_FILE"])
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (mount,) = [m for m in _container(docs)["volumeMounts"] if m["name"] == "smtp-password"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "smtp-password"]
    assert Path(mount["mountPath"]) == path.parent
    assert volume["secret"]["secretName"] == "plancast-smtp"
    assert [item["path"] for item in volume["secret"]["items"]] == [path.name]


def test_the_master_key_is_mounted_where_the_setting_points(helm: Helm, scratch: Path) -> None:
    docs = _by_kind(helm.template(scratch, {"masterKey": {"existingSecret": "plancast-mk"}}))
    path = Path(docs["ConfigMap"]["data"]["PLANCAST_MASTER_KEY_FILE"])
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "master-key"]
    assert Path(mount["mountPath"]) == path.parent and mount["readOnly"] is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == "master-key"]
    assert volume["secret"]["secretName"] == "plancast-mk"
    assert volume["secret"]["items"] == [{"key": "master-key", "path": path.name}]
    default = _by_kind(helm.template(scratch, {}))
    assert "PLANCAST_MASTER_KEY_FILE" not in default["ConfigMap"]["data"]


def test_values_schema_config_is_exactly_the_open_settings() -> None:
    """values.schema.json rejects a misspelt setting; it must list every one, with its type."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    config = schema["properties"]["config"]
    assert config["additionalProperties"] is False
    types = {int: "integer", float: "number", bool: "boolean", str: "string"}
    expected = {
        s.name: {
            "type": types[s.type],
            **({"minimum": s.minimum} if s.minimum is not None else {}),
            **({"maximum": s.maximum} if s.maximum is not None else {}),
        }
        for s in SETTINGS
        if s.name not in CHART_MANAGED
    }
    assert config["properties"] == expected
    assert CHART_MANAGED <= {s.name for s in SETTINGS}
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values["config"]) <= set(expected)


def test_a_misspelt_setting_fails_to_render(helm: Helm, scratch: Path) -> None:
    result = helm.render(scratch, {"config": {"log_fromat": "json"}})
    assert result.returncode != 0 and "log_fromat" in result.stderr


def test_persistence_claims_the_data_volume(helm: Helm, scratch: Path) -> None:
    values = {"persistence": {"enabled": True, "size": "5Gi", "storageClass": "fast"}}
    docs = _by_kind(helm.template(scratch, values))
    claim = docs["PersistentVolumeClaim"]
    for doc in docs.values():
        kubernetes_validate.validate(doc, K8S_VERSIONS[-1], strict=True)
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert claim["spec"]["storageClassName"] == "fast"
    # Kept on uninstall: it may hold the only copy of the plans.
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (data,) = [v for v in pod["volumes"] if v["name"] == "data"]
    assert data["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert docs["Deployment"]["spec"]["strategy"]["type"] == "Recreate"

    values["persistence"]["existingClaim"] = "plancast-data"
    docs = _by_kind(helm.template(scratch, values))
    assert "PersistentVolumeClaim" not in docs
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (data,) = [v for v in pod["volumes"] if v["name"] == "data"]
    assert data["persistentVolumeClaim"]["claimName"] == "plancast-data"
