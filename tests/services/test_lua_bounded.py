"""The invariant of docs/scale.md: no Lua script in the project is
unbounded in the data it walks. A script runs alone in Redis: while it runs,
every other client waits (then gets BUSY). One that walks a whole index
grows with the data, and a user with 100k bookings took the app down
(issue 25, item 1).

Every Lua script of the project (every module-level string in services/
that calls redis.call; a script anywhere else in the code fails the test)
is checked statically:

- no `while`, `repeat`, `goto`, `function`, `pairs(`: the only loops are
  `for` loops the checker can bound;
- every Redis command is a literal name from BOUNDED_COMMANDS (cost set by
  its own arguments), or a range read from RANGE_COMMANDS with
  `'LIMIT', 0, <bounded>`; never HGETALL, SMEMBERS, KEYS, SCAN, DEL (O(size)
  on a big hash or set: UNLINK frees it off the main thread)...;
- a numeric `for` runs to a bounded expression; a `for ... in ipairs(x)`
  walks KEYS, ARGV, or a list read with such a LIMIT;
- bounded: numbers, `#KEYS`, `#ARGV` (what the caller sent, not what is
  stored), `#list` of a bounded list, `math.min(..., <bounded>)`, a table
  that starts empty (it only grows inside loops that are themselves
  bounded), and names whose every assignment is bounded. `tonumber(ARGV[i])`
  alone is not: a hard cap in the script is (`math.min(tonumber(ARGV[4]), 2000)`).

The self-test feeds it the unbounded scripts this project had or could
grow (the old _FORGET, a while loop, HGETALL, a for bounded only by an
argument) and requires each to be refused: the check can fail. The
dynamic side, a 100k-booking deletion with Redis' SLOWLOG watching, is
tests/services/test_deletion_scale.py.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import services

ROOT = Path(__file__).resolve().parents[2]

BOUNDED_COMMANDS = {
    "GET", "SET", "MGET", "EXISTS", "UNLINK", "INCR", "INCRBY", "DECRBY", "EXPIRE", "TIME",
    "HGET", "HSET", "HDEL", "SADD", "SISMEMBER", "SREM", "ZADD", "ZREM", "ZSCORE", "ZCARD",
}
RANGE_COMMANDS = {"ZRANGE", "ZRANGEBYSCORE", "ZREVRANGE", "ZREVRANGEBYSCORE"}
FORBIDDEN = re.compile(r"\b(while|repeat|goto|function)\b|\bpairs\s*\(")
CALL = re.compile(r"redis\.p?call\s*\(")
NAME = re.compile(r"#?[A-Za-z_][\w.]*")


def _strip_comments(source: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in source.splitlines())


def _outside_strings(text: str, start: int = 0):  # type: ignore[no-untyped-def]
    """(index, character) of `text` from `start`, skipping '...' and "..." literals."""
    quote = None
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = None
            continue
        if ch in "'\"":
            quote = ch
            continue
        yield i, ch


def _closing(text: str, open_at: int) -> int:
    """Index of the parenthesis closing the one at `open_at`."""
    depth = 0
    for i, ch in _outside_strings(text, open_at):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError("unbalanced parentheses")


def _split_top(text: str) -> list[str]:
    """Split at commas outside parentheses, braces and strings."""
    parts, depth, start = [], 0, 0
    for i, ch in _outside_strings(text):
        if ch in "({":
            depth += 1
        elif ch in ")}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


class Checker:
    def __init__(self, source: str) -> None:
        self.src = _strip_comments(source)
        self.problems: list[str] = []
        self.calls = [(m.start(), self.src[m.end() : _closing(self.src, m.end() - 1)]) for m in CALL.finditer(self.src)]
        # name -> right-hand sides of its assignments (`local x = ...`, `x = ...`)
        self.assigned: dict[str, list[str]] = {}
        for m in re.finditer(r"(?:\blocal\s+)?\b([A-Za-z_]\w*)\s*=(?!=)\s*([^\n]+)", self.src):
            if re.search(r"\bfor\s+$", self.src[: m.start()].rsplit("\n", 1)[-1]):
                continue  # the `i = a, b` of a numeric for
            self.assigned.setdefault(m.group(1), []).append(m.group(2).strip())
        self.bounded: set[str] = {"KEYS", "ARGV"}
        changed = True
        while changed:  # the names bounded given the others (a fixed point)
            changed = False
            for name, values in self.assigned.items():
                if name not in self.bounded and all(self._value_bounded(v, name) for v in values):
                    self.bounded.add(name)
                    changed = True

    def _range_call_bounded(self, args: str) -> bool:
        parts = _split_top(args)
        upper = [p.strip("'\"").upper() for p in parts]
        if "LIMIT" not in upper:
            return False
        at = upper.index("LIMIT")
        return len(parts) > at + 2 and self.expr_bounded(parts[at + 2])

    def _value_bounded(self, value: str, name: str) -> bool:
        value = value.rstrip()
        if value == "{}":
            return True
        m = CALL.match(value)
        if m:
            args = value[m.end() : _closing(value, m.end() - 1)]
            command = _split_top(args)[0].strip("'\"").upper()
            return command in RANGE_COMMANDS and self._range_call_bounded(args)
        return self.expr_bounded(value, also=name)

    def expr_bounded(self, expr: str, also: str | None = None) -> bool:
        expr = expr.strip()
        if expr.startswith("math.min(") and expr.endswith(")") and _closing(expr, 8) == len(expr) - 1:
            return any(self.expr_bounded(a, also) for a in _split_top(expr[9:-1]))
        if re.search(r"['\"\[\]{]", expr):
            return False  # string literals, indexing (ARGV[1]) and tables are not counts
        for token in NAME.findall(expr):
            name = token.lstrip("#")
            if name == also or name in self.bounded:
                continue
            return False
        return bool(re.fullmatch(r"[\w\s#+\-*/().%]*", expr))

    def check(self) -> list[str]:
        src = self.src
        for m in FORBIDDEN.finditer(src):
            self.problems.append(f"`{m.group(0)}` (only for loops over bounded ranges)")
        for _, args in self.calls:
            command = _split_top(args)[0]
            if not re.fullmatch(r"'[A-Za-z]+'|\"[A-Za-z]+\"", command):
                self.problems.append(f"redis.call with a computed command name: {command}")
                continue
            name = command.strip("'\"").upper()
            if name in RANGE_COMMANDS:
                if not self._range_call_bounded(args):
                    self.problems.append(f"{name} without LIMIT 0 <bounded count>: {args}")
            elif name not in BOUNDED_COMMANDS:
                self.problems.append(f"{name} is not known to be bounded by its arguments")
        for m in re.finditer(r"\bfor\s+(.*?)\s+do\b", src, re.S):
            head = m.group(1)
            numeric = re.fullmatch(r"\w+\s*=\s*(.+)", head, re.S)
            if numeric:
                parts = _split_top(numeric.group(1))
                if len(parts) < 2 or not self.expr_bounded(parts[1]):
                    self.problems.append(f"for loop not bounded: for {head}")
                continue
            generic = re.fullmatch(r"[\w\s,]+\bin\s+ipairs\s*\(\s*(\w+)\s*\)", head, re.S)
            if not generic or generic.group(1) not in self.bounded:
                self.problems.append(f"for loop over something not bounded: for {head}")
        return self.problems


def project_scripts() -> dict[str, str]:
    """Every module-level string in services/ that calls Redis: name -> source."""
    scripts: dict[str, str] = {}
    for info in pkgutil.walk_packages(services.__path__, "services."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, str) and CALL.search(value):
                scripts[f"{info.name}.{name}"] = value
    return scripts


SCRIPTS = project_scripts()


def test_the_project_has_the_scripts_we_expect() -> None:
    """The collection works: the scripts the services register are all here."""
    names = {n.rsplit(".", 1)[1] for n in SCRIPTS}
    assert {"_FORGET", "_CLAIM", "_CONFIRM", "_PAGE", "_DELETE", "_RESERVE", "_RELEASE_MANY"} <= names
    assert len(SCRIPTS) >= 14


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_every_lua_script_is_bounded_in_the_data_it_walks(name: str) -> None:
    assert Checker(SCRIPTS[name]).check() == []


def test_no_lua_script_lives_outside_services() -> None:
    """A script in bench/, checklist/, sim/ or infra/ would not be checked above."""
    found = []
    for folder in ("bench", "checklist", "sim", "infra"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and CALL.search(node.value):
                    found.append(str(path.relative_to(ROOT)))
    assert found == []


OLD_FORGET = """
redis.call('SADD', KEYS[1], ARGV[1])
local n = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local raw = redis.call('GET', ARGV[3] .. ':' .. id)
end
return n
"""

UNBOUNDED = {
    "the old _FORGET (a whole index)": OLD_FORGET,
    "a list read without LIMIT": "local ids = redis.call('ZRANGE', KEYS[1], 0, -1)\nfor _, id in ipairs(ids) do redis.call('GET', id) end",
    "LIMIT with a count the caller chooses": "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '+inf', 'LIMIT', 0, ARGV[1])",
    "a while loop": "local c = '0'\nwhile true do c = redis.call('GET', KEYS[1]) end",
    "repeat": "repeat local x = redis.call('GET', KEYS[1]) until x",
    "HGETALL": "local all = redis.call('HGETALL', KEYS[1])",
    "SMEMBERS": "local all = redis.call('SMEMBERS', KEYS[1])",
    "KEYS": "local all = redis.call('KEYS', '*')",
    "DEL of a big hash": "redis.call('DEL', KEYS[1])",
    "a for bounded by an argument only": "for i = 1, tonumber(ARGV[1]) do redis.call('INCR', KEYS[1]) end",
    "a for bounded by a stored value": "local n = tonumber(redis.call('GET', KEYS[1]))\nfor i = 1, n do redis.call('INCR', KEYS[2]) end",
    "ipairs over a whole hash": "for _, v in ipairs(redis.call('HVALS', KEYS[1])) do end",
    "pairs over a decoded record": "local doc = cjson.decode(redis.call('GET', KEYS[1]))\nfor k, v in pairs(doc) do end",
    "a computed command": "redis.call(ARGV[1], KEYS[1])",
}


@pytest.mark.parametrize("what", sorted(UNBOUNDED))
def test_the_check_refuses_unbounded_scripts(what: str) -> None:
    assert Checker(UNBOUNDED[what]).check() != []


def test_the_check_accepts_bounded_shapes() -> None:
    ok = """
local batch = math.min(tonumber(ARGV[4]), 2000)
local rows = redis.call('ZRANGE', KEYS[2], '(0', '+inf', 'BYSCORE', 'LIMIT', 0, batch, 'WITHSCORES')
for i = 1, #rows, 2 do redis.call('GET', rows[i]) end
for i = 5, #KEYS do redis.call('UNLINK', KEYS[i]) end
for _, a in ipairs(ARGV) do redis.call('HGET', KEYS[1], a) end
"""
    assert Checker(ok).check() == []


# Python code sends commands too: the same rule for those that read a whole
# key or the whole key space in one command.
WHOLE_KEY_COMMANDS = ("HGETALL", "SMEMBERS", "KEYS", "HKEYS", "HVALS", "LRANGE", "SUNION", "SINTER", "SDIFF")


def test_no_service_sends_a_command_that_reads_a_whole_key() -> None:
    """HSCAN/ZRANGE ... LIMIT steps instead (GET /internal/movies/{id}/reservations
    used HGETALL on a hash that keeps a tombstone per booking ever released)."""
    found = []
    for path in (ROOT / "services").rglob("*.py"):
        text = path.read_text()
        for command in WHOLE_KEY_COMMANDS:
            for m in re.finditer(rf"""["']{command}["']|\.{command.lower()}\(""", text):
                found.append(f"{path.relative_to(ROOT)}: {m.group(0)}")
        for m in re.finditer(r"\.zrange\([^)]*,\s*0,\s*-1\)", text):
            found.append(f"{path.relative_to(ROOT)}: {m.group(0)}")
    assert found == []
