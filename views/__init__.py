"""Menus, views and APIs of the application, registered by `register(appbuilder)`."""

from flask_babel import lazy_gettext as _l


def register(appbuilder) -> None:
    """Add every view and API; the scope-matrix test walks whatever is registered here."""
    from views.accounts.applications import (
        AccountApplicationView,
        AccountLookupView,
        ApplyView,
        SetPasswordView,
    )
    from views.cessation.corrections import (
        CorrectionConversionView,
        CorrectionLineApi,
        CorrectionTicketApi,
        CorrectionTicketView,
    )
    from views.cessation.reports import FeeDeductionView, SelfCheckView
    from views.cessation.statistics import CessationStatisticsApi, CessationStatisticsView
    from views.cessation.upload import VisitUploadView
    from views.cessation.visits import (
        QuitterApi,
        QuitterIdentityView,
        QuitterView,
        VisitApi,
        VisitView,
    )
    from views.platform.audit import AuditLogApi, AuditLogView
    from views.platform.exports import ExportJobView
    from views.registry.institutions import (
        ContractPeriodApi,
        ContractPeriodView,
        InstitutionApi,
        InstitutionView,
        PractitionerApi,
        PractitionerIdentityView,
        PractitionerView,
        ServiceAssignmentApi,
        ServiceAssignmentView,
    )
    from views.registry.reference import (
        CountyApi,
        CountyView,
        InstitutionLevelApi,
        InstitutionLevelView,
    )

    cessation = _l("Cessation services")
    appbuilder.add_view(
        VisitView, "Visit records", label=_l("Visit records"), icon="fa-stethoscope",
        category="Cessation", category_label=cessation, category_icon="fa-ban",
    )  # fmt: skip
    appbuilder.add_view(
        QuitterView, "Quitters", label=_l("Quitters"), icon="fa-user", category="Cessation",
    )  # fmt: skip
    appbuilder.add_view(
        QuitterIdentityView, "Quitters: identity data to reconcile",
        label=_l("Quitters: identity data to reconcile"), icon="fa-id-card", category="Cessation",
    )  # fmt: skip
    appbuilder.add_view(
        VisitUploadView, "Batch upload", label=_l("Batch upload of visit records"), icon="fa-upload",
        category="Cessation",
    )  # fmt: skip
    appbuilder.add_view(
        SelfCheckView, "Monthly self-check", label=_l("Monthly self-check"), icon="fa-calendar-check-o",
        category="Cessation",
    )  # fmt: skip
    appbuilder.add_view(
        FeeDeductionView, "Fee-deduction list", label=_l("Fee-deduction list"), icon="fa-minus-circle",
        category="Cessation",
    )  # fmt: skip
    appbuilder.add_view(
        CorrectionTicketView, "Correction requests", label=_l("Correction requests"),
        icon="fa-pencil-square-o", category="Cessation",
    )  # fmt: skip
    appbuilder.add_view_no_menu(CorrectionConversionView)
    appbuilder.add_view(
        CessationStatisticsView, "Yearly statistics", label=_l("Yearly cessation statistics"),
        icon="fa-bar-chart", category="Cessation",
    )  # fmt: skip
    registry = _l("Registry")
    appbuilder.add_view(
        InstitutionView, "Institutions", label=_l("Institutions"), icon="fa-hospital-o",
        category="Registry", category_label=registry, category_icon="fa-building",
    )  # fmt: skip
    appbuilder.add_view(
        PractitionerView, "Practitioners", label=_l("Practitioners"), icon="fa-user-md",
        category="Registry",
    )  # fmt: skip
    appbuilder.add_view(
        PractitionerIdentityView, "Practitioners: identity data to reconcile",
        label=_l("Practitioners: identity data to reconcile"), icon="fa-id-card", category="Registry",
    )  # fmt: skip
    appbuilder.add_view(
        ServiceAssignmentView, "Service assignments", label=_l("Service assignments"),
        icon="fa-link", category="Registry",
    )  # fmt: skip
    appbuilder.add_view(
        ContractPeriodView, "Contract periods", label=_l("Contract periods"),
        icon="fa-file-text-o", category="Registry",
    )  # fmt: skip
    reference = _l("Reference data")
    appbuilder.add_view(
        CountyView, "Counties", label=_l("Counties and health bureaus"), icon="fa-map",
        category="Reference", category_label=reference, category_icon="fa-book",
    )  # fmt: skip
    appbuilder.add_view(
        InstitutionLevelView, "Institution levels", label=_l("Institution levels"),
        icon="fa-sort-amount-asc", category="Reference",
    )  # fmt: skip
    appbuilder.add_view(
        AuditLogView, "Audit log", label=_l("Audit log"), icon="fa-history",
        category="Security", category_label=_l("Security"),
    )  # fmt: skip
    accounts = _l("Accounts")
    appbuilder.add_view(
        AccountApplicationView, "Account applications", label=_l("Account applications"),
        icon="fa-id-card-o", category="Accounts", category_label=accounts, category_icon="fa-users",
    )  # fmt: skip
    appbuilder.add_view(
        AccountLookupView, "Account lookup", label=_l("Account lookup"), icon="fa-search",
        category="Accounts",
    )  # fmt: skip
    appbuilder.add_view_no_menu(ExportJobView)
    appbuilder.add_view_no_menu(ApplyView)
    appbuilder.add_view_no_menu(SetPasswordView)
    for api in (
        VisitApi, QuitterApi,
        InstitutionApi, PractitionerApi, ServiceAssignmentApi, ContractPeriodApi,
        CountyApi, InstitutionLevelApi, AuditLogApi, CorrectionTicketApi, CorrectionLineApi,
        CessationStatisticsApi,
    ):  # fmt: skip
        appbuilder.add_api(api)
