"""Version tokens in the shared cache, and values memoised for one request.

A cached value that must not outlive a change is stored under a key salted with a version
token: the table versions behind list counts (core/data/counts.py), the security version
behind permission sets and the navbar (core/security/manager.py), the statistics tokens
(domain/cessation/statistics.py). A token lives in the shared cache (Redis with REDIS_URL,
else the file cache every worker reads), so a bump in one process is seen by every other.

A bump writes a fresh random number rather than adding one: two racing bumps both leave a
value never used before, and a token the cache lost (the file cache prunes a third of its
files when full, Redis may evict) comes back as a fresh random one too, never as an older
value under which stale entries may still be stored. Integers, so that Redis INCR of a
process still running the previous code keeps working during a deploy.
"""

from __future__ import annotations

import random
import threading

from flask import g, has_app_context, has_request_context

from core.extensions import cache

_MEMO = "_request_memo"
_missed: set[str] = set()  # bumps asked for outside an app context, applied on the next read
_missed_lock = threading.Lock()


def request_memo(key, factory):
    """factory(), computed once per request under `key` (every call outside a request)."""
    if not has_request_context():
        return factory()
    memo = _memo()
    if key in memo:
        return memo[key]
    value = memo[key] = factory()
    return value


def _forget(key) -> None:
    """Drop `key` from the current request's memo (nothing outside a request)."""
    if has_request_context():
        memo = g.get(_MEMO)
        if memo:
            memo.pop(key, None)


def _memo() -> dict:
    """The current request's memo dict, created on first use."""
    # One dict on g for every memo, so that a test can start a request afresh by popping it.
    memo = g.get(_MEMO)
    if memo is None:
        memo = {}
        setattr(g, _MEMO, memo)
    return memo


def _fresh() -> int:
    """A token no bump has used before (with overwhelming probability), never 0 or None."""
    return random.getrandbits(62) + 1


def versions(*names: str) -> tuple[int, ...]:
    """The current tokens of `names` (cache keys), read from the shared cache once per
    request, in one round trip for all the names not yet read in it."""
    if _missed:
        _apply_missed()
    memo = _memo() if has_request_context() else None
    if memo is not None:
        found = [memo.get(("version", name)) for name in names]
        if None not in found:
            return tuple(found)
        wanted = [name for name, token in zip(names, found, strict=True) if token is None]
    else:
        wanted = list(names)
    read = dict(zip(wanted, cache.get_many(*wanted), strict=True))
    lost = {name: _fresh() for name, token in read.items() if token is None}
    if lost:
        cache.set_many(lost, timeout=0)
        read.update(lost)
    if memo is not None:
        for name, token in read.items():
            memo[("version", name)] = token
        return tuple(memo[("version", name)] for name in names)
    return tuple(read[name] for name in names)


def version(name: str) -> int:
    """The current token of one name (see versions)."""
    if not _missed and has_request_context():
        # The hot path (a permission check reads the security token): the memo alone.
        token = (g.get(_MEMO) or {}).get(("version", name))
        if token is not None:
            return token
    return versions(name)[0]


def bump(*names: str) -> None:
    """Give `names` fresh tokens, in every process sharing the cache: every value stored
    under their previous tokens is unreachable from now on."""
    if not names:
        return
    if not has_app_context():
        # No cache to reach (a script on a bare engine): this process bumps on its next read.
        with _missed_lock:
            _missed.update(names)
        return
    cache.set_many({name: _fresh() for name in names}, timeout=0)
    for name in names:
        _forget(("version", name))


def _apply_missed() -> None:
    """Carry out the bumps asked for while no cache was reachable."""
    if not has_app_context():
        return
    with _missed_lock:
        names = sorted(_missed)
        _missed.clear()
    bump(*names)
