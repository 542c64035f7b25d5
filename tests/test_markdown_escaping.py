"""Markdown injection: every value reaching a pull-request title, body or comment goes through one escaping
function (gitops.markdown.md_text). Checked with a real CommonMark parser (markdown-it-py, with GFM tables):
a hostile plan gives the same document outline as a benign one, and no HTML, link, image, mention,
reference, autolink or servewise marker of its own."""

from __future__ import annotations

import re

import pytest
from markdown_it import MarkdownIt

from gitops.forges.local import LocalForge
from gitops.propose import propose
from gitops.render import render_bundle
from gitops.report import MARKER, Report, SloCheck, comment_body
from kb.catalog import open_kb

HOSTILE = ("x\n# Injected heading\n\n- item\n@octocat @acme/team #1 !2 &3 ~bug %v1 [click](https://evil.example) "
           "![px](https://evil.example/p.png) <img src=x onerror=alert(1)> <!-- servewise:slo-report --> "
           "`code` | cell | **bold** https://evil.example www.evil.example {{ jinja }} \\")
_MD = MarkdownIt("commonmark").enable("table").enable("strikethrough")
_DANGER = {"html_block", "html_inline", "link_open", "image", "heading_open", "bullet_list_open", "table_open"}
_PATTERNS = [r"@\w", r"#\d", r"!\d", r"&\d", r"~\w", r"%\w", r"\w://", r"www\.", "<", "{{"]


def _tokens(text):
    for t in _MD.parse(text):
        yield t
        yield from t.children or []


def _outline(text):
    return [(t.type, t.tag) for t in _MD.parse(text) if t.type.endswith("_open")]


def _plain(text):
    """The text a reader sees outside code spans (entities decoded, as GitHub shows them)."""
    return " ".join(t.content for t in _tokens(text) if t.type == "text")


def _inert(hostile: str, benign: str) -> None:
    assert _outline(hostile) == _outline(benign)
    found = {t.type for t in _tokens(hostile)} & _DANGER
    assert found <= {t.type for t in _tokens(benign)}, found
    seen = _plain(hostile)
    assert "Injected heading" in seen  # the text is shown, not dropped
    for pattern in _PATTERNS:
        assert not re.search(pattern, seen), (pattern, seen)


@pytest.fixture(scope="module")
def plans(chatbot_plans):
    benign = chatbot_plans[0]
    c = benign.candidates[benign.chosen].model_copy(update={"binding_constraint": HOSTILE, "model": HOSTILE})
    spec = benign.spec.model_copy(update={"assumptions": [a.model_copy(update={"value": HOSTILE, "source": HOSTILE})
                                                          for a in benign.spec.assumptions]})
    hostile = benign.model_copy(update={"id": HOSTILE, "provider": HOSTILE, "kb_version": HOSTILE, "rationale": HOSTILE,
                                        "spec": spec, "candidates": [c, *benign.candidates[1:]]})
    return benign, hostile


def test_pull_request_title_and_body_are_inert(plans, tmp_path):
    benign, hostile = plans
    out = {}
    for label, plan in (("benign", benign), ("hostile", plan := hostile)):
        forge = LocalForge(tmp_path / label / "forge.git", open_kb(tmp_path / label / "kb.sqlite"))
        out[label] = propose(render_bundle(plan, name="chat"), forge).pr
    body, title = out["hostile"].body, out["hostile"].title
    _inert(body, out["benign"].body)
    assert body.count("<!-- servewise:") == 1 and "<!-- servewise:propose -->" in body
    assert "\n" not in title and len(title) <= 256
    for pattern in (r"@\w", r"#\d", r"!\d", r"\w://", "`"):
        assert not re.search(pattern, title), pattern


def test_report_comment_is_inert(plans):
    benign, _ = plans
    check = SloCheck(metric="TTFT p90", target_ms=300, predicted_ms=100, observed_ms=120, status="meets")
    base = dict(created_at="2026-11-30T10:00:00+00:00", verdict="meets", window_s=3600, checks=[check],
                traffic_assumed_qps=2, cost_predicted_usd_month=1000, advice="keep 1 replica(s).",
                missing=["no samples in the window for: queue p90"], history=[{"created_at": "2026-11-29T10:00",
                                                                                "verdict": "meets"}])
    good = comment_body(Report(deployment="llm-serving/chat", plan_id=benign.id, **base))
    bad = comment_body(Report(deployment=HOSTILE, plan_id=HOSTILE, **{**base, "advice": HOSTILE, "missing": [HOSTILE],
                                                                         "history": [{"created_at": HOSTILE,
                                                                                      "verdict": HOSTILE}]}))
    _inert(bad, good)
    assert bad.count(MARKER) == 1 and bad.startswith(MARKER)
