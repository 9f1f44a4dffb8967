"""Check results, their table (Korean) and their JSON, shared by doctor and verify.

Every check gives one `Result`: a status (pass, fail, skip), the evidence it
saw (`detail`), and for a failure the exact commands that fix it (`fix`).
Doctor prints ✓ / ✗ / –, verify PASS / FAIL / SKIP. The exit code is 1 when
a blocking check failed (doctor) or any check failed (verify), else 0.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import asdict, dataclass, field

PASS, FAIL, SKIP = "pass", "fail", "skip"
STATUSES = (PASS, FAIL, SKIP)
DOCTOR_MARKS = {PASS: "✓", FAIL: "✗", SKIP: "–"}
VERIFY_MARKS = {PASS: "PASS", FAIL: "FAIL", SKIP: "SKIP"}


@dataclass
class Result:
    key: str  # stable identifier for --json and tests, e.g. "nodes.ctx1"
    title: str  # what was checked (Korean)
    status: str
    detail: str  # the evidence (Korean, with names and values as seen)
    fix: list[str] = field(default_factory=list)  # commands that fix a failure
    blocking: bool = True  # doctor: a failure here stops `pulumi up` from working

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")


def passed(key: str, title: str, detail: str, **kw: object) -> Result:
    return Result(key, title, PASS, detail, **kw)


def failed(key: str, title: str, detail: str, fix: list[str] | str = (), **kw: object) -> Result:
    return Result(key, title, FAIL, detail, [fix] if isinstance(fix, str) else list(fix), **kw)


def skipped(key: str, title: str, detail: str, **kw: object) -> Result:
    return Result(key, title, SKIP, detail, **kw)


@dataclass
class Report:
    command: str  # "doctor" or "verify"
    results: list[Result] = field(default_factory=list)
    context: dict[str, object] = field(default_factory=dict)  # what the run looked at (kubeconfig, domain...)

    def add(self, *results: Result) -> None:
        self.results.extend(results)

    def get(self, key: str) -> Result:
        found = [r for r in self.results if r.key == key]
        if len(found) != 1:
            raise KeyError(f"{key}: {len(found)} results (keys: {[r.key for r in self.results]})")
        return found[0]

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for r in self.results if r.status == s) for s in STATUSES}

    @property
    def blocking_failures(self) -> list[Result]:
        return [r for r in self.results if r.status == FAIL and r.blocking]

    @property
    def exit_code(self) -> int:
        if self.command == "doctor":
            return 1 if self.blocking_failures else 0
        return 1 if any(r.status == FAIL for r in self.results) else 0

    def as_data(self) -> dict[str, object]:
        return {"command": self.command, "ok": self.exit_code == 0, "exitCode": self.exit_code,
                "counts": self.counts(), "context": self.context, "results": [asdict(r) for r in self.results]}

    def to_json(self) -> str:
        return json.dumps(self.as_data(), ensure_ascii=False, indent=2)

    def render(self) -> str:
        marks = DOCTOR_MARKS if self.command == "doctor" else VERIFY_MARKS
        mark_width = max([width(m) for m in marks.values()] + [width('상태')])
        title_width = min(46, max((width(r.title) for r in self.results), default=0))
        lines = [f"theater {self.command}"] + [f"  {k}: {v}" for k, v in self.context.items()] + [""]
        lines.append(f"{pad('상태', mark_width)}  {pad('점검', title_width)}  결과")
        lines.append(f"{'-' * mark_width}  {'-' * title_width}  {'-' * 40}")
        for r in self.results:
            note = "" if r.blocking or r.status != FAIL else " (경고)"
            lines.append(f"{pad(marks[r.status], mark_width)}  {pad(r.title, title_width)}  {r.detail}{note}")
            for command in r.fix:
                indent = " " * (mark_width + 2)
                for i, line in enumerate(command.splitlines()):
                    lines.append(f"{indent}{'  고치기: ' if i == 0 else '           '}{line}")
        c = self.counts()
        lines.append("")
        if self.command == "doctor":
            verdict = ("배포해도 됩니다" if not self.blocking_failures
                       else f"막는 문제 {len(self.blocking_failures)}개: 위의 '고치기' 명령을 실행한 뒤 다시 확인하세요")
            lines.append(f"✓ {c[PASS]}  ✗ {c[FAIL]}  – {c[SKIP]}  → {verdict}")
        else:
            verdict = "점검표를 모두 통과했습니다" if self.exit_code == 0 else "실패한 항목이 있습니다"
            lines.append(f"PASS {c[PASS]}  FAIL {c[FAIL]}  SKIP {c[SKIP]}  → {verdict}")
        return "\n".join(lines)


def width(text: str) -> int:
    """Terminal columns of text: Hangul and other wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(text: str, columns: int) -> str:
    return text + " " * max(0, columns - width(text))
