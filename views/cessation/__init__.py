"""Cessation screens: visits, quitters, corrections, reports, statistics, upload."""

from flask_babel import lazy_gettext as _l


def register(appbuilder) -> None:
    """The 戒菸服務 menu and the cessation APIs."""
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
    for api in (VisitApi, QuitterApi, CorrectionTicketApi, CorrectionLineApi, CessationStatisticsApi):
        appbuilder.add_api(api)
    from core.web import workqueue
    from domain.cessation.workqueue import PROVIDERS

    for order, provider in enumerate(PROVIDERS, start=10):
        workqueue.register(provider, order)
