"""GitHub (github.com or GitHub Enterprise) through PyGithub.

Files are committed in one commit per change through the git data API (tree on top of the branch,
commit, move the ref). That API answers 409 "Git Repository is empty." on a repository without commits, and
GitHub's guide says to start such a repository with the contents API (`PUT /repos/{owner}/{repo}/contents/{path}`,
docs.github.com/en/rest/guides/using-the-rest-api-to-interact-with-your-git-database): its first file goes in
that way, onto the named branch, and the rest through the git data API on top of it. Reads and idempotent
writes are retried on transient failures (5xx, 429, secondary rate limits, dropped connections) with
exponential backoff and jitter honouring Retry-After (PyGithub's GithubRetry, an urllib3 Retry). A POST is retried there only when a rate limit refused it, since GitHub
answers those before acting; after any other failure the POST may or may not have happened, so servewise
looks for what it would have created and uses that, creating again only when it is absent. 401/403/404
become one message naming the token variable or the repository, never the token.
"""

from __future__ import annotations

import base64

from gitops.forges import ForgeConfig
from gitops.forges.base import Comment, Forge, PrState, PullRequest, http_error, no_base, post_once
from gitops.outbound import redact
from planner.errors import BadInput, ServewiseError, Unreachable

_TRANSIENT = [429, 500, 502, 503, 504]
_REFUSED_BEFORE_ACTING = (403, 429)  # rate limits; GithubRetry retries a 403 only when it is one
_EMPTY = 409  # the git data API's answer on a repository without commits: "Git Repository is empty."


def _retry_class():
    from github import GithubRetry

    class NoBlindPostRetry(GithubRetry):
        """GithubRetry that never repeats a POST the server may already have acted on."""

        def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
            if method.upper() == "POST" and status_code not in _REFUSED_BEFORE_ACTING:
                return False
            return super().is_retry(method, status_code, has_retry_after)

        def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
            if error is not None and (method or "").upper() == "POST" and self._is_read_error(error):
                raise error  # sent, answer lost: the caller looks before trying again
            return super().increment(method, url, response, error, _pool, _stacktrace)

    return NoBlindPostRetry


def _ambiguous(exc: Exception) -> bool:
    """A failure after which a POST may or may not have taken effect (server error, lost answer)."""
    from github import GithubException

    if isinstance(exc, GithubException):
        return exc.status is None or exc.status >= 500
    return not isinstance(exc, ServewiseError)


class GitHubForge(Forge):
    name = "github"

    def __init__(self, config: ForgeConfig) -> None:
        from github import Auth, Github

        self.config = config
        self.repo_name = config.repo or ""
        retry = _retry_class()(total=config.retries, backoff_factor=config.backoff_s, backoff_jitter=config.backoff_s,
                            status_forcelist=_TRANSIENT, allowed_methods=None, respect_retry_after_header=True,
                            secondary_rate_wait=max(config.backoff_s, 0.01), raise_on_status=False)
        self.gh = Github(base_url=config.base_url(), auth=Auth.Token(config.token()),
                         timeout=int(max(config.timeout_s, 1)), retry=retry, seconds_between_requests=None,
                         seconds_between_writes=None)
        self._repo = None
        self._login: str | None = None

    def _post(self, create, find):
        return post_once(create, find, _ambiguous, self.config.retries, self.config.backoff_s)

    def _ours(self, comment) -> bool:
        """Written by the account of our token (a Bot account when the token cannot read /user, as a GitHub
        App or Actions token cannot)."""
        from github import GithubException

        if self._login is None:
            try:
                self._login = self.gh.get_user().login
            except GithubException as exc:
                if exc.status not in (401, 403, 404):
                    raise
                self._login = ""
        user = comment.user
        return user is not None and (user.login == self._login if self._login else user.type == "Bot")

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
        from github import GithubException

        def run() -> str:
            repo = self.repo
            try:
                ref = repo.get_git_ref(f"heads/{branch}")
                open_pr = self.find_pr(branch)
                if open_pr is None:  # a branch whose PR was merged or closed starts again from base
                    ref.edit(repo.get_git_ref(f"heads/{base}").object.sha, force=True)
                    ref = repo.get_git_ref(f"heads/{branch}")
            except GithubException as exc:
                if exc.status == _EMPTY and branch == base:
                    return self._start(branch, files, message)
                if exc.status == _EMPTY:
                    raise BadInput(f"GitHub repository {self.repo_name} is empty: there is no branch {base} to start "
                                   f"{branch} from; `servewise gitops init` or a propose starts it") from None
                if exc.status != 404:
                    raise
                base_ref = self._ref(base)
                if base_ref is None:
                    raise no_base("GitHub repository", self.repo_name, base, repo.default_branch)
                ref = self._post(lambda: repo.create_git_ref(f"refs/heads/{branch}", base_ref.object.sha),
                                 lambda: self._ref(branch))
            return self._commit_on(ref, files, message)

        return self._call(f"commit to branch {branch}", run)

    def _commit_on(self, ref, files: dict[str, str | None], message: str) -> str:
        """One commit of `files` on top of the branch `ref` points to; the head itself when nothing changes."""
        repo = self.repo
        head = repo.get_git_commit(ref.object.sha)
        # Trees and commits are content-addressed and unreferenced until the ref moves: making one twice
        # changes nothing anyone sees.
        tree = self._post(lambda: repo.create_git_tree(_elements(files), base_tree=head.tree), lambda: None)
        if tree.sha == head.tree.sha:
            return head.sha
        commit = self._post(lambda: repo.create_git_commit(message, tree, [head]), lambda: None)
        ref.edit(commit.sha)
        return commit.sha

    def _start(self, branch: str, files: dict[str, str | None], message: str) -> str:
        """The first commit of an empty repository: the first file through the contents API (the git data API
        refuses an empty repository), then the others on top of it in one more commit."""
        from github import GithubException

        written = {p: c for p, c in files.items() if c is not None}
        if not written:
            raise BadInput(f"GitHub repository {self.repo_name} is empty; its first commit needs at least one file")
        first = next(iter(written))
        try:
            self.repo.create_file(first, f"{message} ({first})", written[first], branch=branch)
        except GithubException:
            # A PUT whose answer was lost, or another run that started the repository first: the branch is there.
            if self._ref(branch) is None:
                raise
        ref = self._ref(branch)
        if ref is None:
            raise Unreachable(f"GitHub created the first commit of {self.repo_name} but does not show branch {branch} "
                              "yet; run again")
        return self._commit_on(ref, written, message)

    def has_branch(self, name: str) -> bool:
        return self._call(f"look for branch {name}", lambda: self._ref(name) is not None)

    def _ref(self, branch: str):
        from github import GithubException

        try:
            return self.repo.get_git_ref(f"heads/{branch}")
        except GithubException as exc:
            if exc.status in (404, _EMPTY):  # no such branch; no branch at all
                return None
            raise

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
                def again():
                    pr = self.find_pr(branch)
                    return self.repo.get_pull(pr.number) if pr else None

                try:
                    p = self._post(lambda: self.repo.create_pull(base=base, head=branch, title=title, body=body), again)
                except GithubException as exc:
                    # A retried POST whose first attempt went through: GitHub says the PR already exists.
                    again = self.find_pr(branch) if exc.status == 422 else None
                    if again is None:
                        raise
                    p = self.repo.get_pull(again.number)
            if labels:
                self._post(lambda: p.add_to_labels(*labels), lambda: None)  # adding labels twice is adding them
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
        """The sticky comment is ours only when it holds the marker AND our account wrote it: anyone can paste
        the marker into a comment of their own."""
        def run() -> Comment:
            issue = self.repo.get_issue(number)

            def sticky():
                return next((c for c in issue.get_comments() if marker in (c.body or "") and self._ours(c)), None)

            c = sticky()
            if c is None:
                c = self._post(lambda: issue.create_comment(body), sticky)
            if c.body != body:
                c.edit(body)
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
            head = self._ref(ref) if not _is_sha(ref) else None
            if head is None and not _is_sha(ref):
                return []  # no such branch, or an empty repository
            tree = self.repo.get_git_tree(head.object.sha if head else ref, recursive=True)
            return sorted(e.path for e in tree.tree if e.type == "blob" and e.path.startswith(prefix.rstrip("/") + "/"))

        return self._call(f"list {prefix}", run)

    def file_versions(self, path: str, ref: str = "main", limit: int = 10) -> list[str]:
        from github import GithubException

        def run():
            try:
                return [c.sha for c in list(self.repo.get_commits(sha=ref, path=path))[:limit]]
            except GithubException as exc:
                if exc.status == _EMPTY:  # an empty repository has no history (GET /commits answers 409)
                    return []
                raise

        return self._call(f"read the history of {path}", run)


def _elements(files: dict[str, str | None]):
    from github import InputGitTreeElement

    return [InputGitTreeElement(path, "100644", "blob", content=content) if content is not None
            else InputGitTreeElement(path, "100644", "blob", sha=None) for path, content in files.items()]


def _is_sha(ref: str) -> bool:
    return len(ref) == 40 and all(ch in "0123456789abcdef" for ch in ref)
