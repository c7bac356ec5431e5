"""Apply a finding's suggested edit to a script's text (a new version is made from the result).

Two kinds, both confined to one step's block and marked with the reducer's initials, as the
seeds ask reducers to mark their edits:
  {"step": N, "task": "wvrgcal", "param": "wvrflag", "value": [...]}  set a keyword of a call
  {"step": N, "append": ["flagdata(...)", ...]}                      add lines at the step's end
"""

import io
import tokenize

from calibration.scriptparse import parse_script
from qa2portal.errors import DomainError


class EditFailed(DomainError, ValueError):
    """The edit does not fit the script (step or call not found): 400."""


def apply_edit(text: str, edit: dict, *, initials: str, reason: str) -> str:
    steps = {s.number: s for s in parse_script(text).steps}
    step = steps.get(edit["step"])
    if step is None:
        raise EditFailed(f"the script has no step {edit['step']}")
    lines = text.splitlines()
    comment = f"# {initials}: {reason} (qa2portal finding)"
    if "append" in edit:
        indent = _indent_of(lines[step.start_line])  # the `if(mystep in thesteps):` line
        body_indent = indent + "  "
        new = ["", f"{body_indent}{comment}", *[f"{body_indent}{line}" for line in edit["append"]]]
        lines[step.end_line : step.end_line] = new
        return "\n".join(lines) + "\n"
    return _set_keyword(
        lines, step.start_line, step.end_line, edit["task"], edit["param"], edit["value"], comment
    )


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _set_keyword(lines: list[str], first: int, last: int, task: str, param: str, value, comment: str) -> str:
    """Set `param = value` in the first `task(...)` call between lines first..last (1-based)."""
    block = "\n".join(lines[first - 1 : last]) + "\n"
    tokens = list(tokenize.generate_tokens(io.StringIO(block).readline))
    for i, tok in enumerate(tokens[:-1]):
        if tok.type == tokenize.NAME and tok.string == task and tokens[i + 1].string == "(":
            return _rewrite_call(lines, first, tokens, i + 1, param, value, comment)
    raise EditFailed(f"no {task}(...) call in step lines {first}-{last}")


def _rewrite_call(lines, first, tokens, open_index, param, value, comment) -> str:
    depth, arg_start, existing = 0, None, None
    close = None
    for j in range(open_index, len(tokens)):
        tok = tokens[j]
        if tok.string in "([{":
            depth += 1
        elif tok.string in ")]}":
            depth -= 1
            if depth == 0:
                close = j
                break
        elif depth == 1 and tok.type == tokenize.NAME and tokens[j + 1].string == "=" and tok.string == param:
            arg_start = j
        if depth == 1 and tok.string == "," and arg_start is not None and existing is None:
            existing = (arg_start, j)
    if close is None:
        raise EditFailed("unbalanced call")
    if arg_start is not None and existing is None:
        existing = (arg_start, close)
    call_line = tokens[open_index].start[0] + first - 1
    if existing is not None:
        (row_a, col_a), (row_b, col_b) = tokens[existing[0]].start, tokens[existing[1]].start
        row_a, row_b = row_a + first - 2, row_b + first - 2
        old = lines[row_a][:col_a] + f"{param} = {value!r}" + lines[row_b][col_b:]
        lines[row_a : row_b + 1] = [old]
    else:
        row, col = tokens[close].start
        row += first - 2
        lines[row] = lines[row][:col] + f",\n    {param} = {value!r}" + lines[row][col:]
    indent = _indent_of(lines[call_line - 1])
    lines.insert(call_line - 1, f"{indent}{comment}")
    return "\n".join(lines) + "\n"
