"""Form fields: ROC dates in, ROC dates out."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import Field
from wtforms.validators import ValidationError
from wtforms.widgets import TextInput

from core.dates import DateFormatError, parse_date, to_roc


class RocDateWidget(TextInput):
    """A text input with an ROC-date hint instead of a Gregorian date picker.

    (FAB's BS3TextFieldWidget would overwrite the placeholder with the field's label.)
    """

    def __call__(self, field, **kwargs):
        kwargs.setdefault("class", "form-control")
        kwargs["placeholder"] = str(_l("e.g. 114/04/01"))
        kwargs.setdefault("autocomplete", "off")
        return super().__call__(field, **kwargs)


class RocDateField(Field):
    """Accepts 114/4/1, 114/04/01, 1140401 or 2025-04-01; shows 114/04/01."""

    widget = RocDateWidget()

    def __init__(self, label=None, validators=None, **kwargs):
        super().__init__(label, validators, **kwargs)
        self._parse_error = None

    def _value(self):
        if self.raw_data:
            return " ".join(self.raw_data)
        return to_roc(self.data) if self.data else ""

    def process_formdata(self, valuelist):
        self._parse_error = None
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        try:
            self.data = parse_date(valuelist[0])
        except DateFormatError as exc:
            self.data = None
            self._parse_error = str(exc)

    def pre_validate(self, form):
        if self._parse_error:
            raise ValidationError(self._parse_error)
