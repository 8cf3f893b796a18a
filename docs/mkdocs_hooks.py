"""MkDocs hook: list the result pages of docs/results/ on docs/results/index.md at build time.

Every ``docs/results/*.md`` page other than the index is linked under the marker comment
``<!-- RESULTS-LIST -->``, titled by its first ``# `` heading, so a result page added to the folder
shows up without editing the index (and nothing is listed that does not exist).
"""

from __future__ import annotations

MARKER = "<!-- RESULTS-LIST -->"


def _title(text: str, fallback: str) -> str:
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return fallback


def on_page_markdown(markdown, page, config, files, **kwargs):
    if page.file.src_uri != "results/index.md" or MARKER not in markdown:
        return markdown
    pages = [f for f in files.documentation_pages()
             if f.src_uri.startswith("results/") and f.src_uri != "results/index.md"]
    if not pages:
        listing = "*No result pages have been added to `docs/results/` yet.*"
    else:
        items = []
        for f in sorted(pages, key=lambda f: f.src_uri):
            text = f.content_string
            rel = f.src_uri[len("results/"):]
            items.append(f"- [{_title(text, rel)}]({rel})")
        listing = "\n".join(items)
    return markdown.replace(MARKER, listing)
