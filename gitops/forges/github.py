"""GitHub (github.com or GitHub Enterprise) through PyGithub.

Files are committed in one commit per change through the git data API (tree on top of the branch,
commit, move the ref). Transient failures (5xx, 429, secondary rate limits, dropped connections) are
retried with exponential backoff and jitter honouring Retry-After (PyGithub's GithubRetry, an urllib3
Retry); 401/403/404 become one message naming the token variable or the repository, never the token.
"""

from __future__ import annotations

import base64

from gitops.forges import ForgeConfig
from gitops.forges.base import Comment, Forge, PrState, PullRequest, http_error
from gitops.outbound import redact
from planner.errors import BadInput, ServewiseError, Unreachable

_TRANSIENT = [429, 500, 502, 503, 504]


class GitHubForge(Forge):
    name = "github"

    def __init__(self, config: ForgeConfig) -> None:
        from github import Auth, Github, GithubRetry

        self.config = config
        self.repo_name = config.repo or ""
        retry = GithubRetry(total=config.retries, backoff_factor=config.backoff_s, backoff_jitter=config.backoff_s,
                            status_forcelist=_TRANSIENT, allowed_methods=None, respect_retry_after_header=True,
                            secondary_rate_wait=max(config.backoff_s, 0.01), raise_on_status=False)
        self.gh = Github(base_url=config.base_url(), auth=Auth.Token(config.token()),
                         timeout=int(max(config.timeout_s, 1)), retry=retry, seconds_between_requests=None,
                         seconds_between_writes=None)
        self._repo = None

    def _call(self, what: str, fn):
        from github import GithubException

        try:
            return fn()
        except ServewiseError:
            raise
        except GithubException as exc:
            raise http_error("GitHub", "repository", self.repo_name, self.config.token_env,
                             "contents and pull-requests write access", exc.status, what, str(exc.data)) from None
        except Exception as exc:  # noqa: BLE001 - requests/urllib3 failures after the retries ran out
            raise Unreachable(f"GitHub at {redact(self.gh.requester.base_url)} did not answer while trying to {what} "
                              f"({type(exc).__name__}) after {self.config.retries} retries") from None

    @property
    def repo(self):
        if self._repo is None:
            self._repo = self._call("open the repository", lambda: self.gh.get_repo(self.repo_name))
        return self._repo

    def _pr(self, p) -> PullRequest:
        state = "merged" if p.merged else ("open" if p.state == "open" else "closed")
        return PullRequest(forge=self.name, repo=self.repo_name, number=p.number, branch=p.head.ref, title=p.title,
                           body=p.body or "", state=state, url=p.html_url or "", head_sha=p.head.sha or "")

    def commit_files(self, branch: str, files: dict[str, str | None], message: str, base: str = "main") -> str:
        from github import GithubException, InputGitTreeElement

        def run() -> str:
            repo = self.repo
            try:
                ref = repo.get_git_ref(f"heads/{branch}")
                open_pr = self.find_pr(branch)
                if open_pr is None:  # a branch whose PR was merged or closed starts again from base
                    ref.edit(repo.get_git_ref(f"heads/{base}").object.sha, force=True)
                    ref = repo.get_git_ref(f"heads/{branch}")
            except GithubException as exc:
                if exc.status != 404:
                    raise
                base_sha = repo.get_git_ref(f"heads/{base}").object.sha
                ref = repo.create_git_ref(f"refs/heads/{branch}", base_sha)
            head = repo.get_git_commit(ref.object.sha)
            elements = [InputGitTreeElement(path, "100644", "blob", content=content) if content is not None
                        else InputGitTreeElement(path, "100644", "blob", sha=None) for path, content in files.items()]
            tree = repo.create_git_tree(elements, base_tree=head.tree)
            if tree.sha == head.tree.sha:
                return head.sha
            commit = repo.create_git_commit(message, tree, [head])
            ref.edit(commit.sha)
            return commit.sha

        return self._call(f"commit to branch {branch}", run)

    def find_pr(self, branch: str) -> PullRequest | None:
        owner = self.repo_name.split("/")[0]
        pulls = self._call("list pull requests", lambda: list(self.repo.get_pulls(state="open", head=f"{owner}:{branch}")))
        return self._pr(pulls[0]) if pulls else None

    def open_pr(self, branch: str, title: str, body: str, labels: list[str], base: str = "main") -> PullRequest:
        from github import GithubException

        def run():
            existing = self.find_pr(branch)
            if existing:
                p = self.repo.get_pull(existing.number)
                p.edit(title=title, body=body)
            else:
                try:
                    p = self.repo.create_pull(base=base, head=branch, title=title, body=body)
                except GithubException as exc:
                    # A retried POST whose first attempt went through: GitHub says the PR already exists.
                    again = self.find_pr(branch) if exc.status == 422 else None
                    if again is None:
                        raise
                    p = self.repo.get_pull(again.number)
            if labels:
                p.add_to_labels(*labels)
            return self._pr(self.repo.get_pull(p.number))

        return self._call("open a pull request", run)

    def get_pr(self, number: int) -> PullRequest:
        return self._call(f"read pull request #{number}", lambda: self._pr(self.repo.get_pull(number)))

    def list_prs(self, state: PrState | None = None) -> list[PullRequest]:
        prs = self._call("list pull requests", lambda: [self._pr(p) for p in self.repo.get_pulls(state="all")])
        return [p for p in prs if p.branch.startswith("servewise/") and (state is None or p.state == state)]

    def merge_pr(self, number: int) -> PullRequest:
        def run():
            p = self.repo.get_pull(number)
            if p.state != "open":
                raise BadInput(f"pull request #{number} is {p.state}; only open ones can be merged")
            p.merge(merge_method="merge")
            return self._pr(self.repo.get_pull(number))

        return self._call(f"merge pull request #{number}", run)

    def close_pr(self, number: int) -> PullRequest:
        def run():
            p = self.repo.get_pull(number)
            p.edit(state="closed")
            return self._pr(self.repo.get_pull(number))

        return self._call(f"close pull request #{number}", run)

    def upsert_comment(self, number: int, marker: str, body: str) -> Comment:
        def run() -> Comment:
            issue = self.repo.get_issue(number)
            for c in issue.get_comments():
                if marker in (c.body or ""):
                    c.edit(body)
                    return Comment(id=c.id, body=body)
            c = issue.create_comment(body)
            return Comment(id=c.id, body=body)

        return self._call(f"comment on pull request #{number}", run)

    def comments(self, number: int) -> list[Comment]:
        return self._call("read comments", lambda: [Comment(id=c.id, body=c.body or "")
                                                     for c in self.repo.get_issue(number).get_comments()])

    def read_file(self, path: str, ref: str = "main") -> str | None:
        from github import GithubException

        def run():
            try:
                f = self.repo.get_contents(path, ref=ref)
            except GithubException as exc:
                if exc.status == 404:
                    return None
                raise
            return base64.b64decode(f.content).decode() if f.content else f.decoded_content.decode()

        return self._call(f"read {path}", run)

    def list_files(self, prefix: str, ref: str = "main") -> list[str]:
        def run():
            sha = self.repo.get_git_ref(f"heads/{ref}").object.sha if not _is_sha(ref) else ref
            tree = self.repo.get_git_tree(sha, recursive=True)
            return sorted(e.path for e in tree.tree if e.type == "blob" and e.path.startswith(prefix.rstrip("/") + "/"))

        return self._call(f"list {prefix}", run)

    def file_versions(self, path: str, ref: str = "main", limit: int = 10) -> list[str]:
        return self._call(f"read the history of {path}",
                          lambda: [c.sha for c in list(self.repo.get_commits(sha=ref, path=path))[:limit]])


def _is_sha(ref: str) -> bool:
    return len(ref) == 40 and all(ch in "0123456789abcdef" for ch in ref)
