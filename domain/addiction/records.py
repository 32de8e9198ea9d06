"""Treatment records by profession (A5), the institutions' own blank record forms, lab results.

A5  a record is the built-in structured form of its kind, or the institution's own record
    form filled in and uploaded as a PDF (checked by content: parseable, not encrypted, no
    scripts or actions, at most RECORD_PDF_MAX_BYTES and RECORD_PDF_MAX_PAGES; SHA-256 kept);
    its execution date lies inside its course; its author serves at the course's institution
    that day and holds a licence, valid that day, in a profession the kind requires (SIGNERS);
    an institution registers one blank form per kind, versioned, and the Ministry lists them
    all (seed Q15); lab results are structured rows (the cross-hospital timeline shows them).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from core.commands import Command
from core.data.datamodel import ScopedInterface
from core.dates import in_range, to_roc
from core.errors import UserError
from core.extensions import db
from core.files import PDF, FileStore, UploadRefused, pdf_pages, sha256
from models.addiction.course import Course
from models.addiction.record import (
    LabOutcome,
    LabResult,
    RecordForm,
    TreatmentKind,
    TreatmentRecord,
)
from models.addiction.staff import StaffLicence, StaffProfession
from models.registry.institution import Institution
from models.registry.practitioner import Practitioner, ServiceAssignment

K, P = TreatmentKind, StaffProfession
#: Which professions may sign each kind of treatment, in the order a record's profession is
#: chosen when its author holds several.
SIGNERS: dict[str, tuple[str, ...]] = {
    K.OUTPATIENT: (P.PHYSICIAN,),
    K.INDIVIDUAL_PSYCHOTHERAPY: (P.PSYCHOLOGIST, P.PHYSICIAN),
    K.GROUP_PSYCHOTHERAPY: (P.PSYCHOLOGIST, P.PHYSICIAN),
    K.FAMILY_THERAPY: (P.PSYCHOLOGIST, P.PHYSICIAN, P.SOCIAL_WORKER),
    K.SOCIAL_WORK: (P.SOCIAL_WORKER,),
    K.NURSING_EDUCATION: (P.NURSE,),
    K.OCCUPATIONAL_THERAPY: (P.OCCUPATIONAL_THERAPIST,),
    K.CASE_MANAGEMENT: (P.CASE_MANAGER, P.SOCIAL_WORKER, P.NURSE),
    K.LAB_TEST: (P.PHYSICIAN, P.NURSE),
}


@dataclass(frozen=True)
class ContentField:
    """One field of a kind's built-in record form."""

    name: str
    label: object
    required: bool = False
    max_length: int = 2000


_TOPIC = ContentField("topic", _l("Topic"), required=True, max_length=200)
_RESPONSE = ContentField("response", _l("Patient's response"))
_PLAN = ContentField("plan", _l("Plan"))
_PSYCHOTHERAPY = (_TOPIC, ContentField("interventions", _l("Interventions"), required=True), _RESPONSE, _PLAN)
#: The built-in structured form of each kind; a lab test's results are LabResult rows besides.
CONTENT_FIELDS: dict[str, tuple[ContentField, ...]] = {
    K.OUTPATIENT: (
        ContentField("assessment", _l("Assessment"), required=True),
        ContentField("medication", _l("Medication"), max_length=500),
        _PLAN,
    ),
    K.INDIVIDUAL_PSYCHOTHERAPY: _PSYCHOTHERAPY,
    K.GROUP_PSYCHOTHERAPY: _PSYCHOTHERAPY,
    K.FAMILY_THERAPY: _PSYCHOTHERAPY,
    K.SOCIAL_WORK: (
        ContentField("problem", _l("Problem"), required=True),
        ContentField("interventions", _l("Interventions"), required=True),
        ContentField("resources", _l("Resources linked")),
        _PLAN,
    ),
    K.NURSING_EDUCATION: (_TOPIC, ContentField("education", _l("Education given"), required=True), _RESPONSE),
    K.OCCUPATIONAL_THERAPY: (
        ContentField("goal", _l("Goal"), required=True, max_length=500),
        ContentField("activities", _l("Activities"), required=True),
        _RESPONSE,
        _PLAN,
    ),
    K.CASE_MANAGEMENT: (ContentField("summary", _l("Summary"), required=True), _PLAN),
    K.LAB_TEST: (ContentField("note", _l("Note"), max_length=500),),
}
MAX_LAB_ROWS = 20

#: Filled-in record PDFs and blank record forms: the PDF profile (no scripts, no encryption).
RECORD_FILES = FileStore("records", {PDF: "pdf"}, "RECORD_PDF_MAX_BYTES", "record", "RECORD_PDF_MAX_PAGES")
FORM_FILES = FileStore("record-forms", {PDF: "pdf"}, "RECORD_PDF_MAX_BYTES", "form", "RECORD_PDF_MAX_PAGES")


class RecordError(UserError):
    """A treatment record or record form the rules refuse; str() is the zh_TW message."""


def is_kind(value) -> bool:
    """`value` names a kind of treatment (a JSON list or object never does, and never raises)."""
    return isinstance(value, str) and value in set(TreatmentKind)


def kind_label(kind: str) -> str:
    """The label of a kind of treatment."""
    return TreatmentKind.label_of(kind)


def check_pdf(store: FileStore, filename: str, data: bytes) -> str:
    """The MIME type of an acceptable record PDF; else RecordError naming the file and why."""
    try:
        return store.check(data)
    except UploadRefused as refused:
        reason = refused.reason
        if reason == UploadRefused.EMPTY:
            message = gettext("The file %(name)s is empty.", name=filename)
        elif reason == UploadRefused.TOO_LARGE:
            message = gettext("The file %(name)s is larger than %(mb)d MB.", name=filename, mb=refused.limit_mb)
        elif reason == UploadRefused.ENCRYPTED:
            message = gettext("The file %(name)s is encrypted: upload it without a password.", name=filename)
        elif reason == UploadRefused.ACTIVE_CONTENT:
            message = gettext(
                "The file %(name)s contains scripts or actions: upload a plain PDF.", name=filename
            )
        elif reason == UploadRefused.TOO_MANY_PAGES:
            message = gettext(
                "The file %(name)s has more than %(pages)d pages.", name=filename, pages=refused.limit
            )
        else:
            message = gettext("The file %(name)s is not a PDF document.", name=filename)
        raise RecordError(message) from None


def _not_found(what) -> RecordError:
    # A row out of scope is answered exactly like one that does not exist (FAB trap 10).
    return RecordError(gettext(
        "The selected %(what)s does not exist or is outside your data scope.", what=str(what)
    ))  # fmt: skip


def signing_profession(author: Practitioner, kind: str, day: dt.date) -> str:
    """The profession `author` signs a `kind` record in on `day`: one SIGNERS allows, with a
    licence valid that day; else RecordError (wrong profession, or the licence not valid)."""
    allowed = SIGNERS[kind]
    licences = db.session.scalars(
        select(StaffLicence).where(
            StaffLicence.practitioner_id == author.id, StaffLicence.profession.in_(allowed)
        )
    ).all()
    for profession in allowed:
        if any(lic.profession == profession and lic.covers(day) for lic in licences):
            return profession
    if licences:
        raise RecordError(gettext(
            "%(name)s's %(profession)s licence is not valid on %(date)s.",
            name=author.name, profession=licences[0].profession_label, date=to_roc(day),
        ))  # fmt: skip
    raise RecordError(gettext(
        "A %(kind)s record is signed by a %(professions)s; %(name)s holds no such licence.",
        kind=kind_label(kind), name=author.name,
        professions=gettext(" or ").join(StaffProfession.label_of(p) for p in allowed),
    ))  # fmt: skip


def clean_content(kind: str, content) -> dict:
    """The built-in form's content as stored: its fields' text, stripped; required ones given,
    none too long, no field of another form."""
    if content is None:
        content = {}
    if not isinstance(content, dict):
        raise RecordError(gettext("The record's content must be the fields of its form."))
    fields = {f.name: f for f in CONTENT_FIELDS[kind]}
    unknown = sorted(set(content) - set(fields))
    if unknown:
        raise RecordError(gettext("The form of this kind has no field %(name)s.", name=unknown[0][:50]))
    cleaned = {}
    for name, spec in fields.items():
        value = content.get(name)
        if value is not None and not isinstance(value, str):
            raise RecordError(gettext("%(field)s must be text.", field=spec.label))
        value = (value or "").strip()
        if spec.required and not value:
            raise RecordError(gettext("Please fill in %(field)s.", field=spec.label))
        if len(value) > spec.max_length:
            raise RecordError(gettext(
                "%(field)s may be at most %(max)d characters long (you gave %(n)d).",
                field=spec.label, max=spec.max_length, n=len(value),
            ))  # fmt: skip
        if value:
            cleaned[name] = value
    return cleaned


@dataclass
class LabRowInput:
    """One lab result as entered: substance, sample date, outcome, value."""

    substance: str | None
    sampled_on: dt.date | None
    outcome: str | None
    value: str | None = None


def clean_lab_rows(rows: list[LabRowInput]) -> list[LabRowInput]:
    """The lab results of a lab-test record: at least one; each complete and within bounds."""
    rows = [r for r in rows if (r.substance or "").strip() or r.sampled_on or r.value]
    if not rows:
        raise RecordError(gettext("A lab-test record needs at least one result."))
    if len(rows) > MAX_LAB_ROWS:
        raise RecordError(gettext("A record holds at most %(n)d lab results.", n=MAX_LAB_ROWS))
    for number, row in enumerate(rows, 1):
        substance = (row.substance or "").strip() if isinstance(row.substance, str) else ""
        value = (row.value or "").strip() if isinstance(row.value, str) else ""
        problem = None
        if not substance or len(substance) > 50:
            problem = gettext("give the substance (at most 50 characters)")
        elif not isinstance(row.sampled_on, dt.date) or not in_range(row.sampled_on):
            problem = gettext("give the sample date")
        elif not isinstance(row.outcome, str) or row.outcome not in set(LabOutcome):
            problem = gettext("choose the result")
        elif len(value) > 50 or (row.value is not None and not isinstance(row.value, str)):
            problem = gettext("the value may be at most 50 characters")
        if problem:
            raise RecordError(gettext("Lab result %(n)d: %(problem)s.", n=number, problem=problem))
        row.substance, row.value = substance, value or None
    return rows


@dataclass
class RecordInput:
    """A treatment record as a form or an API body gives it (ids unchecked)."""

    course_id: object = None
    executed_on: dt.date | None = None
    author_id: object = None
    kind: str | None = None
    minutes: object = None
    #: The built-in form's fields; or a filled-in PDF (`pdf`, its `pdf_name`) on `form_id`.
    content: dict | None = None
    lab_rows: list[LabRowInput] = field(default_factory=list)
    pdf: bytes | None = None
    pdf_name: str = ""
    form_id: object = None
    #: True: the content is the uploaded PDF (a record edited without a new upload keeps its file).
    use_pdf: bool = False


def _pk(value) -> int | None:
    from core.web.views import valid_pk

    return int(value) if valid_pk(value) else None


class WriteRecord(Command):
    """Add a treatment record to a course, or correct one (A5); institution and case come
    from the course, never from input. A correction is audited like every ORM write."""

    def __init__(self, data: RecordInput, record: TreatmentRecord | None = None):
        self.data = data
        self.record = record
        self._written: list[str] = []

    def validate(self) -> None:
        d = self.data
        if self.record is not None:
            self.course = self.record.course  # a record never moves to another course
        else:
            pk = _pk(d.course_id)
            self.course = ScopedInterface(Course).get(pk) if pk else None
            if self.course is None:
                raise _not_found(Course.__label__)
        if not is_kind(d.kind):
            raise RecordError(gettext("Choose a kind of treatment."))
        day = d.executed_on
        if not isinstance(day, dt.date) or not in_range(day):
            raise RecordError(gettext("Please fill in %(field)s.", field=_l("Execution date")))
        course = self.course
        if not course.start_date <= day <= course.end_date:
            raise RecordError(gettext(
                "The execution date %(date)s is outside the course (%(start)s–%(end)s).",
                date=to_roc(day), start=to_roc(course.start_date), end=to_roc(course.end_date),
            ))  # fmt: skip
        minutes = d.minutes
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 1440:
            raise RecordError(gettext(
                "%(field)s must be a whole number from %(min)d to %(max)d.", field=_l("Minutes"), min=1, max=1440
            ))  # fmt: skip
        author_pk = _pk(d.author_id)
        author = db.session.get(Practitioner, author_pk) if author_pk else None
        serving = author is not None and db.session.scalar(
            select(ServiceAssignment.id).where(
                ServiceAssignment.practitioner_id == author.id,
                ServiceAssignment.institution_id == course.institution_id,
                ServiceAssignment.covering(day),
            )
        )
        if not serving:
            # Not serving there names no one: a staff member of another institution stays unknown.
            raise RecordError(gettext(
                "The author must be a staff member serving at %(inst)s on %(date)s.",
                inst=db.session.get(Institution, course.institution_id).name, date=to_roc(day),
            ))  # fmt: skip
        self.author = author
        self.profession = signing_profession(author, d.kind, day)
        self.content = None if d.use_pdf else clean_content(d.kind, d.content)
        self.lab_rows = clean_lab_rows(d.lab_rows) if d.kind == TreatmentKind.LAB_TEST else []
        self.form = None
        if d.use_pdf:
            if d.kind == TreatmentKind.LAB_TEST:
                raise RecordError(gettext("Lab results are entered in the built-in form, not as a PDF."))
            form_pk = _pk(d.form_id)
            form = db.session.get(RecordForm, form_pk) if form_pk else None
            if form is None or form.institution_id != course.institution_id or form.kind != d.kind:
                raise RecordError(gettext(
                    "Choose this institution's blank record form for %(kind)s.", kind=kind_label(d.kind)
                ))  # fmt: skip
            self.form = form
            keeps_file = self.record is not None and self.record.stored_name and d.pdf is None
            if not keeps_file:
                if not d.pdf:
                    raise RecordError(gettext("Upload the filled-in record form (PDF)."))
                check_pdf(RECORD_FILES, d.pdf_name or "record.pdf", d.pdf)

    def execute(self) -> TreatmentRecord:
        d, course = self.data, self.course
        record = self.record or TreatmentRecord()
        record.course_id, record.case_id, record.institution_id = course.id, course.case_id, course.institution_id
        record.executed_on, record.author_id, record.profession = d.executed_on, self.author.id, self.profession
        record.kind, record.minutes = d.kind, d.minutes
        if d.use_pdf:
            record.content, record.form_id = None, self.form.id
            if d.pdf is not None:
                record.stored_name = RECORD_FILES.save(d.pdf, PDF)
                self._written.append(record.stored_name)
                record.sha256 = sha256(d.pdf)
        else:
            record.content, record.form_id, record.stored_name, record.sha256 = self.content, None, None, None
        record.lab_results = [
            LabResult(substance=r.substance, sampled_on=r.sampled_on, outcome=r.outcome, value=r.value)
            for r in self.lab_rows
        ]
        db.session.add(record)
        db.session.flush()
        return record

    def after_rollback(self) -> None:
        RECORD_FILES.discard(self._written)


class RegisterRecordForm(Command):
    """Register an institution's blank record form for a kind: version n + 1 (old ones kept)."""

    def __init__(self, institution_id, kind: str | None, title: str | None, data: bytes | None, filename: str = ""):
        self.institution_id, self.kind, self.title = institution_id, kind, (title or "").strip()
        self.data, self.filename = data, filename or "form.pdf"
        self._written: list[str] = []

    def validate(self) -> None:
        pk = _pk(self.institution_id)
        self.institution = ScopedInterface(Institution).get(pk) if pk else None
        if self.institution is None:
            raise _not_found(Institution.__label__)
        if not is_kind(self.kind):
            raise RecordError(gettext("Choose a kind of treatment."))
        if not self.title:
            raise RecordError(gettext("Please fill in %(field)s.", field=_l("Title")))
        if len(self.title) > 200:
            raise RecordError(gettext(
                "%(field)s may be at most %(max)d characters long (you gave %(n)d).",
                field=_l("Title"), max=200, n=len(self.title),
            ))  # fmt: skip
        if not self.data:
            raise RecordError(gettext("Upload the blank record form (PDF)."))
        check_pdf(FORM_FILES, self.filename, self.data)

    def execute(self) -> RecordForm:
        last = db.session.scalar(
            select(func.max(RecordForm.version)).where(
                RecordForm.institution_id == self.institution.id, RecordForm.kind == self.kind
            )
        )
        stored = FORM_FILES.save(self.data, PDF)
        self._written.append(stored)
        form = RecordForm(
            institution_id=self.institution.id, kind=self.kind, version=(last or 0) + 1, title=self.title,
            stored_name=stored, size=len(self.data), pages=pdf_pages(self.data), sha256=sha256(self.data),
        )  # fmt: skip
        db.session.add(form)
        db.session.flush()  # a version taken meanwhile fails here (unique), and is rolled back
        return form

    def after_rollback(self) -> None:
        FORM_FILES.discard(self._written)


def course_record_lines(course_id: int) -> tuple[list, dict[int, list]]:
    """A course's records in date order as plain rows (id, executed_on, kind, author,
    profession, minutes, pdf, content), and each record's lab results as (substance, outcome) in
    entry order: what the course page prints, in one statement.

    Loading a course's 201 records as ORM objects with their authors and lab results took
    3 statements and 10-11 ms CPU (min of 30, SQLite, demo scale, a loaded 2-core machine);
    these rows took 2-4 ms in two statements. The lab results now come with their record
    (an outer join: a record's columns repeat once per result, about one record in ten has
    any), one statement and one round trip fewer per course page.
    """
    rows: list = []
    labs: dict[int, list] = {}
    last = None
    for row in db.session.execute(
        select(TreatmentRecord.id, TreatmentRecord.executed_on, TreatmentRecord.kind,
               Practitioner.name.label("author"), TreatmentRecord.profession, TreatmentRecord.minutes,
               TreatmentRecord.stored_name.is_not(None).label("pdf"), TreatmentRecord.content,
               LabResult.substance, LabResult.outcome)
        .join(Practitioner, Practitioner.id == TreatmentRecord.author_id)
        .outerjoin(LabResult, LabResult.record_id == TreatmentRecord.id)
        .where(TreatmentRecord.course_id == course_id)
        .order_by(TreatmentRecord.executed_on, TreatmentRecord.id, LabResult.id)
    ):  # fmt: skip
        record_id = row[0]
        if record_id != last:
            rows.append(row[:8])
            last = record_id
        if row[8] is not None:
            labs.setdefault(record_id, []).append((row[8], row[9]))
    return rows, labs


def institution_forms(institution_id: int, kind: str) -> list[RecordForm]:
    """An institution's blank forms of a kind, newest version first (a PDF record picks one)."""
    return db.session.scalars(
        select(RecordForm)
        .where(RecordForm.institution_id == institution_id, RecordForm.kind == kind)
        .order_by(RecordForm.version.desc())
    ).all()


def serving_staff(institution_id: int) -> list[Practitioner]:
    """Practitioners with a service assignment at the institution (the author choices)."""
    return db.session.scalars(
        select(Practitioner)
        .where(Practitioner.id.in_(
            select(ServiceAssignment.practitioner_id).where(ServiceAssignment.institution_id == institution_id)
        ))  # fmt: skip
        .order_by(Practitioner.name)
    ).all()


def content_field_order() -> list[ContentField]:
    """Every kind's built-in fields once each, in an order that keeps every kind's own order
    (the record form renders them all and shows the chosen kind's: what was typed in a field
    two kinds share, such as 主題, stays when the kind changes)."""
    first_seen: dict[str, ContentField] = {}
    after: dict[str, set[str]] = {}
    for specs in CONTENT_FIELDS.values():
        for before, spec in zip((None, *specs), specs, strict=False):
            first_seen.setdefault(spec.name, spec)
            after.setdefault(spec.name, set())
            if before is not None:
                after[spec.name].add(before.name)
    order: list[ContentField] = []
    placed: set[str] = set()
    while len(order) < len(first_seen):
        # The first field (in the order met) whose predecessors are all placed; a cycle
        # cannot arise from lists, but never loop forever on one.
        name = next((n for n in first_seen if n not in placed and after[n] <= placed),
                    next(n for n in first_seen if n not in placed))  # fmt: skip
        order.append(first_seen[name])
        placed.add(name)
    return order


def open_courses(case_id: int) -> list[Course]:
    """A case's courses in progress, in scope, oldest first (the record form offers them)."""
    from models.addiction.course import CourseStatus

    return (
        ScopedInterface(Course).scoped_query()
        .filter(Course.case_id == case_id, Course.status == CourseStatus.ACTIVE.value)
        .order_by(Course.start_date, Course.id).all()
    )  # fmt: skip


def course_on(courses: list[Course], day: dt.date | None) -> Course | None:
    """The course whose period holds `day` (the latest-starting if several); None if none."""
    if not isinstance(day, dt.date):
        return None
    holding = [c for c in courses if c.start_date <= day <= c.end_date]
    return holding[-1] if holding else None


#: Cases a lookup on the record form lists at most (a full ID or a name finds a few).
CASE_LOOKUP_LIMIT = 20


def find_open_cases(text: str | None, masked_ids: bool) -> list:
    """Open cases in scope whose patient's ID (exactly, for a viewer who sees IDs masked; else
    its start) or name (any part) matches `text`; at most CASE_LOOKUP_LIMIT, by name."""
    from sqlalchemy import or_

    from core.validators import normalize_id
    from models.addiction.case import Case, CaseStatus, Patient

    text = (text or "").strip()[:50]
    if not text:
        return []
    typed_id = normalize_id(text)
    ident = Patient.national_id == typed_id if masked_ids else Patient.national_id.startswith(typed_id, autoescape=True)
    return (
        ScopedInterface(Case).scoped_query().join(Patient, Patient.id == Case.patient_id)
        .filter(Case.status == CaseStatus.OPEN.value, or_(ident, Patient.name.contains(text, autoescape=True)))
        .order_by(Patient.name, Case.opened_on.desc()).limit(CASE_LOOKUP_LIMIT).all()
    )  # fmt: skip
