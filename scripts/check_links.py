"""Every relative link in the repository's Markdown resolves (CI runs it from .ci/run).

    python3 scripts/check_links.py [FILE.md ...]     (default: every tracked *.md)

A link `[text](path)` or `[text](path#anchor)` outside code blocks must name a file or folder
that exists, relative to the file it is in; an anchor must be the GitHub slug of a heading of
the target file (or of the same file for `#anchor`). Web links are not fetched. Prints one line
per broken link and exits 1 if there is any.
"""

import os
import re
import subprocess
import sys

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading):
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def prose(path, keep_code=False):
    """The file's lines outside fenced code blocks, with inline code removed unless kept."""
    fenced = False
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            if not fenced:
                yield number, line if keep_code else re.sub(r"`[^`]*`", "", line)


def anchors(path):
    """GitHub's anchors: a heading's text (inline code's text included), lower case, spaces
    as hyphens, punctuation other than `-` and `_` dropped."""
    found = set()
    for _, line in prose(path, keep_code=True):
        m = re.match(r"^#{1,6} (.*)$", line.rstrip("\n"))
        if m:
            found.add(slug(m.group(1)))
    return found


def broken(path):
    out = []
    for number, line in prose(path):
        for target in LINK.findall(line):
            if re.match(r"^[a-z]+:", target):
                continue
            file_part, _, anchor = target.partition("#")
            resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
            if not os.path.exists(resolved):
                out.append(f"{path}:{number}: {target}: no such file")
            elif anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
                out.append(f"{path}:{number}: {target}: no heading with that anchor")
    return out


def main(files):
    if not files:
        listed = subprocess.run(["git", "ls-files", "*.md"], capture_output=True, text=True, check=True)
        files = listed.stdout.split()
    problems = [p for f in files for p in broken(f)]
    for p in problems:
        print(f"check_links: {p}")
    print(f"check_links: {len(files)} files, {len(problems)} broken links")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
