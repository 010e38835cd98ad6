"""The README is a user's guide, and every path the documentation names exists."""

from __future__ import annotations

import re

from tests.helpers.packaging import ROOT

DOCUMENTS = ["README.md", "CONTRIBUTING.md", "models/MODEL_CARD.md", "training/README.md",
             *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
# A path into the repository: a top folder, then names, ending in a file with an extension
# or in a folder's slash (not a glob, not a unit such as samples/s).
REPO_PATH = re.compile(r"(?<![\w/.-])((?:wavenet_core|wavenet_cli|server|tests|benchmarks|"
                       r"scripts|examples|deploy|docs)/(?:[\w.-]+/)*(?:[\w-]+\.\w+)?)"
                       r"(?![\w*])")
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def test_readme_is_a_short_users_guide():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) < 250, "long measurements belong in docs/performance.md"
    headings = re.findall(r"^## (.+)$", text, re.M)
    for wanted in ("Quick start", "API", "Configuration", "Deployment", "Speed"):
        assert any(h.startswith(wanted) for h in headings), (wanted, headings)


def test_every_path_and_link_in_the_documentation_exists():
    missing = []
    for name in DOCUMENTS:
        path = ROOT / name
        text = path.read_text()
        for target in LINK.findall(text):
            if not re.match(r"[a-z]+:", target) and not (path.parent / target).exists():
                missing.append(f"{name}: link {target}")
        for ref in REPO_PATH.findall(text):
            if not (ROOT / ref).exists():
                missing.append(f"{name}: {ref}")
    assert not missing, "\n".join(missing)


def test_every_setting_is_in_the_readmes_configuration_table():
    from server.settings import Settings

    readme = (ROOT / "README.md").read_text()
    absent = [f"WAVENET_{name.upper()}" for name in Settings.model_fields
              if f"`WAVENET_{name.upper()}`" not in readme]
    assert not absent, f"settings missing from the README's Configuration table: {absent}"
