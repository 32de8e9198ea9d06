"""Every table of the application: importing this module registers them all on FAB's metadata
(the app factory does, before anything maps a relationship by name)."""


from models.accounts.application import AccountApplication, ApplicationStatus, RequestedRole  # noqa: F401
from models.addiction.case import Case, Patient  # noqa: F401
from models.addiction.claim import Claim, ClaimLine, ClaimReview, ClaimSubmission, ClaimTransition  # noqa: F401
from models.addiction.consent import Consent, ConsentAccess  # noqa: F401
from models.addiction.course import Course, CourseTransition  # noqa: F401
from models.addiction.designation import Designation  # noqa: F401
from models.addiction.his import HisOrder, OrderCodeMapping  # noqa: F401
from models.addiction.instrument import AssessmentResponse, Instrument, InstrumentVersion  # noqa: F401
from models.addiction.record import LabResult, RecordForm, TreatmentRecord  # noqa: F401
from models.addiction.scheme import SchemeItem, SubsidyScheme  # noqa: F401
from models.addiction.staff import StaffLicence, Training  # noqa: F401
from models.base import AppModel  # noqa: F401
from models.cessation.correction import (  # noqa: F401
    AttachmentKind,
    CorrectionAttachment,
    CorrectionLine,
    CorrectionTicket,
    TicketChannel,
    TicketCounter,
    TicketStatus,
    TicketTransition,
)
from models.cessation.visit import Quitter, Sex, Visit  # noqa: F401
from models.platform.announcement import Announcement  # noqa: F401
from models.platform.audit import AuditLog  # noqa: F401
from models.platform.export_job import ExportJob, ExportStatus  # noqa: F401
from models.platform.session import LoginThrottle, OneTimeToken, UserSession  # noqa: F401
from models.platform.stored_file import StoredFile  # noqa: F401
from models.platform.user import ScopedUser, ScopeKind, user_institution  # noqa: F401
from models.registry.institution import ContractPeriod, Institution  # noqa: F401
from models.registry.person import IdentityStatus, PersonKind, PersonLink  # noqa: F401
from models.registry.practitioner import Practitioner, Profession, ServiceAssignment  # noqa: F401
from models.registry.reference import County, InstitutionLevel  # noqa: F401
