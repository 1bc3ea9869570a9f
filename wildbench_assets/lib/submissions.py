"""Who submitted what, and how often: the submission limit and submitter identity shared by the portal
and the submissions inbox (`submission_scores`). Pure: the inbox's listing is handed in.

A hidden test set answers every submission with a few numbers; each answer leaks a little about the hidden
labels (leaderboard probing), so each submitter gets a few answers per release and day (as on Kaggle and
EvalAI). A submitter is a name: the portal's token for it (`WILDBENCH_PORTAL_TOKENS_FILE`), or the one
line of `<id>.submitter` beside a file dropped into the inbox (absent: `inbox`, one shared submitter).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

SUBMITTER_SUFFIX = ".submitter"  # `<submission id>.submitter`: who sent it (one line)
SUBMISSION_SUFFIXES = (".json", ".csv")
OUTCOMES = {".score.json": "scored", ".error.json": "failed"}
INBOX_SUBMITTER = "inbox"        # files dropped into the inbox without a `.submitter`
OPERATOR = "operator"            # the portal's operator token (`WILDBENCH_PORTAL_TOKEN`)
SUBMITTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
DEFAULT_LIMIT = 3                # scored or pending submissions per submitter, release and window
DEFAULT_WINDOW = timedelta(days=1)


class SubmitterError(ValueError):
    """A submitter name or token file that cannot be used, with the reason."""


def check_submitter(name: str) -> str:
    if not SUBMITTER_NAME.fullmatch(name):
        raise SubmitterError(f"submitter {name[:80]!r}: use 1-64 letters, digits, '.', '_', '@' or '-'")
    return name


def named_submitter(raw: bytes | None) -> str:
    """The submitter of an inbox item from its `<id>.submitter` (None: `inbox`)."""
    if raw is None:
        return INBOX_SUBMITTER
    try:
        return check_submitter(raw.decode("utf-8").strip())
    except UnicodeDecodeError as err:
        raise SubmitterError("the .submitter file is not UTF-8 text") from err


def parse_tokens(text: str) -> dict[str, str]:
    """Submitter tokens from a JSON object `{"name": "token", ...}` (the operator's file)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise SubmitterError(f"the token file is not JSON: {err}") from err
    if not isinstance(doc, dict) or not all(isinstance(v, str) and len(v) >= 16 for v in doc.values()):
        raise SubmitterError('the token file must be {"submitter": "token of at least 16 characters", ...}')
    if len(set(doc.values())) != len(doc):
        raise SubmitterError("two submitters share a token in the token file")
    reserved = {INBOX_SUBMITTER, OPERATOR} & set(doc)
    if reserved:
        raise SubmitterError(f"the token file names reserved submitters {sorted(reserved)}")
    return {check_submitter(name): token for name, token in doc.items()}


@dataclass(frozen=True)
class Submission:
    """One submission seen in the inbox: who, on which release, when it arrived, and how far it got."""

    id: str
    submitter: str
    release: str | None
    arrived: datetime
    state: str  # "pending" | "scored" | "failed" (an outcome at least as new as the file)
    scored_at: datetime | None = None  # when a `<id>.score.json` (or a counted error) was written, if ever

    @property
    def reuses_a_scored_id(self) -> bool:
        """New content under an id that was already scored: ids are single-use, else one id could be
        scored again and again while counting once."""
        return self.scored_at is not None and self.scored_at < self.arrived


@dataclass(frozen=True)
class Limit:
    """At most `per_window` submissions per submitter and release within `window` (0: none at all)."""

    per_window: int = DEFAULT_LIMIT
    window: timedelta = DEFAULT_WINDOW

    def refusal(self, history: Iterable[Submission], submission_id: str, submitter: str, release: str | None,
                arrived: datetime) -> str | None:
        """Why `submission_id` (arrived at `arrived`) is refused, or None. It counts the same submitter's
        other submissions on the same release that arrived earlier in the window and were ever scored or
        are still pending, or failed once the hidden truth was read (`counted`); one refused before that
        (a malformed file, ids not of the public listing) learned nothing, so it costs nothing."""
        history = list(history)
        if any(s.id == submission_id and s.reuses_a_scored_id for s in history):
            return (f"submission {submission_id} was already scored (or failed against the hidden truth): send new "
                    "predictions under a new id")
        counted = sorted(s.arrived for s in history
                         if s.id != submission_id and s.submitter == submitter and s.release == release
                         and (s.state == "pending" or s.scored_at is not None)
                         and arrived - self.window <= s.arrived <= arrived)
        if len(counted) < self.per_window:
            return None
        if not self.per_window:
            return "submissions are closed (the operator set the submission limit to 0)"
        hours = self.window.total_seconds() / 3600
        return (f"submission limit reached: {submitter!r} already has {len(counted)} submissions on release "
                f"{release} in the last {hours:g} h (at most {self.per_window}); the next is accepted after "
                f"{(counted[-self.per_window] + self.window).isoformat(timespec='seconds')}")


def history(listing: Iterable[tuple[str, datetime]], read, default_release: str | None,
            since: datetime) -> list[Submission]:
    """The inbox's submissions that arrived at or after `since`, from its listing (name, last modified)
    and `read(name) -> bytes | None`. Pending items that name no release count for `default_release`."""
    names = dict(listing)
    found = []
    for name, arrived in names.items():
        suffix = next((s for s in SUBMISSION_SUFFIXES if name.endswith(s)), None)
        if suffix is None or name.endswith((*OUTCOMES, ".progress.json")) or arrived < since:
            continue
        item = name[: -len(suffix)]
        state = next((st for sfx, st in OUTCOMES.items() if f"{item}{sfx}" in names
                      and names[f"{item}{sfx}"] >= arrived), "pending")
        try:
            submitter = named_submitter(read(f"{item}{SUBMITTER_SUFFIX}"))
        except SubmitterError:
            continue  # refused when it is scored; counts for no one
        named = read(f"{item}.release")
        release = named.decode("utf-8", "replace").strip() if named is not None else None
        if release is None and state == "scored":
            release = _scored_release(read(f"{item}.score.json"))
        scored_at = names.get(f"{item}.score.json")
        if scored_at is None and _counted(read(f"{item}.error.json") if f"{item}.error.json" in names else None):
            scored_at = names[f"{item}.error.json"]  # it failed after reaching the hidden truth: charged as a score
        found.append(Submission(item, submitter, release or default_release, arrived, state, scored_at))
    return found


def _counted(raw: bytes | None) -> bool:
    """Whether an `<id>.error.json` says the failure reached the hidden truth (`counted`)."""
    try:
        return bool(raw) and json.loads(raw).get("counted") is True
    except (ValueError, AttributeError):
        return False


def _scored_release(raw: bytes | None) -> str | None:
    try:
        return json.loads(raw).get("release") if raw else None
    except (ValueError, AttributeError):
        return None
