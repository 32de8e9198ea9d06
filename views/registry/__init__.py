"""Registry screens: institutions, contracts, practitioners, reference data, persons."""

from flask_babel import lazy_gettext as _l


def register(appbuilder) -> None:
    """The 登記管理 and 參考資料 menus and the registry APIs."""
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
    for api in (
        InstitutionApi, PractitionerApi, ServiceAssignmentApi, ContractPeriodApi,
        CountyApi, InstitutionLevelApi,
    ):  # fmt: skip
        appbuilder.add_api(api)
