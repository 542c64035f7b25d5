"""A loopback HTTP server answering like the GitHub REST API for the endpoints servewise uses.

Shapes follow GitHub's REST documentation (repos, git refs/commits/trees, pulls, issues/comments,
labels, contents, commits): only the fields PyGithub reads are filled in. A tiny git object store
backs it, so commits, trees and merges behave. Failure injection comes from tests.fakes.rest.

`FakeGitHub(empty=True)` is a repository without commits, as GitHub answers for one:
- the git database endpoints (refs, trees, commits) answer 409 "Git Repository is empty.", and the guide says to
  start the repository with `PUT /repos/{owner}/{repo}/contents/{path}` (docs.github.com/en/rest/guides/
  using-the-rest-api-to-interact-with-your-git-database; 409 on trees: github/rest-api-description#637,
  github/docs#31951);
- `GET /repos/{owner}/{repo}/commits` answers 409 the same way (octokit/handbook, "Some list endpoints respond
  with 204 or 409 if the repository is empty"); `GET .../contents/{path}` answers 404 "This repository is empty.";
- that PUT makes the first commit, on the `branch` it names or else the default branch (docs.github.com/en/rest/
  repos/contents#create-or-update-file-contents: "branch: The branch name. Default: the repository's default
  branch"; a branch named in an empty repository is created, CATcher-org/CATcher#1234);
- opening a pull request onto a base branch that does not exist is refused with 422 Validation Failed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from urllib.parse import unquote

from tests.fakes.rest import LoopbackRest


def _sha(*parts: object) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class FakeGitHub(LoopbackRest):
    def __init__(self, owner: str = "acme", repo: str = "deploys", token: str = "ghp_testtoken",
                 login: str = "servewise-bot", empty: bool = False) -> None:
        self.owner, self.name, self.token, self.login = owner, repo, token, login
        self.default_branch = "main"
        # An Actions GITHUB_TOKEN or GitHub App token: /user is refused, comments are by a Bot account.
        self.app_token = False
        self.trees: dict[str, dict[str, str]] = {}
        self.commits: dict[str, dict] = {}
        self.refs: dict[str, str] = {}
        self.pulls: dict[int, dict] = {}
        self.comments: dict[int, dict] = {}
        self.labels: dict[int, list[str]] = {}
        if not empty:
            self.refs["main"] = self._commit(self._tree({"README.md": "# deployments\n"}), [], "init")
        super().__init__()

    def authorized(self, headers) -> bool:
        return headers.get("Authorization") in (f"token {self.token}", f"Bearer {self.token}")

    # -- git object store ---------------------------------------------------------------------
    def _tree(self, files: dict[str, str]) -> str:
        sha = _sha("tree", sorted(files.items()))
        self.trees[sha] = dict(files)
        return sha

    def _commit(self, tree: str, parents: list[str], message: str) -> str:
        sha = _sha("commit", tree, parents, message, time.time_ns())
        self.commits[sha] = {"tree": tree, "parents": parents, "message": message}
        return sha

    def files_at(self, ref: str) -> dict[str, str]:
        sha = self.refs.get(ref, ref)
        return self.trees[self.commits[sha]["tree"]]

    # -- JSON shapes ----------------------------------------------------------------------------
    @property
    def repo_url(self) -> str:
        return f"{self.base}/repos/{self.owner}/{self.name}"

    def _repo_json(self) -> dict:
        return {"id": 1, "name": self.name, "full_name": f"{self.owner}/{self.name}", "owner": {"login": self.owner},
                "url": self.repo_url, "html_url": f"https://github.example/{self.owner}/{self.name}",
                "default_branch": self.default_branch}

    def _ref_json(self, branch: str) -> dict:
        sha = self.refs[branch]
        return {"ref": f"refs/heads/{branch}", "url": f"{self.repo_url}/git/refs/heads/{branch}",
                "object": {"sha": sha, "type": "commit", "url": f"{self.repo_url}/git/commits/{sha}"}}

    def _commit_json(self, sha: str) -> dict:
        c = self.commits[sha]
        return {"sha": sha, "url": f"{self.repo_url}/git/commits/{sha}", "message": c["message"],
                "tree": {"sha": c["tree"], "url": f"{self.repo_url}/git/trees/{c['tree']}"},
                "parents": [{"sha": p, "url": f"{self.repo_url}/git/commits/{p}"} for p in c["parents"]]}

    def _tree_json(self, sha: str) -> dict:
        return {"sha": sha, "url": f"{self.repo_url}/git/trees/{sha}", "truncated": False,
                "tree": [{"path": p, "mode": "100644", "type": "blob", "sha": _sha("blob", c), "size": len(c)}
                         for p, c in sorted(self.trees[sha].items())]}

    def _pull_json(self, n: int) -> dict:
        p = self.pulls[n]
        head_sha = self.refs.get(p["head"], p.get("merged_sha", ""))
        return {"number": n, "id": n, "url": f"{self.repo_url}/pulls/{n}", "issue_url": f"{self.repo_url}/issues/{n}",
                "html_url": f"https://github.example/{self.owner}/{self.name}/pull/{n}", "state": p["state"],
                "title": p["title"], "body": p["body"], "merged": p["merged"],
                "head": {"ref": p["head"], "sha": head_sha, "label": f"{self.owner}:{p['head']}"},
                "base": {"ref": p["base"], "sha": self.refs[p["base"]]},
                "labels": [{"name": label} for label in self.labels.get(n, [])]}

    def _issue_json(self, n: int) -> dict:
        return {"number": n, "id": n, "url": f"{self.repo_url}/issues/{n}", "title": self.pulls[n]["title"],
                "state": self.pulls[n]["state"], "comments_url": f"{self.repo_url}/issues/{n}/comments"}

    def _comment_json(self, cid: int) -> dict:
        c = self.comments[cid]
        login = c.get("user", self.login)
        bot = login.endswith("[bot]")
        return {"id": cid, "body": c["body"], "url": f"{self.repo_url}/issues/comments/{cid}",
                "user": {"login": login, "type": "Bot" if bot else "User"}}

    # -- routing --------------------------------------------------------------------------------
    def route(self, method: str, path: str, query: dict, body: dict):  # noqa: C901 - one table of endpoints
        path = unquote(path).removeprefix("/api/v3")
        if method == "GET" and path == "/user":  # the token's own account
            if self.app_token:
                return 403, {"message": "Resource not accessible by integration",
                             "documentation_url": "https://docs.github.com/rest/users/users#get-the-authenticated-user"}
            return 200, {"login": self.login, "id": 42, "type": "User", "url": f"{self.base}/user"}
        repo = f"/repos/{self.owner}/{self.name}"
        if not path.startswith(repo):
            return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}
        rest = path[len(repo):]
        if method == "GET" and rest == "":
            return 200, self._repo_json()
        if not self.refs:  # no commits yet
            if rest.startswith("/git/") or (method == "GET" and rest == "/commits"):
                return 409, {"message": "Git Repository is empty.", "documentation_url": "https://docs.github.com/rest"}
            if method == "GET" and rest.startswith("/contents/"):
                return 404, {"message": "This repository is empty.", "documentation_url": "https://docs.github.com/rest"}
        if method == "PUT" and (m := re.fullmatch(r"/contents/(.+)", rest)):
            return self._put_contents(m.group(1), body)
        if m := re.fullmatch(r"/git/ref/heads/(.+)", rest):
            branch = m.group(1)
            return (200, self._ref_json(branch)) if branch in self.refs else (404, {"message": "Not Found"})
        if method == "POST" and rest == "/git/refs":
            branch = body["ref"].removeprefix("refs/heads/")
            if branch in self.refs:
                return 422, {"message": "Reference already exists"}
            self.refs[branch] = body["sha"]
            return 201, self._ref_json(branch)
        if method == "PATCH" and (m := re.fullmatch(r"/git/refs/heads/(.+)", rest)):
            self.refs[m.group(1)] = body["sha"]
            return 200, self._ref_json(m.group(1))
        if method == "GET" and (m := re.fullmatch(r"/git/commits/(\w+)", rest)):
            return 200, self._commit_json(m.group(1))
        if method == "POST" and rest == "/git/trees":
            files = dict(self.trees[body["base_tree"]]) if body.get("base_tree") else {}
            for e in body["tree"]:
                if e.get("content") is not None:
                    files[e["path"]] = e["content"]
                elif "sha" in e and e["sha"] is None:
                    files.pop(e["path"], None)
            return 201, self._tree_json(self._tree(files))
        if method == "GET" and (m := re.fullmatch(r"/git/trees/(\w+)", rest)):
            sha = m.group(1)
            tree = self.commits[sha]["tree"] if sha in self.commits else sha
            return 200, self._tree_json(tree)
        if method == "POST" and rest == "/git/commits":
            return 201, self._commit_json(self._commit(body["tree"], body["parents"], body["message"]))
        if rest == "/pulls" and method == "GET":
            head = query.get("head", [None])[0]
            state = query.get("state", ["open"])[0]
            return 200, [self._pull_json(n) for n, p in sorted(self.pulls.items())
                         if (state == "all" or p["state"] == state) and (head is None or head == f"{self.owner}:{p['head']}")]
        if rest == "/pulls" and method == "POST":
            if body["base"] not in self.refs:
                return 422, {"message": "Validation Failed",
                             "errors": [{"resource": "PullRequest", "field": "base", "code": "invalid"}]}
            if any(p["head"] == body["head"] and p["state"] == "open" for p in self.pulls.values()):
                return 422, {"message": "Validation Failed",
                             "errors": [{"message": f"A pull request already exists for {self.owner}:{body['head']}."}]}
            n = max([*self.pulls, *self.comments, 0]) + 1
            self.pulls[n] = {"head": body["head"], "base": body["base"], "title": body["title"], "body": body.get("body", ""),
                             "state": "open", "merged": False}
            return 201, self._pull_json(n)
        if m := re.fullmatch(r"/pulls/(\d+)", rest):
            n = int(m.group(1))
            if n not in self.pulls:
                return 404, {"message": "Not Found"}
            if method == "PATCH":
                self.pulls[n].update({k: v for k, v in body.items() if k in ("title", "body", "state")})
            return 200, self._pull_json(n)
        if method == "PUT" and (m := re.fullmatch(r"/pulls/(\d+)/merge", rest)):
            n = int(m.group(1))
            p = self.pulls[n]
            head = self.refs[p["head"]]
            merge = self._commit(self.commits[head]["tree"], [self.refs[p["base"]], head], f"Merge pull request #{n}")
            self.refs[p["base"]] = merge
            p.update(state="closed", merged=True, merged_sha=head)
            return 200, {"sha": merge, "merged": True, "message": "Pull Request successfully merged"}
        if m := re.fullmatch(r"/issues/(\d+)", rest):
            return 200, self._issue_json(int(m.group(1)))
        if method == "POST" and (m := re.fullmatch(r"/issues/(\d+)/labels", rest)):
            n = int(m.group(1))
            self.labels[n] = sorted({*self.labels.get(n, []), *(body.get("labels", body) if isinstance(body, dict) else body)})
            return 200, [{"name": label} for label in self.labels[n]]
        if m := re.fullmatch(r"/issues/(\d+)/comments", rest):
            n = int(m.group(1))
            if method == "POST":
                cid = 1000 + len(self.comments) + 1
                self.comments[cid] = {"issue": n, "body": body["body"], "user": self.login}
                return 201, self._comment_json(cid)
            return 200, [self._comment_json(c) for c, v in sorted(self.comments.items()) if v["issue"] == n]
        if method == "PATCH" and (m := re.fullmatch(r"/issues/comments/(\d+)", rest)):
            cid = int(m.group(1))
            self.comments[cid]["body"] = body["body"]
            return 200, self._comment_json(cid)
        if method == "GET" and (m := re.fullmatch(r"/contents/(.+)", rest)):
            path, ref = m.group(1), query.get("ref", ["main"])[0]
            files = self.files_at(ref)
            if path not in files:
                return 404, {"message": "Not Found"}
            return 200, {"type": "file", "encoding": "base64", "path": path, "name": path.split("/")[-1],
                         "sha": _sha("blob", files[path]), "url": f"{self.repo_url}/contents/{path}",
                         "content": base64.b64encode(files[path].encode()).decode(), "size": len(files[path])}
        if method == "GET" and rest == "/commits":
            sha, path = query.get("sha", ["main"])[0], query.get("path", [None])[0]
            return 200, [{"sha": c, "url": f"{self.repo_url}/commits/{c}", "commit": {"message": self.commits[c]["message"]}}
                         for c in self._history(self.refs.get(sha, sha), path)]
        return 404, {"message": f"Not Found: {method} {rest}"}

    def _put_contents(self, path: str, body: dict):
        """Create a file in one commit. Not modelled (servewise writes through this endpoint only into an empty
        repository): updating a file, which needs its blob `sha`, and naming a missing branch of a non-empty one."""
        branch = body.get("branch", "main")
        content = base64.b64decode(body["content"]).decode()
        if self.refs and branch not in self.refs:
            return 404, {"message": "Not Found: this fake creates branches with the contents API only when empty"}
        parent = self.refs.get(branch)
        files = dict(self.files_at(branch)) if parent else {}
        if path in files:  # GitHub's answer when a PUT would overwrite a file without naming it (octokit.net#1725)
            return 422, {"message": "Invalid request.\n\n\"sha\" wasn't supplied."}
        files[path] = content
        self.refs[branch] = self._commit(self._tree(files), [parent] if parent else [], body["message"])
        return 201, {"content": {"type": "file", "path": path, "name": path.split("/")[-1], "sha": _sha("blob", content),
                                 "url": f"{self.repo_url}/contents/{path}"},
                     "commit": self._commit_json(self.refs[branch])}

    def _history(self, head: str, path: str | None) -> list[str]:
        """Commits reachable from head (first parents) whose change touched path, newest first."""
        out, sha = [], head
        while sha:
            c = self.commits[sha]
            parent = c["parents"][-1] if len(c["parents"]) > 1 else (c["parents"][0] if c["parents"] else None)
            before = self.trees[self.commits[parent]["tree"]] if parent else {}
            now = self.trees[c["tree"]]
            if len(c["parents"]) <= 1 and (path is None or before.get(path) != now.get(path)):
                out.append(sha)
            sha = parent
        return out
