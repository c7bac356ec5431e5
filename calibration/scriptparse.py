"""Parse ALMA-style CASA scripts into their steps, and say what is odd about them.

ALMA scripts look like:

    step_title = {0: 'Import of the ASDM', 1: 'Fix of SYSCAL table times', ...}
    ...
    # Import of the ASDM
    mystep = 0
    if(mystep in thesteps):
      ...

Also recognised: `if mystep in thesteps:` and spacing variants, `thisstep = N` headers,
`if 3 in thesteps:` / `if 3 in mysteps:`, and `if runstep(3):` with a guard function
(`def runstep(n): return n in thesteps`). A script with no step machinery at all
(scriptForPI, scriptForFluxCalibration) is one step, number 0, the whole file.

Pure Python, no Django, no CASA: it runs in the web process on untrusted text and never
executes it. Python 2 scripts (CASA <= 5) are recognised and converted with lib2to3.
"""

import ast
import io
import re
import tokenize
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import PurePosixPath

BOM = "\ufeff"
HEADER_RE = re.compile(r"^mystep\s*=\s*(\d+)\s*(#.*)?$")
GUARD_RE = re.compile(r"^if\s*\(?\s*mystep\s+in\s+thesteps\s*\)?\s*:")
# `# mystep = 5`, also with a trailing comment: `#mystep = 5   # no Tsys`
COMMENTED_HEADER_RE = re.compile(r"^\s*#+\s*(?:mystep|thisstep)\s*=\s*(\d+)\s*(?:#.*)?$")
# `#if(mystep in thesteps):`, `# if 3 in mysteps:`, `#if runstep(3):`
COMMENTED_GUARD_RE = re.compile(r"^\s*#+\s*if\b.*(\bin\s+\(?\s*(?:thesteps|mysteps)\b|\brun_?steps?\s*\()")
PY2_HINT_RE = re.compile(r"^\s*(print\s+[^\s(=]|exec\s+['\"]|.*\bexcept\s+\w+\s*,\s*\w+\s*:)", re.M)
# The lists a step guard looks into: ALMA's `thesteps`, or the runner's `mysteps` directly.
STEP_LISTS = frozenset({"thesteps", "mysteps"})
# Guard functions by their usual names, when the script imports them instead of defining them.
STEP_FUNCTIONS = frozenset({"runstep", "runsteps", "run_step", "run_steps", "dostep", "do_step"})
# analysisUtils under its usual names; es = aU.stuffForScienceDataReduction().
ALMA_HELPER_ALIASES = frozenset({"aU", "au", "es"})


@dataclass(frozen=True)
class Step:
    number: int
    title: str
    start_line: int  # the `mystep = N` line (1-based), or the guard's for `if 3 in thesteps:`
    end_line: int  # last line of the `if(mystep in thesteps):` block (and of blocks it absorbs)


@dataclass(frozen=True)
class ParseIssue:
    """Something the parser noticed in a script (not a diagnostic finding: see reports.models.ParseIssue)."""

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
        """Can run: valid Python 3 with at least one step (a stepless script is one step)."""
        return not self.python2 and not self.syntax_error and bool(self.steps)

    @property
    def blocking(self) -> list[ParseIssue]:
        """Error-level findings: a run needs them fixed, or the reducer's explicit confirmation."""
        return [f for f in self.findings if f.severity == "error"]

    def to_json(self) -> dict:
        data = asdict(self)
        data["titles"] = {str(k): v for k, v in self.titles.items()}
        data["blocking"] = [f.code for f in self.blocking]
        return data


@dataclass(frozen=True)
class _Orphan:
    """A live step guard with no header of its own: it runs with the step variable's last value."""

    guard_line: int
    end_line: int
    variable: str
    owner: int | None  # the step number it runs as part of; None: the variable is not set yet


def parse_script(text: str, filename: str = "") -> ParsedScript:
    """The ordered steps of an ALMA-style script, with findings; never raises on bad input.

    `filename` (the uploaded name) only titles a script without steps.
    """
    result = ParsedScript()
    source, normalised = normalise_source(text)
    result.findings.extend(normalised)
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        converted = convert_python2(source)
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
    steps, orphans = _step_blocks(tree, result.titles, lines)
    result.steps = steps
    _check_titles_and_blocks(result, steps)
    _check_order(result, steps)
    _check_orphans_and_commented_headers(result, lines, steps, orphans)
    _check_version_exit(result, tree)
    _check_alma_helpers(result, tree)
    if not steps:
        if tree.body and not result.titles and not _mentions_steps(tree):
            result.steps = [Step(0, _whole_script_title(filename), 1, max(len(lines), 1))]
            result.findings.append(
                ParseIssue(
                    "stepless",
                    "No steps: runs as one step (step 0, the whole script), as `execfile` would run it.",
                    None,
                    "info",
                )
            )
        else:
            result.findings.append(
                ParseIssue(
                    "no_steps", "No `mystep = N` / `if(mystep in thesteps):` blocks found.", None, "error"
                )
            )
    return result


# --- the text Python 3 reads -----------------------------------------------------------
def normalise_source(text: str) -> tuple[str, list[ParseIssue]]:
    """The text to parse and run, and what was changed in it; lines keep their numbers.

    - a UTF-8 byte-order mark (Windows editors) is dropped: Python 3 refuses it in a str;
    - indentation mixing tabs and spaces, which Python 2 read with a tab as "to the next
      multiple of 8 columns" and Python 3 refuses (TabError), is expanded the Python 2 way,
      but only when Python 3 refuses the text as it is and the expanded text is fixed by it.
    The runner must execute this text, not the stored one.
    """
    findings = []
    if text.startswith(BOM):
        text = text.lstrip(BOM)
        findings.append(
            ParseIssue(
                "byte_order_mark",
                "The file starts with a UTF-8 byte-order mark (saved by a Windows editor): it is ignored.",
                1,
                "info",
            )
        )
    tab_lines = [n for n, line in enumerate(text.splitlines(), 1) if "\t" in _indent(line)]
    refused = _tab_error_line(text) if tab_lines else None
    if refused is None:
        return text, findings
    expanded = _expand_indentation_tabs(text)
    try:
        ast.parse(expanded)
    except IndentationError:
        return text, findings  # Python 2 would refuse it too: the original error stands
    except SyntaxError:
        pass  # something else (e.g. Python 2 syntax, converted next): the tabs are read right
    shown = ", ".join(str(n) for n in tab_lines[:10]) + (" ..." if len(tab_lines) > 10 else "")
    findings.append(
        ParseIssue(
            "tabs_expanded",
            f"Line {refused} mixes tabs and spaces in its indentation: Python 3 refuses it (TabError). "
            "It is read, and run, as Python 2 read it: a tab goes to the next multiple of 8 columns "
            f"(lines indented with tabs: {shown}). Check that the blocks are the ones you meant, and "
            "re-indent with spaces.",
            refused,
            "warning",
        )
    )
    return expanded, findings


def _tab_error_line(text: str) -> int | None:
    """The line where Python 3 raises TabError: its indentation compares differently with a
    tab as 8 columns and as 1 (the tokenizer's own rule); None if there is none."""
    starts: list[int] = []
    at_start = True
    skip = {tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.NEWLINE:
                at_start = True
            elif token.type not in skip and at_start:
                starts.append(token.start[0])
                at_start = False
    except (tokenize.TokenError, SyntaxError):
        pass  # judge the lines read so far
    lines = text.splitlines()
    stack = [(0, 0)]
    for number in starts:
        indent = _indent(lines[number - 1])
        col, alt = len(indent.expandtabs(8)), len(indent.expandtabs(1))
        if col > stack[-1][0]:
            if alt <= stack[-1][1]:
                return number
            stack.append((col, alt))
            continue
        while len(stack) > 1 and col < stack[-1][0]:
            stack.pop()
        if col == stack[-1][0] and alt != stack[-1][1]:
            return number
    return None


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t\f"))]


def _expand_indentation_tabs(text: str) -> str:
    """Tabs in the indentation expanded to multiples of 8 columns; strings are left alone."""
    inside_strings: set[int] = set()  # lines that continue a multi-line string literal
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.STRING and token.end[0] > token.start[0]:
                inside_strings.update(range(token.start[0] + 1, token.end[0] + 1))
    except (tokenize.TokenError, SyntaxError):
        pass
    out = []
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        indent = _indent(line)
        if "\t" in indent and number not in inside_strings:
            line = indent.expandtabs(8) + line[len(indent) :]
        out.append(line)
    return "".join(out)


# --- steps -------------------------------------------------------------------------------
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


def _int_assignment(node: ast.stmt) -> tuple[str, int] | None:
    """`mystep = 5` (any name): the name and the number."""
    if (
        isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, int)
        and not isinstance(node.value.value, bool)
    ):
        return node.targets[0].id, node.value.value
    return None


def _is_step_list(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in STEP_LISTS


def _step_functions(tree: ast.Module) -> set[str]:
    """Functions the script defines as step guards: `def runstep(n): return n in thesteps`."""
    names = set(STEP_FUNCTIONS)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and len(node.args.args) == 1:
            returns = [n for n in ast.walk(node) if isinstance(n, ast.Return) and n.value is not None]
            if returns and all(_membership(r.value) is not None for r in returns if r.value is not None):
                names.add(node.name)
        elif (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Lambda)
            and _membership(node.value.body) is not None
        ):
            names.add(node.targets[0].id)
    return names


def _membership(test: ast.expr | None) -> ast.expr | None:
    """`X in thesteps` (or `in mysteps`): X."""
    if (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], ast.In)
        and _is_step_list(test.comparators[0])
    ):
        return test.left
    return None


def _guard(node: ast.stmt, functions: set[str]) -> str | int | None:
    """What an `if` selects its step by: a variable's name (`if(mystep in thesteps):`), a
    number (`if 3 in thesteps:`, `if runstep(3):`); None when it is no step guard."""
    if not isinstance(node, ast.If):
        return None
    test = node.test
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):  # `if mystep in thesteps and x:`
        test = test.values[0]
    subject = _membership(test)
    if (
        subject is None
        and isinstance(test, ast.Call)
        and isinstance(test.func, ast.Name)
        and test.func.id in functions
        and len(test.args) == 1
        and not test.keywords
    ):
        subject = test.args[0]
    if isinstance(subject, ast.Name):
        return subject.id
    if (
        isinstance(subject, ast.Constant)
        and isinstance(subject.value, int)
        and not isinstance(subject.value, bool)
    ):
        return subject.value
    return None


def _step_blocks(
    tree: ast.Module, titles: dict[int, str], lines: list[str]
) -> tuple[list[Step], list[_Orphan]]:
    """Top-level step blocks in script order; a guard whose header is missing (or commented
    out) runs with the variable's last value, i.e. as part of that step, which it extends."""
    functions = _step_functions(tree)
    steps: list[Step] = []
    orphans: list[_Orphan] = []
    # variable -> (value, line of the assignment, index of the step that used it or None)
    headers: dict[str, tuple[int, int, int | None]] = {}
    for node in tree.body:
        assigned = _int_assignment(node)
        if assigned is not None:
            headers[assigned[0]] = (assigned[1], node.lineno, None)
            continue
        selector = _guard(node, functions)
        if selector is None:
            continue
        end = node.end_lineno or node.lineno
        if isinstance(selector, int):
            steps.append(Step(selector, _title(selector, titles, lines, node.lineno), node.lineno, end))
            continue
        header = headers.get(selector)
        if header is not None and header[2] is None:
            number, line, _ = header
            headers[selector] = (number, line, len(steps))
            steps.append(Step(number, _title(number, titles, lines, line), line, end))
            continue
        owner = header[2] if header is not None else None
        if owner is not None:
            steps[owner] = replace(steps[owner], end_line=max(steps[owner].end_line, end))
        orphans.append(
            _Orphan(node.lineno, end, selector, steps[owner].number if owner is not None else None)
        )
    return steps, orphans


def _title(number: int, titles: dict[int, str], lines: list[str], line: int) -> str:
    """The step_title entry; a script without step_title: the comment just above the step."""
    if titles:
        return titles.get(number, "")
    above = lines[line - 2].strip() if line >= 2 else ""
    return above.lstrip("#").strip() if above.startswith("#") else ""


def _mentions_steps(tree: ast.Module) -> bool:
    """Whether the script has any step machinery (then finding no steps is an error)."""
    names = {"mystep", "thesteps", "mysteps", "step_title"}
    return any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(tree))


def _whole_script_title(filename: str) -> str:
    name = PurePosixPath(filename.replace("\\", "/")).name
    return f"{name} (whole script)" if name else "whole script"


def _check_titles_and_blocks(result: ParsedScript, steps: list[Step]) -> None:
    numbers = {s.number for s in steps}
    for number, title in sorted(result.titles.items()):
        if number not in numbers:
            result.findings.append(
                ParseIssue("title_without_block", f"Step {number} ('{title}') has a title but no block.")
            )
    if not result.titles:
        return  # no step_title at all: titles come from comments, one missing is no news
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


def _check_orphans_and_commented_headers(
    result: ParsedScript, lines: list[str], steps: list[Step], orphans: list[_Orphan]
) -> None:
    """Commented-out step headers: a whole step commented out is only news; a live block
    left behind runs as part of another step (or of every step), which the reducer must see."""
    claimed: set[int] = set()
    by_number = {s.number: s for s in steps}
    for orphan in orphans:
        header_line = _commented_header_above(lines, orphan.guard_line)
        owner = by_number.get(orphan.owner) if orphan.owner is not None else None
        block = f"lines {orphan.guard_line}-{orphan.end_line}"
        if owner is None:
            runs = (
                f"`{orphan.variable}` is not set there, so the script stops with a NameError "
                "whichever step runs"
            )
        else:
            runs = (
                f"its block runs as part of step {owner.number} ('{owner.title}'): {block} run whenever "
                f"step {owner.number} runs ({orphan.variable} is still {owner.number})"
            )
        if header_line is not None:
            claimed.add(header_line)
            number = int(COMMENTED_HEADER_RE.match(lines[header_line - 1]).group(1))  # type: ignore[union-attr]
            message = (
                f"The header of step {number} is commented out (line {header_line}) but not its `if` "
                f"line: {runs}. Restore the header, or comment out the whole block."
            )
            code = "commented_header_live_body"
        else:
            message = f"The step block at {block} has no `{orphan.variable} = N` line before it: {runs}."
            code = "block_without_header"
        result.findings.append(ParseIssue(code, message, header_line or orphan.guard_line, "error"))

    for index, line in enumerate(lines):
        match = COMMENTED_HEADER_RE.match(line)
        header_line = index + 1
        if not match or header_line in claimed:
            continue
        number = int(match.group(1))
        owner = next((s for s in steps if s.start_line < header_line <= s.end_line), None)
        if owner is not None:
            live = _live_lines_after(lines, index + 1, owner.end_line)
            if live:
                result.findings.append(
                    ParseIssue(
                        "commented_header_live_body",
                        f"The header of step {number} is commented out (line {header_line}), and its `if` "
                        f"line too, but its body (lines {live[0]}-{live[-1]}) is live: it runs as part of "
                        f"step {owner.number} ('{owner.title}'). Comment the body out too, or restore "
                        "the header and its `if` line.",
                        header_line,
                        "error",
                    )
                )
                continue
        else:
            following = [s.start_line for s in steps if s.start_line > header_line]
            live = _live_lines_after(lines, index + 1, min(following, default=header_line) - 1)
            if live:
                result.findings.append(
                    ParseIssue(
                        "commented_header_live_body",
                        f"The header of step {number} is commented out (line {header_line}), and its `if` "
                        f"line too, but lines {live[0]}-{live[-1]} after it are live and outside any step: "
                        "they run whichever steps are chosen. Comment them out too, or indent them back "
                        "under a restored header.",
                        header_line,
                        "warning",
                    )
                )
                continue
        result.findings.append(
            ParseIssue(
                "disabled_step", f"Step {number} is commented out (line {header_line}).", header_line, "info"
            )
        )


def _commented_header_above(lines: list[str], guard_line: int) -> int | None:
    """The commented-out header just above a live guard (only blank and comment lines between)."""
    for index in range(guard_line - 2, -1, -1):
        stripped = lines[index].strip()
        if COMMENTED_HEADER_RE.match(lines[index]):
            return index + 1
        if stripped and not stripped.startswith("#"):
            return None
    return None


def _live_lines_after(lines: list[str], start: int, end_line: int) -> list[int]:
    live = []
    for index in range(start, min(end_line, len(lines))):
        stripped = lines[index].strip()
        if COMMENTED_HEADER_RE.match(lines[index]):
            break  # the next commented-out step
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


def _check_alma_helpers(result: ParsedScript, tree: ast.Module) -> None:
    """Live calls to analysisUtils (aU / au / es, or the name it is imported as) and casadef:
    read from the syntax tree, so comments and strings never count."""
    aliases = set(ALMA_HELPER_ALIASES)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "analysisUtils" and alias.asname:
                    aliases.add(alias.asname)
    calls = set()
    uses_casadef = False
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in aliases
        ):
            calls.add(f"{node.func.value.id}.{node.func.attr}")
        elif (isinstance(node, ast.Name) and node.id == "casadef") or (
            isinstance(node, ast.Import) and any(a.name == "casadef" for a in node.names)
        ):
            uses_casadef = True
    result.alma_helpers = sorted(calls) + (["casadef"] if uses_casadef else [])
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
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        from lib2to3 import refactor
        from lib2to3.pgen2.parse import ParseError
        from lib2to3.pgen2.tokenize import TokenError

    text = normalise_source(text)[0]
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
