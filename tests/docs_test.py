"""docs/: every `docs/<page>.md#<anchor>` cited anywhere in the repository names a real section."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEARCHED = ("akorn_jax", "experiments", "configs", "tests", "tools", "examples", "docs", "results",
            "README.md")
# `docs/<page>.md#<anchor>` in code and prose; `<page>.md#<anchor>` inside docs/ (relative links).
CITATION = re.compile(r"(?:docs/)?([a-z_]+\.md)#([a-z0-9-]+)")


def _slug(heading: str) -> str:
  """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
  text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
  return text.replace(" ", "-")


def _anchors(page: str) -> set[str]:
  with open(os.path.join(ROOT, "docs", page), encoding="utf-8") as f:
    return {_slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", f.read(), re.M)}


def _files():
  for top in SEARCHED:
    path = os.path.join(ROOT, top)
    if os.path.isfile(path):
      yield path
    for dirpath, _, names in os.walk(path):
      for name in names:
        if name.endswith((".py", ".md", ".sh")):
          yield os.path.join(dirpath, name)


def test_slug_follows_github():
  assert _slug("FG-ARI and MBO") == "fg-ari-and-mbo"
  assert _slug("The γ/(1+γ) convention") == "the-γ1γ-convention"
  assert _slug("CIFAR-10") == "cifar-10"


def test_every_cited_docs_anchor_exists():
  pages = {p for p in os.listdir(os.path.join(ROOT, "docs")) if p.endswith(".md")}
  anchors = {p: _anchors(p) for p in pages}
  bad = []
  for path in _files():
    with open(path, encoding="utf-8") as f:
      text = f.read()
    in_docs = os.path.dirname(path) == os.path.join(ROOT, "docs")
    for m in CITATION.finditer(text):
      page, anchor = m.groups()
      explicit = m.group(0).startswith("docs/")
      if not explicit and not (in_docs and page in pages):
        continue  # e.g. results/sudoku.md#x: not a docs page
      if page not in pages or anchor not in anchors[page]:
        bad.append(f"{os.path.relpath(path, ROOT)}: {m.group(0)}")
  assert not bad, "citations of missing docs sections:\n" + "\n".join(bad)


def test_docs_pages_are_linked_from_the_index():
  with open(os.path.join(ROOT, "docs", "README.md"), encoding="utf-8") as f:
    index = f.read()
  for page in os.listdir(os.path.join(ROOT, "docs")):
    if page.endswith(".md") and page != "README.md":
      assert f"]({page})" in index, page
