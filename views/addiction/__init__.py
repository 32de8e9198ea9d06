"""Addiction case-management screens (A1–A14), all under the one 藥酒癮個案管理 menu."""

from flask_babel import lazy_gettext as _l

#: The menu category every addiction screen is filed under.
CATEGORY = "Addiction"
CATEGORY_LABEL = _l("Addiction case management")
CATEGORY_ICON = "fa-medkit"


def register(appbuilder) -> None:
    """Each part of the programme registers its screens and APIs here, in menu order."""
    from views.addiction import cases, designer, records
    from views.addiction.staff import register as register_staff

    cases.register(appbuilder)
    records.register(appbuilder, CATEGORY, CATEGORY_LABEL, CATEGORY_ICON)
    register_staff(appbuilder)
    designer.register(appbuilder, CATEGORY, CATEGORY_LABEL, CATEGORY_ICON)
    from views.addiction.assessments import register as register_assessments

    register_assessments(appbuilder)
    from views.addiction.consent import register as register_consent

    register_consent(appbuilder, CATEGORY, CATEGORY_LABEL, CATEGORY_ICON)
    from views.addiction import his, schemes

    his.register(appbuilder, CATEGORY, CATEGORY_LABEL, CATEGORY_ICON)
    schemes.register(appbuilder, CATEGORY, CATEGORY_LABEL, CATEGORY_ICON)
    from views.addiction import reports

    reports.register(appbuilder, CATEGORY, CATEGORY_LABEL, CATEGORY_ICON)
    from views.addiction import claims

    claims.register(appbuilder, CATEGORY, CATEGORY_LABEL, CATEGORY_ICON)

    from views.addiction.designations import DesignationApi, DesignationView

    appbuilder.add_view(
        DesignationView, "Addiction programme designations",
        label=_l("Addiction programme designations"), icon="fa-certificate",
        category=CATEGORY, category_label=CATEGORY_LABEL, category_icon=CATEGORY_ICON,
    )  # fmt: skip
    appbuilder.add_api(DesignationApi)
    from core.web import workqueue
    from domain.addiction.workqueue import PROVIDERS

    for provider in PROVIDERS:
        workqueue.register(provider, order=30)
