"""One escaping function for every value that reaches a pull-request title, body or comment (GitHub and GitLab
Markdown), and the README of a bundle.

A value from a plan.json, a spec or a command line stays one line of plain text: it cannot start a heading,
list or table row, open a link or image, write HTML (an `<img onerror>`, a tracking pixel), notify anyone
(`@user`), link an issue or merge request (`#12`, `!12`), autolink a URL, or forge one of servewise's own
hidden `<!-- servewise:... -->` markers, which find the sticky comment again.
"""

from __future__ import annotations

import re
from typing import Literal

_JOIN = "\u2060"  # WORD JOINER: invisible, and breaks the token a mention, reference or autolink needs
_ESCAPE = re.compile(r"([\\`*\[\]|~])")
TITLE_LIMIT = 250  # GitHub refuses titles over 256 characters


def _unlinked(text: str) -> str:
    # mentions (@user, @org/team), issue/MR/epic/label/milestone references (#1 !1 &1 ~x %x), autolinks
    text = re.sub(r"([@#!~%]|&amp;|&)(?=[\w\\])", lambda m: m.group(1) + _JOIN, text)
    text = re.sub(r"(\w)(://)", lambda m: m.group(1) + ":" + _JOIN + "//", text)
    return re.sub(r"(?i)\b(www)\.", r"\1" + _JOIN + ".", text)


def md_text(value: object, kind: Literal["text", "code", "title"] = "text") -> str:
    """`value` as one line that Markdown shows as it is: running `text`, an inline `code` span (ids, names), or a
    pull-request `title` (plain text, where GitHub shows backslashes and entities literally)."""
    text = re.sub(r"\s+", " ", str(value)).strip()
    if kind == "code":
        text = text.replace("`", "'").replace("<!--", f"<{_JOIN}!--")
        return f"`{text or ' '}`"
    if kind == "title":
        text = _unlinked(text.replace("`", "'"))
        return text if len(text) <= TITLE_LIMIT else text[: TITLE_LIMIT - 1] + "…"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("{{", "{ {")
    text = _unlinked(_ESCAPE.sub(r"\\\1", text))
    # a leading block marker would turn a paragraph into a heading, list, quote or table
    text = re.sub(r"^(\d+)([.)])(?=\s|$)", r"\1\\\2", text)
    return "\\" + text if re.match(r"[#*+=`~>|-]", text) else text
