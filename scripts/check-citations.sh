#!/usr/bin/env bash
# Card-fact citations must be checkable from a clone of the repository (issue 16). Fails when:
# - a file names a document that lives outside the repository (`../shared/docs`, the old
#   cpx-card-spec.md / cpx-card-notes.md / cpx-data-and-certs.md, the harness and research notes);
# - an old short citation (`spec §4.2`, `notes §3`, `data notes §1.2`, `data-and-certs §2.7`) is left;
# - a citation `docs/<file>.md §N[.M…]` (and the sections that follow it: `, §N`, `–§N`, `/§N`,
#   ` and §N`) names a file that does not exist, or a section with no heading `## N.` / `### N.M` /
#   `## Part N` in that file; a plain mention of `docs/<file>.md` names a file that does not exist.
# `../shared/reference` is allowed: it is the optional corpus of real certificates some cpx-profile
# tests read when present (they skip without it), not a document a citation points to.
#
# Usage: scripts/check-citations.sh [--extra-docs DIR] [REPO]   (REPO: the repository root by default)
#        scripts/check-citations.sh --self-test
# Every run starts with the self-test, which checks on fixtures that each rule does fail.
# --extra-docs DIR: a cited docs/ file absent from REPO is looked up in DIR (to check a branch before
# the branch that adds that file is merged).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

python3 - "$here/check-citations.sh" "$@" <<'PY'
import os
import re
import sys
import tempfile

SELF = os.path.realpath(sys.argv[1])
args = sys.argv[2:]

EXTS = (".rs", ".md", ".sh", ".toml", ".py", ".apdu", ".json", ".txt", ".yml", ".yaml")
SKIP_DIRS = {"target", ".git", "node_modules", "corpus", "artifacts"}
# The card documents cite their own sections as bare §N and may quote old names when describing sources.
CARD_DOCS = {"docs/card-spec.md", "docs/card-notes.md", "docs/data-and-certs.md"}

FORBIDDEN = re.compile(
    r"(?:\.\./)+shared(?!/reference)\b|shared/docs|cpx-card-spec|cpx-card-notes|cpx-data-and-certs"
    r"|test-harness\.md|rust-anchors|users-and-peers"
)
OLD_FORM = re.compile(
    r"(?<![\w./-])(?:[Dd]ata notes|[Dd]ata spec|data-and-certs|[Cc]ard notes|[Ss]pec notes|spec|notes) \(?§"
)
# A citation may go on at the start of the next line: `(spec` / `// §4.4)`, or in a Rust string `\n\`.
NEXT_LINE_SECTION = re.compile(r"^[ \t]*(?:(?://[/!]?|#)[ \t]*)?(\(?§.*)$")
SECTION = r"§\s?(\d+(?:\.\d+)*)"
# docs/<file>.md, optionally in backticks or asterisks, then optionally " (" before the first §.
CITE = re.compile(r"(?<![\w/.-])docs/([\w.-]+\.md)[`*]?(?:\s?\(|\s)?\s?" + SECTION)
# A following section of the same citation: separator then §N (a range end, a list item).
CONT = re.compile(r"\s*(?:,|/|–|-|\band\b|\bor\b|\bto\b)\s*" + SECTION)
MENTION = re.compile(r"(?<![\w/.-])docs/([\w.-]+\.md)\b")
HEADING = re.compile(r"^#{1,6}\s+(?:Part\s+)?(\d+(?:\.\d+)*)\.?(?=[\s:]|$)")


def headings(path):
    found = set()
    with open(path, encoding="utf-8") as f:
        fence = False
        for line in f:
            if line.startswith("```"):
                fence = not fence
            m = None if fence else HEADING.match(line)
            if m:
                found.add(m.group(1))
    return found


def scan(repo, extra=None):
    errors, checked = [], 0
    cache = {}

    def doc(name):
        if name not in cache:
            p = os.path.join(repo, "docs", name)
            if not os.path.isfile(p) and extra and os.path.isfile(os.path.join(extra, name)):
                p = os.path.join(extra, name)
            cache[name] = headings(p) if os.path.isfile(p) else None
        return cache[name]

    for root, dirs, names in os.walk(repo):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for n in sorted(names):
            path = os.path.join(root, n)
            rel = os.path.relpath(path, repo)
            if not n.endswith(EXTS) or os.path.realpath(path) == SELF:
                continue
            try:
                with open(path, encoding="utf-8") as f:
                    lines = f.read().split("\n")
            except (UnicodeDecodeError, OSError):
                continue
            for i, line in enumerate(lines, 1):
                where = f"{rel}:{i}"
                nxt = NEXT_LINE_SECTION.match(lines[i]) if i < len(lines) else None
                if nxt:
                    line = re.sub(r"[ \t]*(?:\\n\\)?$", " ", line) + nxt.group(1)
                m = FORBIDDEN.search(line)
                if m:
                    errors.append(f"{where}: names a document outside the repository ({m.group(0)})")
                if rel not in CARD_DOCS:
                    m = OLD_FORM.search(line)
                    if m:
                        errors.append(f"{where}: old citation form '{m.group(0)}' (write docs/<file>.md §N)")
                for m in MENTION.finditer(line):
                    if doc(m.group(1)) is None:
                        errors.append(f"{where}: docs/{m.group(1)} does not exist")
                for m in CITE.finditer(line):
                    name, secs, pos = m.group(1), [m.group(2)], m.end()
                    while True:
                        c = CONT.match(line, pos)
                        if not c:
                            break
                        secs.append(c.group(1))
                        pos = c.end()
                    have = doc(name)
                    if have is None:
                        continue  # reported as a mention
                    for s in secs:
                        checked += 1
                        if s not in have:
                            errors.append(f"{where}: docs/{name} has no section {s}")
    return errors, checked


def self_test():
    fixtures = {
        "docs/facts.md": "# Facts\n## 1. One\n### 1.2 One two\n## Part 2: Two\n```\n## 9. fenced\n```\n",
        "good.rs": "// docs/facts.md §1.2, §2 and `docs/facts.md` (§1–§1.2); ISO 7816-4 §5.1 is not ours.\n"
                   "// ../shared/reference holds optional real certificates.\n",
        "split.rs": "// docs/facts.md\n// §1.2 and (notes\n// §2) and\n",
        "bad.rs": "// docs/facts.md §3\n"           # no such section
                  "// docs/facts.md §1.2/§9\n"      # a continuation without heading (fenced)
                  "// docs/missing.md §1\n"         # no such file
                  "// see ../shared/docs/x.md\n"    # outside the repository
                  "// spec §1.2\n"                  # old form
                  "# data notes §2\n",              # old form
    }
    with tempfile.TemporaryDirectory() as d:
        for rel, text in fixtures.items():
            os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)
            with open(os.path.join(d, rel), "w", encoding="utf-8") as f:
                f.write(text)
        errors, checked = scan(d)
    got = sorted(e.split(":")[0] + ":" + e.split(":")[1] for e in errors)
    want = sorted(["bad.rs:1", "bad.rs:2", "bad.rs:3", "bad.rs:4", "bad.rs:5", "bad.rs:6", "split.rs:2"])
    if got != want or checked != 8:
        print("check-citations self-test FAILED: the checker no longer catches what it must")
        print("  expected errors at", want, "and 8 sections checked")
        print("  got", checked, "sections checked and:")
        for e in errors:
            print("   ", e)
        sys.exit(2)


self_test()
if args == ["--self-test"]:
    print("check-citations self-test: ok")
    sys.exit(0)
extra = None
if args[:1] == ["--extra-docs"]:
    extra, args = args[1], args[2:]
repo = args[0] if args else os.path.dirname(os.path.dirname(SELF))
errors, checked = scan(repo, extra)
for e in errors:
    print(e)
if errors:
    print(f"check-citations: {len(errors)} problem(s); {checked} cited sections checked")
    sys.exit(1)
print(f"check-citations: ok, {checked} cited sections checked")
PY
