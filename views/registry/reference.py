"""Counties (with their health bureaus) and institution levels."""

from flask_babel import lazy_gettext as _l

from core.data.datamodel import ScopedInterface
from core.web.views import ScopedModelRestApi, ScopedModelView
from domain.registry.grants import COUNTY, LEVEL
from models.registry.reference import County, InstitutionLevel

#: Codes (TPE, medical_center) are keys for the API and the seeds, never shown to a person:
#: lists, show pages, filters and exports name counties and levels; only the admin's own
#: add and edit forms carry the code, under a label that says what it is for.
COUNTY_LABELS = {
    "code": _l("System code (for data exchange)"),
    "name": _l("County"),
    "bureau_name": _l("Health bureau"),
    "sort_order": _l("Order"),
}
LEVEL_LABELS = {"code": _l("System code (for data exchange)"), "name": _l("Level"), "sort_order": _l("Order")}


class CountyView(ScopedModelView):
    """The 22 counties and cities with their health bureaus."""

    datamodel = ScopedInterface(County)
    class_permission_name = COUNTY
    list_title = show_title = _l("Counties and health bureaus")
    add_title = _l("Add county")
    edit_title = _l("Edit county")
    list_columns = ["name", "bureau_name"]
    show_columns = export_columns = ["name", "bureau_name", "sort_order"]
    add_columns = edit_columns = ["name", "bureau_name", "sort_order", "code"]
    search_columns = ["name", "bureau_name"]
    order_columns = ["sort_order", "name"]
    base_order = ("sort_order", "asc")
    label_columns = COUNTY_LABELS
    page_size = 25


class InstitutionLevelView(ScopedModelView):
    """Institution levels in the bulletin's order."""

    datamodel = ScopedInterface(InstitutionLevel)
    class_permission_name = LEVEL
    list_title = show_title = _l("Institution levels")
    add_title = _l("Add institution level")
    edit_title = _l("Edit institution level")
    list_columns = show_columns = export_columns = ["name", "sort_order"]
    add_columns = edit_columns = ["name", "sort_order", "code"]
    search_columns = ["name"]
    order_columns = ["sort_order", "name"]
    base_order = ("sort_order", "asc")
    label_columns = LEVEL_LABELS


class CountyApi(ScopedModelRestApi):
    """Counties over REST."""

    resource_name = "county"
    datamodel = ScopedInterface(County)
    class_permission_name = COUNTY
    list_columns = show_columns = ["id", "code", "name", "bureau_name", "sort_order"]
    add_columns = edit_columns = ["code", "name", "bureau_name", "sort_order"]
    search_columns = ["code", "name"]
    order_columns = ["sort_order", "code"]
    base_order = ("sort_order", "asc")
    label_columns = COUNTY_LABELS


class InstitutionLevelApi(ScopedModelRestApi):
    """Institution levels over REST."""

    resource_name = "institution_level"
    datamodel = ScopedInterface(InstitutionLevel)
    class_permission_name = LEVEL
    list_columns = show_columns = ["id", "code", "name", "sort_order"]
    add_columns = edit_columns = ["code", "name", "sort_order"]
    search_columns = ["code", "name"]
    order_columns = ["sort_order", "name"]
    base_order = ("sort_order", "asc")
    label_columns = LEVEL_LABELS
