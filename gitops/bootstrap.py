"""The GitOps repository's Argo CD bootstrap: one ApplicationSet that turns every deployments/<ns>/<name>/
directory on main into an Application, and deletes (and prunes) it when the directory goes.

`servewise gitops init` proposes it; the first propose to a repository without it carries it along; an empty
repository gets `main` with a README and the bootstrap before the first deployment's pull request.
"""

from __future__ import annotations

import json
from functools import cache
from urllib.parse import urlsplit

import yaml

from gitops.render import PLACEHOLDER_REPO, _md_env, _yaml_env
from gitops.validate import SCHEMAS
from planner.errors import BadInput

BOOTSTRAP_DIR = "bootstrap"
APPSET_PATH = f"{BOOTSTRAP_DIR}/applicationset.yaml"
APPSET_NAME = "servewise-deployments"
ARGOCD_NAMESPACE = "argocd"
DEPLOYMENTS_GLOB = "deployments/*/*"


def clone_url(forge: str | None, repo: str | None, url: str | None) -> str | None:
    """The HTTPS clone URL Argo CD reads a hosted forge's repository from (None for the local forge)."""
    if not repo or forge not in ("github", "gitlab"):
        return None
    if forge == "github":
        # GitHub Enterprise's API lives at https://HOST/api/v3; its repositories at https://HOST/owner/name.git
        host = urlsplit(url).netloc if url else "github.com"
        return f"https://{host}/{repo}.git"
    return f"{(url or 'https://gitlab.com').rstrip('/')}/{repo}.git"


def bootstrap_files(repo_url: str | None, *, project: str = "default", revision: str = "main") -> dict[str, str]:
    """bootstrap/applicationset.yaml and the kustomization that applies it to the argocd namespace."""
    ctx = {"name": APPSET_NAME, "argocd_namespace": ARGOCD_NAMESPACE, "repo_url": repo_url or PLACEHOLDER_REPO,
           "revision": revision, "project": project, "directories": DEPLOYMENTS_GLOB,
           # Argo CD's Go templates over the directory generator's path (docs: Generators-Git.md); the Application
           # name carries the namespace so that one name in two namespaces stays two Applications.
           "app_name": "{{index .path.segments 1}}-{{.path.basename}}", "app_path": "{{.path.path}}",
           "app_namespace": "{{index .path.segments 1}}"}
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                     "namespace": ARGOCD_NAMESPACE, "resources": ["applicationset.yaml"]}
    return {APPSET_PATH: _yaml_env.get_template("applicationset.yaml.j2").render(ctx),
            f"{BOOTSTRAP_DIR}/kustomization.yaml": yaml.safe_dump(kustomization, sort_keys=False)}


def repository_readme(repo_url: str | None) -> str:
    return _md_env.get_template("gitops-README.md.j2").render(
        repo_url=repo_url or PLACEHOLDER_REPO, placeholder=not repo_url, argocd_namespace=ARGOCD_NAMESPACE)


@cache
def _schema():
    import jsonschema

    return jsonschema.Draft7Validator(json.loads((SCHEMAS / "applicationset_argoproj.io_v1alpha1.json").read_text()))


def validate_applicationset(text: str) -> list[str]:
    """Problems of the ApplicationSet against Argo CD v3.5.1's CRD schema (empty when valid)."""
    doc = yaml.safe_load(text)
    return [f"{'.'.join(map(str, e.path)) or '(root)'}: {e.message[:300]}" for e in _schema().iter_errors(doc)]


def checked_bootstrap(repo_url: str | None) -> dict[str, str]:
    files = bootstrap_files(repo_url)
    issues = validate_applicationset(files[APPSET_PATH])
    if issues:
        raise BadInput("the rendered ApplicationSet failed validation: " + "; ".join(issues[:5]))
    return files
