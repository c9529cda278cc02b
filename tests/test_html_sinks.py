"""X2: no module outside ``workbench/_html/`` builds HTML from data; JS inserts markup only from escaped traits.

An AST lint over every ``workbench`` module (plus a regex lint over the widget front ends).
It flags:

- calls to raw-HTML sinks: ``HTML(``, ``HTMLMath(``, ``Markdown(``, ``Javascript(``, ``SVG(``
  (ipywidgets / IPython.display), hence also ``display(HTML(...))``;
- ``description_allow_html=True`` (keyword or attribute assignment);
- pandas ``.style.format(...)`` without ``escape="html"`` and ``.style....to_html()``;
- markup built from data: an f-string, ``+`` concatenation, ``%`` formatting or ``.format()``
  whose literal text contains an HTML tag (``<div``, ``</td>``, ``<img`` ...);
- in ``.js`` files: ``innerHTML =`` from anything but ``model.get("<name>_html")``,
  ``insertAdjacentHTML`` from anything but ``page.html``, ``outerHTML``, ``document.write``.

The lint is tested on planted violations so that it cannot pass vacuously.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "workbench"
SINK_CALLS = {"HTML", "HTMLMath", "Markdown", "Javascript", "SVG"}
TAGS = (
    "a|abbr|b|body|br|button|code|details|div|dl|dd|dt|em|font|form|h[1-6]|head|hr|html|i|iframe|img|input|"
    "label|li|link|meta|ol|option|p|pre|script|section|select|small|span|strong|style|sub|summary|sup|svg|"
    "table|tbody|td|textarea|th|thead|tr|u|ul"
)
TAG = re.compile(rf"<\s*/?\s*(?:{TAGS})(?=[\s>/])", re.IGNORECASE)


def _literal_text(node: ast.AST) -> str:
    """The literal (non-data) text of a string expression."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):  # a placeholder where data goes: f"(?P<p{i}>" is not "<p>"
        return "".join(v.value if isinstance(v, ast.Constant) else "\x00" for v in node.values)
    return ""


def _has_data(node: ast.AST) -> bool:
    return not (isinstance(node, ast.Constant) or (
        isinstance(node, ast.JoinedStr) and all(isinstance(v, ast.Constant) for v in node.values)))


def _name(func: ast.AST) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _chain(node: ast.AST) -> str:
    return ast.unparse(node) if node is not None else ""


def lint_python(source: str, filename: str) -> list[str]:
    """Problems in one Python module (line numbers included)."""
    tree = ast.parse(source, filename)
    problems: list[str] = []

    def report(node: ast.AST, what: str) -> None:
        problems.append(f"{filename}:{getattr(node, 'lineno', 0)}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _name(node.func)
            if name in SINK_CALLS:
                report(node, f"raw HTML sink {name}(...)")
            for kw in node.keywords:
                if kw.arg == "description_allow_html" and not (
                        isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    report(node, "description_allow_html=True")
            if name == "format" and isinstance(node.func, ast.Attribute):
                receiver = node.func.value
                if ".style" in "." + _chain(receiver).split("(")[0] and _chain(receiver).endswith("style"):
                    escape = [k for k in node.keywords if k.arg == "escape"]
                    if not escape or _chain(escape[0].value) != "'html'":
                        report(node, "Styler.format without escape='html'")
                elif TAG.search(_literal_text(receiver)) and (node.args or node.keywords):
                    report(node, "markup built with str.format()")
            if name == "to_html" and isinstance(node.func, ast.Attribute) and ".style" in _chain(node.func.value):
                report(node, "Styler.to_html() (does not escape)")
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                allowed = isinstance(node.value, ast.Constant) and node.value.value is False
                if isinstance(target, ast.Attribute) and target.attr == "description_allow_html" and not allowed:
                    report(node, "description_allow_html = True")
        elif isinstance(node, ast.JoinedStr):
            if TAG.search(_literal_text(node)) and _has_data(node):
                report(node, "markup built with an f-string")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
            left, right = _literal_text(node.left), _literal_text(node.right)
            if (TAG.search(left) or TAG.search(right)) and (_has_data(node.left) or _has_data(node.right)):
                report(node, "markup built with + or %")
    return problems


INNER = re.compile(r"\.innerHTML\s*=\s*([^;\n]+)")
ADJACENT = re.compile(r"insertAdjacentHTML\(\s*[^,]+,\s*([^)]+)\)")


def lint_js(source: str, filename: str) -> list[str]:
    """Problems in one front-end module."""
    problems = []
    for number, line in enumerate(source.splitlines(), 1):
        for rhs in INNER.findall(line):
            if not re.fullmatch(r'model\.get\("\w+_html"\)', rhs.strip()):
                problems.append(f"{filename}:{number}: innerHTML from {rhs.strip()!r}")
        for arg in ADJACENT.findall(line):
            if arg.strip() != "page.html":
                problems.append(f"{filename}:{number}: insertAdjacentHTML from {arg.strip()!r}")
        for bad in ("outerHTML", "document.write"):
            if bad in line:
                problems.append(f"{filename}:{number}: {bad}")
    return problems


def lint_package(root: Path) -> list[str]:
    problems: list[str] = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if relative.parts[0] == "_html":
            continue
        problems += lint_python(path.read_text(encoding="utf-8"), str(relative))
    for path in sorted(root.rglob("*.js")):
        problems += lint_js(path.read_text(encoding="utf-8"), str(path.relative_to(root)))
    return problems


def test_package_has_no_raw_html_sinks():
    assert PACKAGE.is_dir()
    assert lint_package(PACKAGE) == []


PLANTED = {
    "display_html": "from IPython.display import HTML, display\ndisplay(HTML(text))\n",
    "widget_html": "import ipywidgets as w\nw.HTML(value=text)\n",
    "html_math": "import ipywidgets as w\nw.HTMLMath(text)\n",
    "markdown": "from IPython.display import Markdown\nMarkdown(text)\n",
    "allow_html_kw": "import ipywidgets as w\nw.Button(description=text, description_allow_html=True)\n",
    "allow_html_attr": "button.description_allow_html = True\n",
    "fstring": "def cell(v):\n    return f'<td class=\"x\">{v}</td>'\n",
    "concat": "def cell(v):\n    return '<div>' + v + '</div>'\n",
    "percent": "def cell(v):\n    return '<span>%s</span>' % v\n",
    "format": "def cell(v):\n    return '<img src={}>'.format(v)\n",
    "styler": "def show(df):\n    return df.style.format(precision=2)\n",
    "styler_html": "def show(df):\n    return df.style.to_html()\n",
}


@pytest.mark.parametrize("case", sorted(PLANTED))
def test_lint_catches_a_planted_violation(tmp_path, case):
    package = tmp_path / "workbench"
    (package / "_html").mkdir(parents=True)
    (package / "_html" / "ok.py").write_text("def cell(v):\n    return f'<td>{v}</td>'\n")  # allowed there
    (package / "bad.py").write_text(PLANTED[case])
    problems = lint_package(package)
    assert len(problems) >= 1 and all(p.startswith("bad.py:") for p in problems), problems


@pytest.mark.parametrize("line", [
    "el.innerHTML = model.get('note');",
    'el.innerHTML = model.get("note");',
    "el.innerHTML = `<b>${name}</b>`;",
    'box.insertAdjacentHTML("beforeend", model.get("message"));',
    "el.outerHTML = x;",
    "document.write(x);",
])
def test_js_lint_catches_planted_sinks(line):
    assert lint_js(line, "planted.js")


def test_lint_allows_safe_code():
    safe = (
        '"""Docstrings may mention <div> and <script>."""\n'
        "x = f'{a} < {b}'\n"
        "msg = 'expected <unknown> token'\n"
    "rx = f'(?P<p{i}>{pattern})'\n"
        "y = f'value {v!r} is not <= 3'\n"
        "df.style.format(precision=2, escape='html')\n"
        "w.Button(description=name, description_allow_html=False)\n"
    )
    assert lint_python(safe, "safe.py") == []
    assert lint_js('header.innerHTML = model.get("header_html");\npre.insertAdjacentHTML("beforeend", page.html);',
                   "ok.js") == []
