"""GitLab (gitlab.com or self-hosted) through python-gitlab: merge requests, notes, one commit per change.

An empty project (the Projects API's `empty_repo: true`; its branches answer 404) gets its first branch from
`POST /projects/:id/repository/commits` with only `branch`: the API takes `start_branch` to be `branch` when it is
not given, and Commits::CreateService checks that the start branch exists only in a project that is not empty
(gitlab-org/gitlab lib/api/commits.rb, app/services/commits/create_service.rb).

python-gitlab retries 5xx, 429 and dropped connections itself with exponential backoff and honours
Retry-After (`retry_transient_errors`), except where a repeated POST would duplicate what the first one
made (a merge request, a note): those are sent once, and after an ambiguous failure servewise looks for
what it would have created before trying again. 401/403/404 become one message naming the token variable
or the project, never the token.
"""

from __future__ import annotations


from gitops.forges import ForgeConfig
from gitops.forges.base import Comment, Forge, PrState, PullRequest, http_error, no_base, post_once
from gitops.outbound import redact
from planner.errors import BadInput, ServewiseError, Unreachable

_STATE = {"opened": "open", "merged": "merged", "closed": "closed", "locked": "closed"}
_ONCE = {"retry_transient_errors": False}  # 429 is still obeyed: GitLab refuses those before acting


def _ambiguous(exc: Exception) -> bool:
    """A failure after which a POST may or may not have taken effect (server error, lost answer)."""
    import gitlab

    if isinstance(exc, gitlab.exceptions.GitlabError):
        return exc.response_code is None or exc.response_code >= 500
    return not isinstance(exc, ServewiseError)


class GitLabForge(Forge):
    name = "gitlab"

    def __init__(self, config: ForgeConfig) -> None:
        import gitlab

        self.config = config
        self.repo_name = config.repo or ""
        self.gl = gitlab.Gitlab(config.base_url(), private_token=config.token(),
                                timeout=config.timeout_s, retry_transient_errors=True)
        self._project = None
        self._username: str | None = None

    def _post(self, create, find):
        return post_once(create, find, _ambiguous, self.config.retries, self.config.backoff_s)

    def _ours(self, note) -> bool:
        """Written by the account of our token (a bot user, as project and group access tokens have, when the
        token cannot read /user)."""
        import gitlab

        if self._username is None:
            try:
                self.gl.auth()
                self._username = self.gl.user.username
            except gitlab.exceptions.GitlabError as exc:
                if exc.response_code not in (401, 403, 404):
                    raise
                self._username = ""
        author = (getattr(note, "author", None) or {}).get("username", "")
        return author == self._username if self._username else "_bot_" in author or author.endswith("-bot")

    def _call(self, what: str, fn):
        import gitlab

        try:
            return fn()
        except ServewiseError:
            raise
        except gitlab.exceptions.GitlabError as exc:
            raise http_error("GitLab", "project", self.repo_name, self.config.token_env,
                             "the api scope and Developer access", exc.response_code, what, str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - connection failures after python-gitlab's own retries
            raise Unreachable(f"GitLab at {redact(self.gl.url)} did not answer while trying to {what} ({type(exc).__name__})") from None

    @property
    def project(self):
        if self._project is None:
            self._project = self._call("open the project", lambda: self.gl.projects.get(self.repo_name))
        return self._project

    def _pr(self, mr) -> PullRequest:
        return PullRequest(forge=self.name, repo=self.repo_name, number=mr.iid, branch=mr.source_branch, title=mr.title,
                           body=mr.description or "", state=_STATE.get(mr.state, "closed"), url=mr.web_url or "",
                           head_sha=getattr(mr, "sha", "") or "")

    def commit_files(self, branch: str, files: dict[str, str | None], message: str, base: str = "main") -> str:
        import gitlab

        def run() -> str:
            p = self.project
            exists = self.has_branch(branch)
            # a merged or closed MR's branch starts again from base
            fresh = not exists or self.find_pr(branch) is None
            first = fresh and not (exists if branch == base else self.has_branch(base))
            if first and not self._empty():
                raise no_base("GitLab project", self.repo_name, base, p.default_branch)
            if first and branch != base:
                raise BadInput(f"GitLab project {self.repo_name} is empty: there is no branch {base} to start {branch} "
                               "from; `servewise gitops init` or a propose starts it")
            start = base if fresh else branch
            existing = {path: self.read_file(path, start) for path in files}
            actions = []
            for path, content in files.items():
                if content is None:
                    if existing[path] is not None:
                        actions.append({"action": "delete", "file_path": path})
                elif existing[path] != content:
                    actions.append({"action": "update" if existing[path] is not None else "create",
                                    "file_path": path, "content": content})
            if not actions and not fresh:
                return p.branches.get(branch).commit["id"]
            data = {"branch": branch, "commit_message": message, "actions": actions}
            if fresh and not first:
                data.update(start_branch=base, force=True)
            try:
                return p.commits.create(data).id
            except gitlab.exceptions.GitlabCreateError:
                # The first commit, retried after its answer was lost (or made by another run at the same time):
                # the branch now holds these files, and creating them again is refused.
                if not first or any(self.read_file(path, base) != content for path, content in files.items()):
                    raise
                return p.branches.get(base).commit["id"]

        return self._call(f"commit to branch {branch}", run)

    def has_branch(self, name: str) -> bool:
        import gitlab

        def run() -> bool:
            try:
                self.project.branches.get(name)
                return True
            except gitlab.exceptions.GitlabGetError as exc:
                if exc.response_code == 404:
                    return False
                raise

        return self._call(f"look for branch {name}", run)

    def _empty(self) -> bool:
        """Whether the project has no commits yet, read afresh (the cached project goes stale with the first one)."""
        return bool(self._call("open the project", lambda: self.gl.projects.get(self.repo_name)).empty_repo)

    def find_pr(self, branch: str) -> PullRequest | None:
        mrs = self._call("list merge requests", lambda: self.project.mergerequests.list(source_branch=branch, state="opened"))
        return self._pr(mrs[0]) if mrs else None

    def open_pr(self, branch: str, title: str, body: str, labels: list[str], base: str = "main") -> PullRequest:
        def run():
            existing = self.find_pr(branch)
            if existing:
                mr = self.project.mergerequests.get(existing.number)
                mr.title, mr.description, mr.labels = title, body, labels
                mr.save()
            else:
                def again():
                    found = self.find_pr(branch)
                    return self.project.mergerequests.get(found.number) if found else None

                mr = self._post(lambda: self.project.mergerequests.create(
                    {"source_branch": branch, "target_branch": base, "title": title, "description": body,
                     "labels": ",".join(labels)}, **_ONCE), again)
            return self._pr(self.project.mergerequests.get(mr.iid))

        return self._call("open a merge request", run)

    def get_pr(self, number: int) -> PullRequest:
        return self._call(f"read merge request !{number}", lambda: self._pr(self.project.mergerequests.get(number)))

    def list_prs(self, state: PrState | None = None) -> list[PullRequest]:
        mrs = self._call("list merge requests", lambda: [self._pr(m) for m in self.project.mergerequests.list(get_all=True)])
        return [m for m in mrs if m.branch.startswith("servewise/") and (state is None or m.state == state)]

    def merge_pr(self, number: int) -> PullRequest:
        def run():
            mr = self.project.mergerequests.get(number)
            if mr.state != "opened":
                raise BadInput(f"merge request !{number} is {mr.state}; only open ones can be merged")
            mr.merge()
            return self._pr(self.project.mergerequests.get(number))

        return self._call(f"merge merge request !{number}", run)

    def close_pr(self, number: int) -> PullRequest:
        def run():
            mr = self.project.mergerequests.get(number)
            mr.state_event = "close"
            mr.save()
            return self._pr(self.project.mergerequests.get(number))

        return self._call(f"close merge request !{number}", run)

    def upsert_comment(self, number: int, marker: str, body: str) -> Comment:
        """The sticky note is ours only when it holds the marker AND our account wrote it: anyone can paste
        the marker into a note of their own."""
        def run() -> Comment:
            mr = self.project.mergerequests.get(number)

            def sticky():
                return next((n for n in mr.notes.list(get_all=True) if marker in (n.body or "") and self._ours(n)),
                            None)

            note = sticky()
            if note is None:
                note = self._post(lambda: mr.notes.create({"body": body}, **_ONCE), sticky)
            if note.body != body:
                note.body = body
                note.save()
            return Comment(id=note.id, body=body)

        return self._call(f"comment on merge request !{number}", run)

    def comments(self, number: int) -> list[Comment]:
        return self._call("read notes", lambda: [Comment(id=n.id, body=n.body or "") for n in
                                                 self.project.mergerequests.get(number).notes.list(get_all=True)])

    def read_file(self, path: str, ref: str = "main") -> str | None:
        import gitlab

        def run():
            try:
                return self.project.files.raw(file_path=path, ref=ref).decode()
            except gitlab.exceptions.GitlabGetError as exc:
                if exc.response_code == 404:
                    return None
                raise

        return self._call(f"read {path}", run)

    def list_files(self, prefix: str, ref: str = "main") -> list[str]:
        import gitlab

        def run() -> list[str]:
            try:
                tree = self.project.repository_tree(path=prefix.rstrip("/"), ref=ref, recursive=True, get_all=True)
            except gitlab.exceptions.GitlabGetError as exc:
                if exc.response_code == 404:  # "Tree Not Found": no such ref (an empty project has none) or path
                    return []
                raise
            return sorted(e["path"] for e in tree if e["type"] == "blob")

        return self._call(f"list {prefix}", run)

    def file_versions(self, path: str, ref: str = "main", limit: int = 10) -> list[str]:
        import gitlab

        def run() -> list[str]:
            try:
                commits = self.project.commits.list(ref_name=ref, query_parameters={"path": path}, get_all=True)
            except gitlab.exceptions.GitlabListError as exc:
                if exc.response_code == 404:  # no such ref: an empty project has none
                    return []
                raise
            return [c.id for c in commits][:limit]

        return self._call(f"read the history of {path}", run)
