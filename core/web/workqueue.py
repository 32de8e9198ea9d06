"""The home page's work queue: each domain registers providers of items, the home view renders them.

A provider is `provider(user, scope) -> list[QueueItem]`; it decides from the user's
permissions and scope whether it has anything to say, and names the filtered list that
resolves each item. Core knows no domain: domains hand their providers in from their
views' register() (views/<domain>/__init__.py), so the addiction programme adds its own
items without touching this file or the home page.

Counts go through `cached_value`, keyed by the versions of the tables they read
(core/data/counts.py): the home page is every user's first request of the day, and its
dozen counts are recomputed only after a write to one of their tables.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from core.data.counts import COUNT_SECONDS, table_versions
from core.extensions import cache

log = logging.getLogger(__name__)

#: Bootstrap contextual classes an item may take: grey, blue, amber, red.
LEVELS = ("default", "info", "warning", "danger")


@dataclass(frozen=True)
class QueueItem:
    """One line of the queue: what is waiting, how many, where to resolve it, how urgent."""

    label: str
    count: int | None
    url: str | None
    level: str = "info"
    #: A short explanation under the label (a deadline, the longest wait).
    hint: str = ""
    #: Which heading of the home page the item stands under (the provider's programme).
    group: str = ""


Provider = Callable[[object, object], Iterable[QueueItem]]
_providers: list[tuple[int, str, Provider]] = []


def register(provider: Provider, order: int = 50) -> None:
    """Add a provider (idempotent per function: the app factory runs once per test app)."""
    name = f"{provider.__module__}.{provider.__qualname__}"
    if any(known == name for _, known, _ in _providers):
        return
    _providers.append((order, name, provider))
    _providers.sort(key=lambda entry: (entry[0], entry[1]))


def providers() -> list[Provider]:
    """The registered providers, in their order."""
    return [provider for _, _, provider in _providers]


def items_for(user, scope) -> list[QueueItem]:
    """Every provider's items for this user and scope, in order."""
    items: list[QueueItem] = []
    for provider in providers():
        items.extend(provider(user, scope) or ())
    return items


def cached_value(identity: str, tables: Iterable[str], compute: Callable[[], object]):
    """compute(), cached under `identity` and the write versions of `tables`.

    `identity` must name everything the value depends on besides the tables (the scope,
    the day): a facility's count is never another facility's.
    """
    names = sorted(set(tables))
    tokens = ",".join(f"{n}={t}" for n, t in zip(names, table_versions(names), strict=True))
    key = "workqueue:" + hashlib.sha1(f"{identity}|{tokens}".encode()).hexdigest()
    value = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, timeout=COUNT_SECONDS)
    return value


def scope_key(scope) -> str:
    """A stable text naming a scope, for cache identities."""
    return (
        f"{scope.kind}:{sorted(scope.county_ids)}:{sorted(scope.institution_ids)}"
    )
