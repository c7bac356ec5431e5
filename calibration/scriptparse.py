"""Parse ALMA-style CASA scripts into their steps, and say what is odd about them.

ALMA scripts look like:

    step_title = {0: 'Import of the ASDM', 1: 'Fix of SYSCAL table times', ...}
    ...
    # Import of the ASDM
    mystep = 0
    if(mystep in thesteps):
      ...

Pure Python, no Django, no CASA: it runs in the web process on untrusted text and never
executes it. Python 2 scripts (CASA <= 5) are recognised and converted with lib2to3.
"""

import ast
import re
import warnings
from dataclasses import asdict, dataclass, field

HEADER_RE = re.compile(r"^mystep\s*=\s*(\d+)\s*(#.*)?$")
GUARD_RE = re.compile(r"^if\s*\(?\s*mystep\s+in\s+thesteps\s*\)?\s*:")
COMMENTED_HEADER_RE = re.compile(r"^\s*#+\s*mystep\s*=\s*(\d+)\s*$")
COMMENTED_GUARD_RE = re.compile(r"^\s*#+\s*if\s*\(?\s*mystep\s+in\s+thesteps\s*\)?\s*:")
ALMA_HELPER_RE = re.compile(r"\b(aU|es)\.(\w+)\s*\(")
PY2_HINT_RE = re.compile(r"^\s*(print\s+[^\s(=]|exec\s+['\"]|.*\bexcept\s+\w+\s*,\s*\w+\s*:)", re.M)


@dataclass(frozen=True)
class Step:
    number: int
    title: str
    start_line: int  # the `mystep = N` line (1-based)
    end_line: int  # last line of the `if(mystep in thesteps):` block


@dataclass(frozen=True)
class ParseIssue:
    """Something the parser noticed in a script (not a diagnostic finding: see reports.models.Finding)."""

    code: str
    message: str
    line: int | None = None
    severity: str = "warning"  # info | warning | error


@dataclass
class ParsedScript:
    steps: list[Step] = field(default_factory=list)
    titles: dict[int, str] = field(default_factory=dict)
    findings: list[ParseIssue] = field(default_factory=list)
    python2: bool = False
    syntax_error: str = ""
    alma_helpers: list[str] = field(default_factory=list)

    @property
    def runnable(self) -> bool:
        return not self.python2 and not self.syntax_error and bool(self.steps)

    def to_json(self) -> dict:
        data = asdict(self)
        data["titles"] = {str(k): v for k, v in self.titles.items()}
        return data


def parse_script(text: str) -> ParsedScript:
    """The ordered steps of an ALMA-style script, with findings; never raises on bad input."""
    result = ParsedScript()
    source = text
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        converted = convert_python2(text)
        if converted is None:
            result.syntax_error = f"line {exc.lineno}: {exc.msg}"
            result.findings.append(
                ParseIssue("syntax_error", f"Not valid Python: {result.syntax_error}", exc.lineno, "error")
            )
            return result
        result.python2 = True
        result.findings.append(
            ParseIssue(
                "python2",
                "This is a Python 2 script (CASA 5 or older, e.g. `print 'x'`). It cannot run in "
                "CASA 6 as it is: create the converted Python 3 version and review its diff.",
                exc.lineno,
                "error",
            )
        )
        source = converted
        tree = ast.parse(converted)

    lines = source.splitlines()
    result.titles = _step_titles(tree)
    steps = _step_blocks(tree, result.titles)
    result.steps = steps
    _check_titles_and_blocks(result, steps)
    _check_order(result, steps)
    _check_commented_headers(result, lines, steps)
    _check_version_exit(result, tree)
    _check_alma_helpers(result, source)
    if not steps:
        result.findings.append(
            ParseIssue("no_steps", "No `mystep = N` / `if(mystep in thesteps):` blocks found.", None, "error")
        )
    return result


def _step_titles(tree: ast.Module) -> dict[int, str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "step_title" for t in node.targets
        ):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            if isinstance(value, dict):
                return {int(k): str(v) for k, v in value.items() if isinstance(k, int)}
    return {}


def _is_header(node: ast.stmt) -> int | None:
    if (
        isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id == "mystep"
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, int)
    ):
        return node.value.value
    return None


def _is_guard(node: ast.stmt) -> bool:
    test = getattr(node, "test", None)
    return (
        isinstance(node, ast.If)
        and isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "mystep"
        and len(test.ops) == 1
        and isinstance(test.ops[0], ast.In)
        and isinstance(test.comparators[0], ast.Name)
        and test.comparators[0].id == "thesteps"
    )


def _step_blocks(tree: ast.Module, titles: dict[int, str]) -> list[Step]:
    steps = []
    body = tree.body
    for i, node in enumerate(body):
        number = _is_header(node)
        if number is None:
            continue
        guard = next((n for n in body[i + 1 : i + 3] if _is_guard(n)), None)
        if guard is None:
            continue
        steps.append(Step(number, titles.get(number, ""), node.lineno, guard.end_lineno or guard.lineno))
    return steps


def _check_titles_and_blocks(result: ParsedScript, steps: list[Step]) -> None:
    numbers = {s.number for s in steps}
    for number, title in sorted(result.titles.items()):
        if number not in numbers:
            result.findings.append(
                ParseIssue("title_without_block", f"Step {number} ('{title}') has a title but no block.")
            )
    for step in steps:
        if step.number not in result.titles:
            result.findings.append(
                ParseIssue(
                    "block_without_title", f"Step {step.number} has a block but no title.", step.start_line
                )
            )


def _check_order(result: ParsedScript, steps: list[Step]) -> None:
    seen: set[int] = set()
    previous = None
    for step in steps:
        if step.number in seen:
            result.findings.append(
                ParseIssue("duplicate_step", f"Step {step.number} appears more than once.", step.start_line)
            )
        elif previous is not None and step.number < previous:
            result.findings.append(
                ParseIssue(
                    "out_of_order",
                    f"Step {step.number} comes after step {previous}: steps run in script order.",
                    step.start_line,
                )
            )
        seen.add(step.number)
        previous = step.number


def _check_commented_headers(result: ParsedScript, lines: list[str], steps: list[Step]) -> None:
    """A commented-out step header whose body is still live runs as part of the previous step."""
    for index, line in enumerate(lines):
        match = COMMENTED_HEADER_RE.match(line)
        if not match:
            continue
        number, header_line = int(match.group(1)), index + 1
        owner = next((s for s in steps if s.start_line < header_line <= s.end_line), None)
        live = _live_lines_after(lines, index + 1, owner.end_line if owner else header_line)
        if owner is not None and live:
            result.findings.append(
                ParseIssue(
                    "commented_header_live_body",
                    f"The header of step {number} is commented out (line {header_line}) but its body "
                    f"(lines {live[0]}-{live[-1]}) is live: it runs as part of step {owner.number} "
                    f"('{owner.title}'). Comment the body out too, or restore the header.",
                    header_line,
                    "error",
                )
            )
        else:
            result.findings.append(
                ParseIssue(
                    "disabled_step",
                    f"Step {number} is commented out (line {header_line}).",
                    header_line,
                    "info",
                )
            )


def _live_lines_after(lines: list[str], start: int, end_line: int) -> list[int]:
    live = []
    for index in range(start, min(end_line, len(lines))):
        stripped = lines[index].strip()
        if not stripped or stripped.startswith("#") or COMMENTED_GUARD_RE.match(lines[index]):
            continue
        live.append(index + 1)
    return live


def _check_version_exit(result: ParsedScript, tree: ast.Module) -> None:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "exit"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "sys"
        ):
            text = ast.unparse(node)
            if "VERSION" in text.upper():
                result.findings.append(
                    ParseIssue(
                        "version_check",
                        "The script exits unless it runs in the CASA version it was made for; the runner "
                        "answers version checks with the installed CASA 6.7.",
                        node.lineno,
                        "info",
                    )
                )


def _check_alma_helpers(result: ParsedScript, source: str) -> None:
    calls = sorted({f"{m.group(1)}.{m.group(2)}" for m in ALMA_HELPER_RE.finditer(source)})
    uses_casadef = re.search(r"\bcasadef\b", source) is not None
    result.alma_helpers = calls + (["casadef"] if uses_casadef else [])
    if result.alma_helpers:
        result.findings.append(
            ParseIssue(
                "alma_helpers",
                "Uses helpers that only exist at ALMA (analysisUtils): "
                + ", ".join(result.alma_helpers)
                + ". They are skipped (logged no-ops, as with applyonly=True) and reported per step.",
                None,
                "info",
            )
        )


def convert_python2(text: str) -> str | None:
    """The Python 3 version of a Python 2 script (lib2to3), or None when it is not Python 2."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (DeprecationWarning, PendingDeprecationWarning))
        from lib2to3 import refactor
        from lib2to3.pgen2.parse import ParseError
        from lib2to3.pgen2.tokenize import TokenError

    if not PY2_HINT_RE.search(text):
        return None
    tool = refactor.RefactoringTool(refactor.get_fixers_from_package("lib2to3.fixes"))
    try:
        converted = str(tool.refactor_string(text if text.endswith("\n") else text + "\n", "script"))
    except (ParseError, TokenError, IndentationError, SyntaxError):
        return None
    try:
        ast.parse(converted)
    except SyntaxError:
        return None
    return converted
