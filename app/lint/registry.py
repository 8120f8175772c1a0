"""The lint registry: one function per check, each registered under a fixed code.

Design concession: a check is a plain function `(ctx) -> Iterable[Finding]` decorated with
`@check(code, severity, summary, scope=...)`; the registry is a module-level dict filled at import
time, so the set of codes is fixed by the modules imported in `app.lint.__init__`.

Scopes say what a check needs:
- "tokens": only ids, trained flags and roles (works on renderings and pre-tokenized rows);
- "rendering": a Rendering with spans and text;
- "deep": re-renders the conversation (prefix stability, train vs inference): skipped when a dataset
  is linted row by row and run on probe rows instead;
- "tokenized": only pre-tokenized dataset rows (input_ids/labels given by the user);
- "model": per-token scores of a causal LM (`ctx.model`): run only when a model scored the row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from app.chat.tokens import Finding, Severity

Scope = Literal["tokens", "rendering", "deep", "tokenized", "model", "preference"]
CheckFunc = Callable[[Any], Iterable[Finding]]


@dataclass(frozen=True)
class Check:
    """A registered check: its code, default severity, one-line summary and function."""

    code: str
    severity: Severity
    summary: str
    scope: Scope
    func: CheckFunc
    # A cheap question about the row (shared by several checks, asked once per row): False
    # means the check finds nothing there, so it is not run. The check's own guard says the
    # same; this only saves the call on rows that hold nothing of the kind (no tool calls...).
    when: Callable[[Any], bool] | None = None


CHECKS: dict[str, Check] = {}


def check(
    code: str,
    severity: Severity,
    summary: str,
    *,
    scope: Scope,
    when: Callable[[Any], bool] | None = None,
) -> Callable[[CheckFunc], CheckFunc]:
    """Register `func` as the check for `code` (`when`: see `Check.when`).

    Example: @check("no-trained-tokens", "error", "Nothing is trained.", scope="tokens")
    """

    def register(func: CheckFunc) -> CheckFunc:
        if code in CHECKS:
            raise ValueError(f"lint code {code!r} registered twice")
        CHECKS[code] = Check(code, severity, summary, scope, func, when)
        return func

    return register


def checks_for(*scopes: Scope) -> tuple[Check, ...]:
    """The registered checks of the given scopes, in registration order."""
    key = (len(CHECKS), scopes)
    if key not in _BY_SCOPES:  # asked once per dataset row: worth remembering
        _BY_SCOPES[key] = tuple(c for c in CHECKS.values() if c.scope in scopes)
    return _BY_SCOPES[key]


_BY_SCOPES: dict[tuple[int, tuple[Scope, ...]], tuple[Check, ...]] = {}


def codes() -> list[str]:
    return list(CHECKS)
