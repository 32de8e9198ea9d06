"""Informed consent to cross-hospital lookup (治療知情同意書, A12): the blank form as a PDF, the
signed consent as a record, its revocation, and its FHIR R4 Consent.

A12 a consent is the person's, recorded by the staff of an institution where the person has a
    case (never another's); it says whether cross-hospital lookup is allowed and whether lab
    results are included, from the day it was signed until an optional date; the signed scan
    is uploaded and checked by content (the blank form the system printed is refused: it bears
    no signature); a new consent supersedes the current one, which is kept; revocation is one
    action (date and reason) and holds from the next read on, in every process — nothing
    caches a grant (domain/addiction/timeline.py reads the row on every view).

The PDF is drawn with reportlab in the CID font MSung-Light (Traditional Chinese, Adobe-CNS1):
a CID font needs no font file, PDF readers bring the glyphs, and the text stays extractable.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

from flask_babel import force_locale, gettext
from sqlalchemy import select

from core import clock
from core.actor import current_actor
from core.commands import Command
from core.data.datamodel import ScopedInterface
from core.data.scope import ScopeKind, current_scope
from core.dates import in_range, to_roc, utcnow
from core.errors import UserError
from core.extensions import db
from core.files import PDF, FileStore, UploadRefused, sha256
from models.addiction.case import Case, IdKind
from models.addiction.consent import Consent, ConsentStatus

#: Signed scans: a PDF (no scripts, not encrypted, few pages) or a photo/scan as PNG or JPEG.
CONSENT_FILES = FileStore(
    "consents", {PDF: "pdf", "image/png": "png", "image/jpeg": "jpg"}, "CONSENT_SCAN_MAX_BYTES",
    "consent", "CONSENT_SCAN_MAX_PAGES",
)  # fmt: skip
#: Written into the blank form's metadata: an upload that carries it is the unsigned printout.
BLANK_MARKER = "backoffice:consent-form:blank"
MAX_REASON = 200


class ConsentError(UserError):
    """A consent or revocation the rules refuse; str() is the zh_TW message."""


# ------------------------------------------------------------------ who may record
def staff_case(case_id) -> Case:
    """The case a consent is recorded from: in the user's scope, at one of the user's own
    institutions (staff of a facility); else the same refusal as a case that does not exist."""
    from core.web.views import valid_pk

    case = ScopedInterface(Case).get(int(case_id)) if valid_pk(case_id) else None
    scope = current_scope()
    if case is None or scope.kind != ScopeKind.FACILITY or case.institution_id not in scope.institution_ids:
        raise ConsentError(gettext(
            "Consent is recorded from a case of your institution: this case does not exist or is outside your data scope."
        ), status=404)  # fmt: skip
    return case


def may_manage(patient_id: int) -> bool:
    """The user is staff of an institution where the person has a case."""
    scope = current_scope()
    if scope.kind != ScopeKind.FACILITY or not scope.institution_ids:
        return False
    return db.session.scalar(
        select(Case.id).where(Case.patient_id == patient_id, Case.institution_id.in_(sorted(scope.institution_ids))).limit(1)
    ) is not None  # fmt: skip


def current_consent(patient_id: int) -> Consent | None:
    """The person's current consent (not revoked, not superseded; maybe expired) if the user
    may see it (Consent.scope_clause)."""
    return db.session.scalar(
        select(Consent).where(
            Consent.patient_id == patient_id, Consent.revoked_at.is_(None), Consent.superseded_at.is_(None),
            Consent.scope_clause(current_scope()),
        )
    )


def consent_history(patient_id: int) -> list[Consent]:
    """Every consent of the person the user may see, newest first (superseded and revoked kept)."""
    return list(db.session.scalars(
        select(Consent).where(Consent.patient_id == patient_id, Consent.scope_clause(current_scope()))
        .order_by(Consent.id.desc())
    ))  # fmt: skip


# ------------------------------------------------------------------ the scan
def check_scan(filename: str, data: bytes | None) -> str:
    """The MIME type of an acceptable signed scan; else ConsentError naming the file and why."""
    name = filename or gettext("the file")
    if not data:
        raise ConsentError(gettext("Upload the signed consent form (a scan or photo: PDF, PNG or JPEG)."))
    try:
        mime = CONSENT_FILES.check(data)
    except UploadRefused as refused:
        reason = refused.reason
        if reason == UploadRefused.TOO_LARGE:
            message = gettext("The file %(name)s is larger than %(mb)d MB.", name=name, mb=refused.limit_mb)
        elif reason == UploadRefused.ENCRYPTED:
            message = gettext("The file %(name)s is encrypted: upload it without a password.", name=name)
        elif reason == UploadRefused.ACTIVE_CONTENT:
            message = gettext("The file %(name)s contains scripts or actions: upload a plain PDF.", name=name)
        elif reason == UploadRefused.TOO_MANY_PAGES:
            message = gettext("The file %(name)s has more than %(pages)d pages.", name=name, pages=refused.limit)
        else:
            message = gettext(
                "The file %(name)s is not a scan of the signed form: upload a PDF, PNG or JPEG file.", name=name
            )
        raise ConsentError(message) from None
    if mime == PDF and _is_blank_form(data):
        raise ConsentError(gettext(
            "The file %(name)s is the blank form printed by the system, not signed: "
            "upload the scan of the form the patient signed.", name=name,
        ))  # fmt: skip
    return mime


def _is_blank_form(data: bytes) -> bool:
    from pypdf import PdfReader

    try:
        metadata = PdfReader(io.BytesIO(data)).metadata or {}
        return BLANK_MARKER in str(metadata.get("/Keywords", "") or "")
    except Exception:  # it parsed once already (check); any doubt is not the marker
        return False


# ------------------------------------------------------------------ commands
@dataclass
class ConsentInput:
    """What the consent form gives."""

    case_id: object
    signed_on: dt.date | None
    valid_until: dt.date | None
    cross_hospital: bool
    lab_results: bool
    scan: bytes | None
    scan_name: str = ""


class RecordConsent(Command):
    """Record a signed consent of the case's person; it supersedes the person's current one."""

    def __init__(self, data: ConsentInput):
        self.data = data
        self.stored: list[str] = []

    def validate(self) -> None:
        d = self.data
        self.case = staff_case(d.case_id)
        today = clock.today()
        if d.signed_on is None:
            raise ConsentError(gettext("Enter the date the form was signed."))
        if not in_range(d.signed_on) or d.signed_on > today:
            raise ConsentError(gettext("The date signed cannot be in the future."))
        if d.valid_until is not None:
            if not in_range(d.valid_until) or d.valid_until < d.signed_on:
                raise ConsentError(gettext("The consent cannot end before the date it was signed."))
            if d.valid_until < today:
                raise ConsentError(gettext(
                    "The consent would already have ended on %(date)s: check the date it is valid until.",
                    date=to_roc(d.valid_until),
                ))  # fmt: skip
        if d.lab_results and not d.cross_hospital:
            raise ConsentError(gettext(
                "Lab results can only be included when the patient agrees to cross-hospital lookup."
            ))  # fmt: skip
        self.mime = check_scan(d.scan_name, d.scan)

    def execute(self) -> Consent:
        d, case = self.data, self.case
        now = utcnow()
        previous = db.session.scalar(
            select(Consent).where(
                Consent.patient_id == case.patient_id, Consent.revoked_at.is_(None), Consent.superseded_at.is_(None)
            ).with_for_update()
        )  # fmt: skip
        if previous is not None:
            previous.superseded_at = now
            db.session.flush()  # the old one stops being current before the new one is
        stored = CONSENT_FILES.save(d.scan, self.mime)
        self.stored.append(stored)
        actor = current_actor()
        consent = Consent(
            patient_id=case.patient_id, institution_id=case.institution_id, case_id=case.id,
            recorded_by_id=actor.id, recorded_by_name=actor.username, signed_on=d.signed_on,
            valid_until=d.valid_until, cross_hospital=bool(d.cross_hospital), lab_results=bool(d.lab_results),
            scan_name=stored, scan_mime=self.mime, scan_size=len(d.scan), scan_sha256=sha256(d.scan),
        )  # fmt: skip
        db.session.add(consent)
        db.session.flush()
        if previous is not None:
            previous.superseded_by_id = consent.id
        ScopedInterface(Consent).enforce_scope([consent])
        return consent

    def after_rollback(self) -> None:
        CONSENT_FILES.discard(self.stored)


class RevokeConsent(Command):
    """Revoke the person's current consent, with the date and the reason; effective at once."""

    def __init__(self, consent_id, revoked_on: dt.date | None, reason: str | None):
        self.consent_id, self.revoked_on, self.reason = consent_id, revoked_on, (reason or "").strip()

    def validate(self) -> None:
        from core.web.views import valid_pk

        consent = ScopedInterface(Consent).get(int(self.consent_id)) if valid_pk(self.consent_id) else None
        if consent is None or not may_manage(consent.patient_id):
            raise ConsentError(gettext(
                "This consent does not exist or is outside your data scope: only the staff of an "
                "institution treating the patient may revoke it."
            ), status=404)  # fmt: skip
        self.consent = consent
        status = consent.status
        if status == ConsentStatus.REVOKED.value:
            raise ConsentError(gettext("This consent was already revoked on %(date)s.", date=to_roc(consent.revoked_on)))
        if status == ConsentStatus.SUPERSEDED.value:
            raise ConsentError(gettext("This consent was superseded by a newer one: revoke that one."))
        if status == ConsentStatus.EXPIRED.value:
            raise ConsentError(gettext("This consent has already expired: there is nothing to revoke."))
        if self.revoked_on is None:
            raise ConsentError(gettext("Enter the date the patient revoked the consent."))
        if not in_range(self.revoked_on) or self.revoked_on > clock.today():
            raise ConsentError(gettext("The date of revocation cannot be in the future."))
        if self.revoked_on < consent.signed_on:
            raise ConsentError(gettext("The consent cannot be revoked before the date it was signed."))
        if not self.reason:
            raise ConsentError(gettext("Enter the reason for the revocation."))
        if len(self.reason) > MAX_REASON:
            raise ConsentError(gettext("The reason is at most %(n)d characters.", n=MAX_REASON))

    def execute(self) -> Consent:
        consent = db.session.scalar(select(Consent).where(Consent.id == self.consent.id).with_for_update())
        if consent.revoked_at is not None or consent.superseded_at is not None:  # a concurrent step won
            raise ConsentError(gettext("This consent was changed meanwhile: reload the page."), status=409)
        consent.revoked_on, consent.revoked_reason = self.revoked_on, self.reason
        consent.revoked_at, consent.revoked_by_name = utcnow(), current_actor().username
        return consent


# ------------------------------------------------------------------ the blank form
def consent_form_pdf(case: Case, signed: dict | None = None) -> bytes:
    """The 治療知情同意書 for the case's person, in zh_TW whatever the interface language: the
    institution's name, the person's name and ID, the cross-hospital and lab-results boxes,
    signature lines. Marked blank in its metadata (an upload of it is refused).

    `signed` ({"boxes": {0, 1}, "names": [...], "date": "..."}) draws ticks and signatures
    instead, unmarked: the demo data's stand-in for a scan of a signed form."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    font = "MSung-Light"
    if font not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(font))
    patient, institution = case.patient, case.institution
    with force_locale("zh_Hant_TW"):
        title = gettext("Treatment informed-consent form")
        texts = _form_texts(institution.name, patient, case)
    buf = io.BytesIO()
    page = canvas.Canvas(buf, pagesize=A4, invariant=1)
    page.setTitle(title)
    page.setSubject(institution.name)
    if signed is None:
        page.setKeywords(BLANK_MARKER)
    boxes, names = (signed or {}).get("boxes", set()), list((signed or {}).get("names", []))
    page.setCreator("backoffice")
    width, height = A4
    left, y = 60, height - 70
    page.setFont(font, 18)
    page.drawCentredString(width / 2, y, title)
    y -= 22
    page.setFont(font, 12)
    page.drawCentredString(width / 2, y, institution.name)
    y -= 34
    box = 0
    for kind, line in texts:
        if kind == "box":
            page.rect(left, y - 2, 11, 11)
            if box in boxes:
                page.line(left + 2, y + 4, left + 5, y)
                page.line(left + 5, y, left + 10, y + 9)
            box += 1
            page.drawString(left + 18, y, line)
            y -= 24
        elif kind == "sign":
            y -= 14
            page.drawString(left, y, line)
            page.line(left + 150, y - 2, width - 60, y - 2)
            if names:
                page.drawString(left + 160, y + 1, names.pop(0))
            y -= 22
        elif kind == "head":
            y -= 6
            page.setFont(font, 13)
            page.drawString(left, y, line)
            page.setFont(font, 11)
            y -= 20
        else:
            page.setFont(font, 11)
            for chunk in _wrap(line, 40):
                page.drawString(left, y, chunk)
                y -= 17
    page.showPage()
    page.save()
    return buf.getvalue()


def _wrap(text: str, width: int) -> list[str]:
    """Chinese text in lines of `width` characters (no spaces to break at)."""
    return [text[i:i + width] for i in range(0, len(text), width)] or [""]


def _form_texts(institution_name: str, patient, case: Case) -> list[tuple[str, str]]:
    id_label = {
        IdKind.PASSPORT.value: gettext("Passport no."),
    }.get(patient.id_kind, gettext("National ID / resident certificate no."))
    return [
        ("text", gettext("Patient: %(name)s", name=patient.name)),
        ("text", f"{id_label}：{patient.national_id}"),
        ("text", gettext("Case opened on %(date)s", date=to_roc(case.opened_on))),
        ("head", gettext("Treatment")),
        ("text", gettext(
            "I have been told the aims, the course and the possible effects of the addiction "
            "treatment offered by %(institution)s, and agree to receive it.", institution=institution_name,
        )),  # fmt: skip
        ("head", gettext("Cross-hospital lookup")),
        ("text", gettext(
            "Other institutions that treat me in this programme may see when, where and which kind "
            "of treatment I received here (never the content of any record), only if I agree below. "
            "I may revoke this at any time; every lookup is logged and my institutions can read the log."
        )),  # fmt: skip
        ("box", gettext("I agree to cross-hospital lookup of my treatment history")),
        ("box", gettext("including my lab results (substance, result, date)")),
        ("box", gettext("I do not agree to cross-hospital lookup")),
        ("text", gettext("Valid until (leave empty for no end date): ______ / ____ / ____")),
        ("sign", gettext("Patient's signature")),
        ("sign", gettext("Legal representative (if any)")),
        ("sign", gettext("Staff member who explained it")),
        ("sign", gettext("Date signed")),
    ]


# ------------------------------------------------------------------ FHIR R4 Consent
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONSENT_ACTION = "http://terminology.hl7.org/CodeSystem/consentaction"
SCOPE_SYSTEM = "urn:backoffice:consent-scope"
BASE = "urn:backoffice"
#: Our flat scopes as FHIR provision classes (one permit provision each).
SCOPE_CODES = {"timeline": "Treatment course timeline (dates, institution, kind of treatment)",
               "lab_results": "Lab results (substance, result, date)"}  # fmt: skip
_FHIR_STATUS = {ConsentStatus.ACTIVE.value: "active", ConsentStatus.REVOKED.value: "inactive",
                ConsentStatus.EXPIRED.value: "inactive", ConsentStatus.SUPERSEDED.value: "inactive"}  # fmt: skip


def consent_fhir(consent: Consent) -> dict:
    """The consent as a FHIR R4 Consent (validated with fhir.resources R4B): a deny base
    provision over the consent's period, with one permit provision per allowed scope."""
    from domain.addiction.formats.fhir import validated

    end = consent.revoked_on or consent.valid_until
    period = {"start": consent.signed_on.isoformat(), **({"end": end.isoformat()} if end else {})}
    institution = {"reference": f"{BASE}:institution/{consent.institution_id}",
                   "display": consent.institution.name}  # fmt: skip
    resource = {
        "resourceType": "Consent",
        "id": str(consent.id),
        "status": _FHIR_STATUS[consent.status],
        "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}],
                      "text": "治療知情同意書"}],  # fmt: skip
        "patient": {"reference": f"{BASE}:patient/{consent.patient_id}", "display": consent.patient.name},
        "dateTime": consent.created_on.replace(microsecond=0).isoformat() + "+00:00",
        "performer": [{"reference": f"{BASE}:patient/{consent.patient_id}"}],
        "organization": [institution],
        "sourceAttachment": {"contentType": consent.scan_mime, "size": consent.scan_size,
                             **_sha1(consent), "title": "治療知情同意書"},  # fmt: skip
        "policyRule": {"coding": [{"system": ACT_CODE, "code": "OPTIN" if consent.cross_hospital else "OPTOUT"}]},
        "provision": {
            "type": "deny",
            "period": period,
            "provision": [
                {"type": "permit", "period": period,
                 "action": [{"coding": [{"system": CONSENT_ACTION, "code": "access"}]}],
                 "code": [{"coding": [{"system": SCOPE_SYSTEM, "code": code, "display": SCOPE_CODES[code]}]}]}
                for code in consent.scopes
            ] or None,
        },
    }  # fmt: skip
    if resource["provision"]["provision"] is None:
        del resource["provision"]["provision"]
    return validated(resource)


def _sha1(consent: Consent) -> dict:
    """Attachment.hash: base64 of the scan's SHA-1 (FHIR's choice; the row keeps its SHA-256)."""
    import base64
    import hashlib

    content = CONSENT_FILES.read_stored(consent.scan_name)
    if content is None:
        return {}
    return {"hash": base64.b64encode(hashlib.sha1(content).digest()).decode()}
