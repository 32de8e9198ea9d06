"""Application models. Importing this package registers every table on FAB's metadata."""

from models.account import (  # noqa: F401
    AccountApplication,
    ApplicationStatus,
    LoginThrottle,
    OneTimeToken,
    RequestedRole,
    UserSession,
)
from models.audit import AuditLog  # noqa: F401
from models.base import AppModel  # noqa: F401
from models.correction import (  # noqa: F401
    AttachmentKind,
    CorrectionAttachment,
    CorrectionLine,
    CorrectionTicket,
    TicketChannel,
    TicketCounter,
    TicketStatus,
    TicketTransition,
)
from models.export_job import ExportJob, ExportStatus  # noqa: F401
from models.institution import ContractPeriod, Institution  # noqa: F401
from models.person import IdentityStatus, PersonKind, PersonLink  # noqa: F401
from models.practitioner import Practitioner, Profession, ServiceAssignment  # noqa: F401
from models.reference import County, InstitutionLevel  # noqa: F401
from models.user import ScopedUser, ScopeKind, user_institution  # noqa: F401
from models.visit import Quitter, Sex, Visit  # noqa: F401
