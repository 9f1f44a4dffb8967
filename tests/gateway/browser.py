"""What every browser test needs: Debian's Chromium through Playwright (never
a downloaded browser), the two viewports the page is checked at, and the
checks a newcomer's eye makes: the page fits the screen, Korean words are
not cut in half, messages are in Korean, the console stays clean."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}
# The API paths whose 4xx answers a test provokes on purpose. Chromium logs
# every such answer as "Failed to load resource"; nothing else may be logged.
API_PREFIXES = ("/users", "/movies", "/bookings")


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium); .ci/run does this"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class Console:
    """Console errors and failed loads seen by one page."""

    errors: list[str] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)  # (status, path) of answers >= 400

    def unexpected(self) -> list[str]:
        """Errors other than the logged 4xx answers of API calls."""
        api_failures = [p for s, p in self.failed if s < 500 and p.startswith(API_PREFIXES)]
        other = [f"{s} {p}" for s, p in self.failed if not (s < 500 and p.startswith(API_PREFIXES))]
        logged = [e for e in self.errors if e.startswith("Failed to load resource")]
        rest = [e for e in self.errors if not e.startswith("Failed to load resource")]
        return other + rest + logged[len(api_failures) :]


def watch(page: Any) -> Console:
    console = Console()
    page.on("console", lambda m: console.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console.errors.append(f"pageerror: {e}"))
    page.on("response", lambda r: console.failed.append((r.status, urlparse(r.url).path)) if r.status >= 400 else None)
    return console


@contextmanager
def chromium() -> Iterator[Any]:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)  # a loaded 2-core machine
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser: Any, url: str, viewport: dict[str, int]) -> tuple[Any, Console]:
    page = browser.new_page(viewport=viewport, locale="ko-KR")
    console = watch(page)
    page.goto(url)
    return page, console


def horizontal_overflow(page: Any) -> dict[str, Any] | None:
    """None when the page is no wider than the window; else the widths and
    the elements that stick out on the right."""
    return page.evaluate(
        """() => {
          const doc = document.documentElement;
          if (doc.scrollWidth <= doc.clientWidth) return null;
          const wide = [...document.querySelectorAll('body *')]
            .filter((el) => el.getBoundingClientRect().right > doc.clientWidth + 0.5)
            .slice(0, 8).map((el) => `${el.tagName.toLowerCase()}.${el.className}#${el.id}`);
          return { scrollWidth: doc.scrollWidth, clientWidth: doc.clientWidth, wide };
        }"""
    )


def broken_korean_words(page: Any) -> list[str]:
    """Visible Korean words that wrap onto two lines although they would fit
    on one (what `word-break: keep-all` prevents: "영화 예 / 매")."""
    return page.evaluate(
        """() => {
          const out = [];
          const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
          for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            const parent = node.parentElement;
            if (!parent || !parent.getClientRects().length || parent.closest('dialog:not([open]), details:not([open])')) continue;
            const width = parent.getBoundingClientRect().width;
            for (const m of node.data.matchAll(/[^\\s]*[\\uac00-\\ud7a3][^\\s]*/g)) {
              const range = document.createRange();
              range.setStart(node, m.index);
              range.setEnd(node, m.index + m[0].length);
              const tops = new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top)));
              if (tops.size > 1 && range.getBoundingClientRect().width < width) out.push(m[0]);
            }
          }
          return out;
        }"""
    )


# Latin words a Korean message may contain: an example address, units, names of things.
ALLOWED_LATIN = {"name@example.com", "KiB", "HTTP", "Redis"}


def untranslated(text: str) -> list[str]:
    """Latin-script words in a message meant to be Korean."""
    return [w for w in re.findall(r"[A-Za-z][A-Za-z0-9@._-]*", text) if w not in ALLOWED_LATIN]


def shot(page: Any, name: str, full_page: bool = True) -> Path:
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=full_page)
    return path


def midword_breaks(page: Any, selector: str) -> list[str]:
    """Text under `selector` that wraps inside a word: "example.c / om",
    "booking- / service". A line may break only after a space or where the
    page put a <wbr> or an unbreakable piece boundary (between text nodes).
    Each hit reads "<text before the break>|<text after>"."""
    return page.evaluate(
        """(selector) => {
          const out = [];
          for (const root of document.querySelectorAll(selector)) {
            if (!root.getClientRects().length) continue;
            const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
              const text = node.data;
              let lastTop = null;
              for (let i = 0; i < text.length; i++) {
                if (/\\s/.test(text[i])) continue;
                const range = document.createRange();
                range.setStart(node, i);
                range.setEnd(node, i + 1);
                const rect = [...range.getClientRects()].find((r) => r.width > 0);
                if (!rect) continue;
                const top = Math.round(rect.top);
                if (lastTop !== null && top > lastTop + 2 && !/\\s/.test(text[i - 1])) {
                  out.push(`${text.slice(0, i)}|${text.slice(i)}`);
                }
                lastTop = top;
              }
            }
          }
          return out;
        }""",
        selector,
    )


def clipped_placeholders(page: Any, selector: str = "input[placeholder]") -> list[str]:
    """Visible inputs whose placeholder is wider than the room inside them."""
    return page.evaluate(
        """(selector) => {
          const canvas = document.createElement('canvas').getContext('2d');
          const out = [];
          for (const input of document.querySelectorAll(selector)) {
            if (!input.getClientRects().length) continue;
            const cs = getComputedStyle(input);
            canvas.font = `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
            const room = input.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
            const need = canvas.measureText(input.placeholder).width;
            if (need > room + 0.5) out.push(`${input.id}: ${Math.round(need)}px > ${Math.round(room)}px`);
          }
          return out;
        }""",
        selector,
    )
