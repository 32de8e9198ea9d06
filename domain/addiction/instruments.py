"""Questionnaires an institution designs itself (A4): create one, edit its draft, publish the
draft (its changes against the previous published version classified and kept), and share it.

- A custom instrument belongs to one of the user's institutions: the only one, or the one a
  member of several picks (an institution outside the user's scope is refused as not
  found, nothing stored); its code is unique per institution, also when two saves race
  (the unique index's IntegrityError becomes the same "code already used" message).
- A published version never changes: the first edit after publishing starts a new draft,
  copied from the latest published version, so every answer stays pinned to what was asked.
- Publishing runs classify_changes (domain/addiction/formats/columns.py) against the previous
  published version and stores the list on the version, with the spec fingerprint.
- Sharing: the owning institution chooses private or county; only the ministry (national
  scope) shares nationally.
- Every lookup goes through ScopedInterface: another institution's instrument by id is a 404;
  one shared with the user is read-only (403 with a message).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import asdict

from flask_babel import gettext
from sqlalchemy.exc import IntegrityError

from core.commands import Command
from core.data.datamodel import ScopedInterface
from core.data.scope import current_scope
from core.dates import utcnow
from core.errors import UserError
from core.extensions import db
from domain.addiction.formats.columns import Change, classify_changes
from domain.addiction.scoring import check_definition, spec_fingerprint
from models.addiction.instrument import (
    Instrument,
    InstrumentSharing,
    InstrumentVersion,
    VersionStatus,
)

CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,39}$")
MAX_TITLE = 200
#: A draft's stored JSON at most this large (500 items of modest text fit in well under it).
MAX_DEFINITION_BYTES = 1_000_000
#: The ready scale a designer offers: 5-point agreement, 1–5.
AGREE5 = "agree5"
AGREE5_OPTIONS = [
    {"code": "1", "display": "非常不同意", "weight": 1},
    {"code": "2", "display": "不同意", "weight": 2},
    {"code": "3", "display": "普通", "weight": 3},
    {"code": "4", "display": "同意", "weight": 4},
    {"code": "5", "display": "非常同意", "weight": 5},
]


class DesignRefused(UserError):
    """A questionnaire change the rules refuse; str() is the zh_TW message."""


def formula_like(text: str) -> bool:
    """Text a spreadsheet would run as a formula: refused, since XLSForm export and import
    carry every text into a cell (and the importer refuses such cells)."""
    return str(text).lstrip().startswith(("=", "+", "@"))


def _not_found() -> DesignRefused:
    return DesignRefused(
        gettext("The selected %(what)s does not exist or is outside your data scope.", what=gettext("Questionnaire")),
        status=404,
    )


def instrument_in_scope(pk) -> Instrument | None:
    """The instrument by id if the user's scope reaches it (built-in, own, or shared)."""
    from core.web.views import valid_pk

    return ScopedInterface(Instrument).get(int(pk)) if valid_pk(pk) else None


def owns(instrument: Instrument) -> bool:
    """Whether the current user's institution owns the (custom) instrument."""
    scope = current_scope()
    return instrument.institution_id is not None and instrument.institution_id in scope.institution_ids


def editable(pk) -> Instrument:
    """The user's own custom instrument by id; 404 when out of scope, 403 when only shared."""
    instrument = instrument_in_scope(pk)
    if instrument is None:
        raise _not_found()
    if not owns(instrument):
        raise DesignRefused(
            gettext("%(title)s belongs to another institution or is built in: it can be read, not changed.",
                    title=instrument.title), status=403)  # fmt: skip
    return instrument


def draft_of(instrument: Instrument) -> InstrumentVersion | None:
    """The instrument's draft version, if it has one (always its newest)."""
    latest = instrument.versions[-1] if instrument.versions else None
    return latest if latest is not None and latest.status == VersionStatus.DRAFT.value else None


def last_published(instrument: Instrument) -> InstrumentVersion | None:
    """The newest published version."""
    published = [v for v in instrument.versions if v.status == VersionStatus.PUBLISHED.value]
    return published[-1] if published else None


def working_definition(instrument: Instrument) -> dict:
    """What the designer edits: the draft, else a copy of the latest published version."""
    draft = draft_of(instrument)
    if draft is not None:
        return copy.deepcopy(draft.definition)
    published = last_published(instrument)
    return copy.deepcopy(published.definition) if published else {"items": []}


def check_draft(definition) -> dict:
    """A draft may be empty while it is being built; otherwise the engine's check applies."""
    if isinstance(definition, dict) and definition.get("items") == [] and not (definition.get("scoring") or {}):
        return definition
    check_definition(definition)
    size = len(json.dumps(definition, ensure_ascii=False, default=str).encode())
    if size > MAX_DEFINITION_BYTES:
        raise DesignRefused(gettext("The questionnaire is too large to be saved."))
    return definition


def _code_taken(code: str) -> DesignRefused:
    return DesignRefused(gettext("Your institution already has a questionnaire with the code %(code)s.", code=code))


def _unique_violation(exc: IntegrityError, constraint: str, columns: str) -> bool:
    """Whether an IntegrityError is this unique constraint's (PostgreSQL names the
    constraint, SQLite the columns)."""
    text = str(exc.orig)
    return constraint in text or columns in text


def owner_choices() -> list[int]:
    """The institutions the current user may make a questionnaire for (their own)."""
    return sorted(current_scope().institution_ids)


class CreateInstrument(Command):
    """A new questionnaire of one of the user's institutions with an empty (or imported) draft v1."""

    def __init__(self, code, title, definition: dict | None = None, institution_id=None):
        self.code = str(code or "").strip()
        self.title = str(title or "").strip()
        self.definition = definition if definition is not None else {"items": []}
        self.chosen = institution_id

    def validate(self) -> None:
        from core.web.views import valid_pk

        mine = owner_choices()
        if not mine:
            raise DesignRefused(gettext("Only an institution's staff design questionnaires."), status=403)
        if self.chosen in (None, ""):
            if len(mine) > 1:
                raise DesignRefused(gettext("Choose which of your institutions owns the questionnaire."))
            self.institution_id = mine[0]
        elif not valid_pk(self.chosen) or int(self.chosen) not in mine:
            # Another institution named in the form, URL or API: as if it did not exist.
            raise DesignRefused(
                gettext("The selected %(what)s does not exist or is outside your data scope.",
                        what=gettext("Treatment institution")), status=404)  # fmt: skip
        else:
            self.institution_id = int(self.chosen)
        if not CODE.match(self.code):
            raise DesignRefused(gettext(
                "The code is 1–40 letters, digits, _ . or - and starts with a letter."))  # fmt: skip
        if not self.title or len(self.title) > MAX_TITLE:
            raise DesignRefused(gettext("The title is 1–%(n)d characters.", n=MAX_TITLE))
        if formula_like(self.title):
            raise DesignRefused(gettext("The title cannot start with %(signs)s.", signs="=、+、@"))
        if self.code_in_use():
            raise _code_taken(self.code)
        check_draft(self.definition)

    def code_in_use(self) -> bool:
        """The friendly check before the insert; the unique index decides when saves race."""
        return db.session.query(Instrument.id).filter(
            Instrument.institution_id == self.institution_id, Instrument.code == self.code).first() is not None  # fmt: skip

    def execute(self) -> Instrument:
        instrument = Instrument(institution_id=self.institution_id, code=self.code, title=self.title,
                                sharing=InstrumentSharing.PRIVATE.value, enabled=True, free_use=True)  # fmt: skip
        db.session.add(instrument)
        try:
            db.session.flush()
        except IntegrityError as exc:  # another save took the code between the check and the insert
            if _unique_violation(exc, "uq_instrument_code", "instrument.institution_id, instrument.code"):
                raise _code_taken(self.code) from None
            raise
        db.session.add(InstrumentVersion(instrument=instrument, number=1, status=VersionStatus.DRAFT.value,
                                         definition=self.definition, spec=spec_fingerprint(self.definition)))
        db.session.flush()
        ScopedInterface(Instrument).enforce_scope([instrument])
        return instrument


class SaveDraft(Command):
    """The draft's new definition; with no draft (all published) a new draft version is made,
    so a published version is never edited."""

    def __init__(self, instrument_id, definition):
        self.instrument_id, self.definition = instrument_id, definition

    def validate(self) -> None:
        self.instrument = editable(self.instrument_id)
        check_draft(self.definition)

    def execute(self) -> InstrumentVersion:
        instrument = self.instrument
        draft = draft_of(instrument)
        definition = copy.deepcopy(self.definition)
        if draft is None:
            latest = instrument.versions[-1] if instrument.versions else None
            draft = InstrumentVersion(instrument=instrument, number=(latest.number + 1) if latest else 1,
                                      status=VersionStatus.DRAFT.value)  # fmt: skip
            db.session.add(draft)
        draft.definition = definition  # a new dict: the JSON column sees the change
        draft.spec = spec_fingerprint(definition)
        try:
            db.session.flush()
        except IntegrityError as exc:  # two first edits after publishing, both making the next draft
            if _unique_violation(exc, "uq_instrument_version", "instrument_version.instrument_id"):
                raise DesignRefused(gettext(
                    "Someone else changed this questionnaire at the same moment: open it again and repeat "
                    "your change."), status=409) from None  # fmt: skip
            raise
        return draft


def pending_changes(instrument: Instrument) -> list[Change]:
    """What publishing the draft would change against the latest published version."""
    draft = draft_of(instrument)
    previous = last_published(instrument)
    if draft is None or previous is None:
        return []
    return classify_changes(previous.definition, draft.definition)


class PublishDraft(Command):
    """The draft becomes an immutable published version, its classified changes kept on it."""

    def __init__(self, instrument_id):
        self.instrument_id = instrument_id

    def validate(self) -> None:
        self.instrument = editable(self.instrument_id)
        self.draft = draft_of(self.instrument)
        if self.draft is None:
            raise DesignRefused(gettext("There is no draft to publish: edit the questionnaire first."))
        if not self.draft.definition.get("items"):
            raise DesignRefused(gettext("A questionnaire needs at least one item."))
        check_definition(self.draft.definition)
        self.changes = pending_changes(self.instrument)

    def execute(self) -> InstrumentVersion:
        draft = self.draft
        draft.changes = [asdict(c) for c in self.changes]
        draft.spec = spec_fingerprint(draft.definition)
        draft.status = VersionStatus.PUBLISHED.value
        draft.published_at = utcnow()
        db.session.flush()
        return draft


class ShareInstrument(Command):
    """Who else may read and use a custom instrument: the owner sets private or county, the
    ministry may also share nationally."""

    def __init__(self, instrument_id, sharing):
        self.instrument_id, self.sharing = instrument_id, str(sharing or "")

    def validate(self) -> None:
        instrument = instrument_in_scope(self.instrument_id)
        if instrument is None:
            raise _not_found()
        if instrument.institution_id is None:
            raise DesignRefused(gettext("A built-in instrument is available to everyone already."))
        if self.sharing not in {s.value for s in InstrumentSharing}:
            raise DesignRefused(gettext("Choose who the questionnaire is shared with."))
        national = current_scope().national
        if not national and not owns(instrument):
            raise DesignRefused(
                gettext("%(title)s belongs to another institution or is built in: it can be read, not changed.",
                        title=instrument.title), status=403)  # fmt: skip
        # Keeping the ministry's national sharing unchanged is no new national share.
        if self.sharing == InstrumentSharing.NATIONAL.value and not national and instrument.sharing != self.sharing:
            raise DesignRefused(gettext("Only the ministry shares a questionnaire nationally."))
        self.instrument = instrument

    def execute(self) -> Instrument:
        self.instrument.sharing = self.sharing
        db.session.flush()
        return self.instrument
