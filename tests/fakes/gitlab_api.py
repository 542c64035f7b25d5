"""A loopback HTTP server answering like the GitLab REST API v4 for the endpoints servewise uses.

Shapes follow GitLab's API documentation (projects, repository branches/commits with actions/files/tree,
merge requests, notes): only the fields python-gitlab reads are filled in. Failure injection comes from
tests.fakes.rest.

Creating a commit follows gitlab-org/gitlab lib/api/commits.rb and app/services/commits/create_service.rb:
`start_branch` defaults to `branch`; in a project that has commits, a start branch that does not exist is refused
(400 "You can only create or edit files when you are on a branch"), and so is an existing `branch` other than the
start branch without `force`. `FakeGitLab(empty=True)` is a project without commits: the Projects API says
`empty_repo: true` (docs.gitlab.com/api/projects response examples; the field's documentation request is
gitlab-org/gitlab#32694), branches answer 404, the repository
tree answers 404 "Tree Not Found" (lib/api/repositories.rb: `not_found!("Tree") unless tree_finder.commit_exists?`),
and the first commit creates its `branch` without any start branch check.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from urllib.parse import unquote

from tests.fakes.rest import LoopbackRest


def _sha(*parts: object) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class FakeGitLab(LoopbackRest):
    def __init__(self, project: str = "platform/deploys", token: str = "glpat-testtoken",
                 username: str = "servewise-bot", empty: bool = False) -> None:
        self.path_with_namespace, self.token, self.username = project, token, username
        self.default_branch = "main"
        self.commits: dict[str, dict] = {}
        self.branches: dict[str, str] = {}
        self.mrs: dict[int, dict] = {}
        self.notes: dict[int, dict] = {}
        if not empty:
            self.branches["main"] = self._commit({"README.md": "# deployments\n"}, [], "init")
        super().__init__()

    def authorized(self, headers) -> bool:
        return headers.get("PRIVATE-TOKEN") == self.token

    def _commit(self, files: dict[str, str], parents: list[str], message: str) -> str:
        sha = _sha(sorted(files.items()), parents, message, time.time_ns())
        self.commits[sha] = {"files": dict(files), "parents": parents, "message": message}
        return sha

    def files_at(self, ref: str) -> dict[str, str]:
        return self.commits[self.branches.get(ref, ref)]["files"]

    def _project_json(self) -> dict:
        return {"id": 7, "path_with_namespace": self.path_with_namespace, "default_branch": self.default_branch,
                "empty_repo": not self.branches, "web_url": f"https://gitlab.example/{self.path_with_namespace}"}

    def _mr_json(self, iid: int) -> dict:
        m = self.mrs[iid]
        return {"id": 100 + iid, "iid": iid, "project_id": 7, "title": m["title"], "description": m["description"],
                "state": m["state"], "source_branch": m["source"], "target_branch": m["target"],
                "labels": m["labels"], "sha": self.branches.get(m["source"], m.get("sha", "")),
                "web_url": f"https://gitlab.example/{self.path_with_namespace}/-/merge_requests/{iid}"}

    def route(self, method: str, path: str, query: dict, body) -> tuple[int, object]:  # noqa: C901 - one endpoint table
        if method == "GET" and path == "/api/v4/user":  # the token's own account
            return 200, {"id": 42, "username": self.username, "name": "servewise"}
        m = re.fullmatch(r"/api/v4/projects/([^/]+)(/.*)?", path)
        if not m or unquote(m.group(1)) not in (self.path_with_namespace, "7"):
            return 404, {"message": "404 Project Not Found"}
        rest = m.group(2) or ""
        q = {k: v[0] for k, v in query.items()}
        if method == "GET" and rest == "":
            return 200, self._project_json()
        if method == "GET" and (b := re.fullmatch(r"/repository/branches/(.+)", rest)):
            name = unquote(b.group(1))
            if name not in self.branches:
                return 404, {"message": "404 Branch Not Found"}
            return 200, {"name": name, "commit": {"id": self.branches[name]}}
        if method == "POST" and rest == "/repository/commits":
            start = body.get("start_branch") or body["branch"]
            if self.branches and start not in self.branches:
                return 400, {"message": "You can only create or edit files when you are on a branch"}
            if self.branches and start != body["branch"] and body["branch"] in self.branches and not body.get("force"):
                return 400, {"message": f"A branch called '{body['branch']}' already exists. Switch to that branch in "
                                        "order to make changes"}
            files = dict(self.files_at(start)) if self.branches else {}
            for a in body.get("actions", []):
                if a["action"] == "create" and a["file_path"] in files:
                    return 400, {"message": "A file with this name already exists"}
                if a["action"] == "delete":
                    files.pop(a["file_path"], None)
                else:
                    files[a["file_path"]] = a["content"]
            sha = self._commit(files, [self.branches[start]] if self.branches else [], body["commit_message"])
            self.branches[body["branch"]] = sha
            return 201, {"id": sha, "short_id": sha[:8], "message": body["commit_message"]}
        if method == "GET" and (f := re.fullmatch(r"/repository/files/(.+)/raw", rest)):
            ref = q.get("ref", "main")
            if ref not in self.branches and ref not in self.commits:
                return 404, {"message": "404 Commit Not Found"}
            files = self.files_at(ref)
            name = unquote(f.group(1))
            return (200, files[name].encode()) if name in files else (404, {"message": "404 File Not Found"})
        if method == "GET" and rest == "/repository/tree":
            if q.get("ref", "main") not in self.branches and q.get("ref", "main") not in self.commits:
                return 404, {"message": "404 Tree Not Found"}
            prefix = q.get("path", "").rstrip("/") + "/"
            return 200, [{"id": _sha(c), "name": p.split("/")[-1], "type": "blob", "path": p, "mode": "100644"}
                         for p, c in sorted(self.files_at(q.get("ref", "main")).items()) if p.startswith(prefix)]
        if method == "GET" and rest == "/repository/commits":
            return 200, [{"id": c, "message": self.commits[c]["message"]}
                         for c in self._history(self.branches.get(q.get("ref_name", "main")), q.get("path"))]
        if rest == "/merge_requests" and method == "GET":
            return 200, [self._mr_json(i) for i, mr in sorted(self.mrs.items())
                         if q.get("source_branch") in (None, mr["source"]) and q.get("state") in (None, "all", mr["state"])]
        if rest == "/merge_requests" and method == "POST":
            if any(mr["source"] == body["source_branch"] and mr["state"] == "opened" for mr in self.mrs.values()):
                return 409, {"message": ["Another open merge request already exists for this source branch"]}
            iid = max(self.mrs, default=0) + 1
            labels = body.get("labels", "")
            self.mrs[iid] = {"source": body["source_branch"], "target": body["target_branch"], "title": body["title"],
                             "description": body.get("description", ""), "state": "opened",
                             "labels": labels.split(",") if isinstance(labels, str) and labels else list(labels or [])}
            return 201, self._mr_json(iid)
        if mr := re.fullmatch(r"/merge_requests/(\d+)", rest):
            iid = int(mr.group(1))
            if iid not in self.mrs:
                return 404, {"message": "404 Not found"}
            if method == "PUT":
                if body.get("state_event") == "close":
                    self.mrs[iid]["state"] = "closed"
                for key, field in (("title", "title"), ("description", "description"), ("labels", "labels")):
                    if key in body:
                        value = body[key]
                        self.mrs[iid][field] = value.split(",") if key == "labels" and isinstance(value, str) else value
            return 200, self._mr_json(iid)
        if method == "PUT" and (mr := re.fullmatch(r"/merge_requests/(\d+)/merge", rest)):
            iid = int(mr.group(1))
            m_ = self.mrs[iid]
            head = self.branches[m_["source"]]
            self.branches[m_["target"]] = self._commit(self.commits[head]["files"], [self.branches[m_["target"]], head],
                                                       f"Merge branch '{m_['source']}'")
            m_.update(state="merged", sha=head)
            return 200, self._mr_json(iid)
        if nm := re.fullmatch(r"/merge_requests/(\d+)/notes", rest):
            iid = int(nm.group(1))
            if method == "POST":
                nid = 500 + len(self.notes) + 1
                self.notes[nid] = {"mr": iid, "body": body["body"], "author": self.username}
                return 201, self._note_json(nid)
            return 200, [self._note_json(n) for n, v in sorted(self.notes.items()) if v["mr"] == iid]
        if method == "PUT" and (nm := re.fullmatch(r"/merge_requests/(\d+)/notes/(\d+)", rest)):
            nid = int(nm.group(2))
            self.notes[nid]["body"] = body["body"]
            return 200, self._note_json(nid)
        return 404, {"message": f"404 Not Found: {method} {rest}"}

    def _note_json(self, nid: int) -> dict:
        n = self.notes[nid]
        return {"id": nid, "body": n["body"], "author": {"id": 42, "username": n.get("author", self.username)},
                "system": False}

    def _history(self, head: str | None, path: str | None) -> list[str]:
        out, sha = [], head
        while sha:
            c = self.commits[sha]
            parent = c["parents"][-1] if c["parents"] else None
            before = self.commits[parent]["files"] if parent else {}
            if len(c["parents"]) <= 1 and (path is None or before.get(path) != c["files"].get(path)):
                out.append(sha)
            sha = parent
        return out
