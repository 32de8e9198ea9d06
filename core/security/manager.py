"""The application's security manager: scoped users, cached permission checks."""

from __future__ import annotations

import datetime as dt
import logging
import time

from flask import current_app, g
from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
from flask_appbuilder.models.sqla.filters import FilterNotEqual
from flask_appbuilder.security.api import SecurityApi
from flask_appbuilder.security.forms import UserInfoEdit
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_appbuilder.security.views import (
    AuthDBView,
    RoleModelView,
    UserDBModelView,
    UserInfoEditView,
)
from flask_appbuilder.widgets import ListWidget, ShowWidget
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import event, select
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired

from core.data.scope import ScopeKind
from core.data.versions import bump, request_memo, version
from core.extensions import cache
from core.security import sessions as accounts
from core.security.labels import SCOPE_KIND_CHOICES, scope_kind_label
from core.security.organisations import ORGANISATION_TYPES, OrganisationAllowed
from core.security.passwords import check_password
from core.security.roles import ROLE_LABELS, role_label
from core.web.openapi import fix_operation_spec
from models.platform.user import ScopedUser

log = logging.getLogger(__name__)

_VERSION_KEY = "security:version"


def security_version() -> int:
    """A token changed whenever users, roles or permissions change (cache key salt).

    Read from the shared cache once per request (core/data/versions.py): a list page checks
    a few dozen permissions (menu, buttons), and each read of the file cache is a file open
    + unpickle.
    """
    return version(_VERSION_KEY)


def bump_security_version() -> None:
    """Invalidate every cached permission set and scope, in every process."""
    bump(_VERSION_KEY)


#: API keys whose slow hash this process verified: (key id, key hash, lookup hash) -> when
#: (time.monotonic). Bounded; emptied when full.
_VERIFIED_API_KEYS: dict[tuple, float] = {}
_VERIFIED_API_KEYS_MAX = 1024
VERIFIED_API_KEY_SECONDS = 300


def _shared(kind: str, ident, load):
    """The value cached as `kind:<security version>:ident` in the shared cache (load() on a
    miss), read once per request; the key's text is only built on a miss of the memo."""
    token = security_version()

    def read():
        """The shared cache's value, loaded and stored on a miss."""
        text = ",".join(map(str, ident)) if isinstance(ident, tuple) else ident
        key = f"{kind}:{token}:{text}"
        value = cache.get(key)
        if value is None:
            value = load()
            cache.set(key, value, timeout=600)
        return value

    return request_memo((kind, token, ident), read)


# ------------------------------------------------ API tokens end with the session
#: Per account, the time before which its API tokens are void (set by logout and by every
#: password change). In the shared cache: Redis with REDIS_URL, else the file cache every
#: worker reads, like the table versions of core/data/counts.py.
_TOKENS_AFTER_KEY = "jwt-valid-after:{}"


def _absolute_seconds() -> float:
    return float(current_app.config["SESSION_ABSOLUTE_HOURS"]) * 3600


def _clamp_token_lifetimes(app) -> None:
    """A refresh token never outlives the session's absolute limit; nor an access token."""
    limit = dt.timedelta(hours=app.config["SESSION_ABSOLUTE_HOURS"])
    defaults = {"JWT_REFRESH_TOKEN_EXPIRES": limit, "JWT_ACCESS_TOKEN_EXPIRES": dt.timedelta(minutes=15)}
    for key, default in defaults.items():
        value = app.config.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            value = dt.timedelta(seconds=value)
        if not isinstance(value, dt.timedelta):  # False would mean "never expires"
            value = default
        app.config[key] = min(value, limit)


def token_claims() -> dict:
    """Claims added to every token FAB issues: `issued` (iat to the microsecond, so a token
    issued just after a revocation in the same second survives it) and `auth_time` (when
    the password was checked), which a refreshed access token inherits from its refresh
    token, so that no chain of refreshes outlives SESSION_ABSOLUTE_HOURS."""
    from flask import has_request_context, request
    from flask_jwt_extended import get_jwt

    now = time.time()
    auth_time = now
    if has_request_context() and request.path.endswith("/security/refresh"):
        try:
            auth_time = float(get_jwt().get("auth_time", get_jwt().get("iat", now)))
        except (RuntimeError, TypeError, ValueError):
            auth_time = now
    return {"issued": now, "auth_time": auth_time}


def tokens_valid_after(user_id) -> float:
    return float(cache.get(_TOKENS_AFTER_KEY.format(user_id)) or 0.0)


def revoke_api_tokens(user_id) -> None:
    """Void every access and refresh token of this account issued until now, in every worker.

    The mark lives as long as the longest token could: past the absolute limit every token
    issued before it is refused by its `auth_time` anyway.
    """
    if user_id is None:
        return
    cache.set(
        _TOKENS_AFTER_KEY.format(user_id), time.time(), timeout=int(_absolute_seconds()) + 3600
    )


def token_revoked(payload: dict) -> bool:
    """True for a token issued before its account's last logout or password change, or
    authenticated longer ago than the session's absolute limit."""
    issued = payload.get("issued", payload.get("iat", 0))
    auth_time = payload.get("auth_time", payload.get("iat", 0))
    try:
        issued, auth_time = float(issued), float(auth_time)
    except (TypeError, ValueError):
        return True
    if time.time() - auth_time > _absolute_seconds():
        return True
    return issued <= tokens_valid_after(payload.get("sub"))


def _role_label(name: str) -> str:
    return role_label(name)


#: FAB's built-in anonymous role: it holds no permission here, so no screen offers it.
PUBLIC_ROLE = "Public"


def _without(columns, *names):
    return [c for c in columns if c not in names]


def _relabel(form, name: str, **kwargs) -> None:
    """Change the options of a generated form's field (its label function, its blank text)."""
    field = getattr(form, name, None) if form is not None else None
    if field is not None and hasattr(field, "kwargs"):
        field.kwargs.update(kwargs)


def _role_option(role) -> str:
    return role_label(role.name)


class ScopedUserDBModelView(UserDBModelView):
    """FAB's user admin, with the data-scope fields of our user model. One name field (姓名:
    Chinese names are not first and last names), no groups, no LDAP/OID help, role labels."""

    _scope_cols = ["scope_kind", "scope_county", "scope_institutions"]
    list_columns = ["username", "first_name", "email", "active", "roles", "scope_kind"]
    add_columns = _without(UserDBModelView.add_columns, "last_name", "groups") + ["organisation_type", *_scope_cols]
    edit_columns = _without(UserDBModelView.edit_columns, "last_name", "groups") + ["organisation_type", *_scope_cols]
    show_columns = [
        "username", "first_name", "email", "active", "roles",
        *_scope_cols, "last_login", "login_count", "fail_login_count",
    ]  # fmt: skip
    search_columns = ["username", "first_name", "email", "active", "roles"]
    user_show_fieldsets = [
        (_l("User info"), {"fields": ["username", "active", "roles", "login_count"]}),
        (_l("Personal Info"), {"fields": ["first_name", "email"], "expanded": True}),
    ]
    show_fieldsets = [
        (_l("User info"), {"fields": ["first_name", "username", "email", "active", "roles", *_scope_cols]}),
        (_l("Audit Info"), {"fields": ["last_login", "login_count", "fail_login_count", "created_on", "changed_on"]}),
    ]
    label_columns = {
        **UserDBModelView.label_columns,
        "first_name": _l("Full name"),
        "scope_kind": _l("Scope"),
        "scope_county": _l("Scope county"),
        "scope_institutions": _l("Scope institutions"),
        "organisation_type": _l("Organisation type"),
    }
    description_columns = {
        "first_name": _l("The person's full name, as it is written."),
        "username": _l("The name used to sign in."),
        "email": _l("The account's e-mail address: links to set the password are sent here."),
        "active": _l("An account that is no longer used is deactivated rather than deleted."),
        "roles": _l("The roles decide which screens and data the account may use."),
    }
    # FAB's roles-or-groups check reads the groups field, which is not offered.
    validators_columns = {"roles": [DataRequired(message=_l("Choose at least one role."))]}
    add_form_query_rel_fields = edit_form_query_rel_fields = {
        "roles": [["name", FilterNotEqual, PUBLIC_ROLE]],
    }
    add_form_extra_fields = {
        **UserDBModelView.add_form_extra_fields,
        "scope_kind": SelectField(_l("Scope"), choices=SCOPE_KIND_CHOICES, default=""),
        # A1: prosecutors' offices and NGOs never get an account (core/security/organisations.py).
        "organisation_type": SelectField(
            _l("Organisation type"), choices=ORGANISATION_TYPES, default=ORGANISATION_TYPES[0][0],
            validators=[OrganisationAllowed()],
        ),
    }
    edit_form_extra_fields = {
        "scope_kind": SelectField(_l("Scope"), choices=SCOPE_KIND_CHOICES, default=""),
        "organisation_type": SelectField(
            _l("Organisation type"), choices=ORGANISATION_TYPES, default=ORGANISATION_TYPES[0][0],
            validators=[OrganisationAllowed()],
        ),
    }
    formatters_columns = {
        "scope_kind": scope_kind_label,
        "roles": lambda roles: "、".join(_role_label(r.name) for r in roles or []),
        "active": lambda v: _l("Yes") if v else _l("No"),
    }

    def _init_forms(self):
        super()._init_forms()
        for form in (self.add_form, self.edit_form):
            _relabel(form, "roles", get_label=_role_option)
            _relabel(form, "scope_county", blank_text=_l("(none)"))

    def prefill_form(self, form, pk):
        # One name field: an account created with FAB's two fields shows its whole name.
        item = self.datamodel.get(pk)
        if item is not None and item.last_name:
            form.first_name.data = " ".join(filter(None, [item.first_name, item.last_name]))

    def _normalise_scope(self, item):
        if not item.scope_kind:
            item.scope_kind = None
        if item.scope_kind != ScopeKind.COUNTY:
            item.scope_county = None
        if item.scope_kind != ScopeKind.FACILITY:
            item.scope_institutions = []
        item.last_name = ""  # the whole name is in first_name (姓名)

    def process_form(self, form, is_created):
        # The organisation type is checked (OrganisationAllowed), not stored.
        del form.organisation_type

    def pre_add(self, item):
        self._normalise_scope(item)
        super().pre_add(item)

    def pre_update(self, item):
        self._normalise_scope(item)
        super().pre_update(item)


class OneNameUserInfoEdit(UserInfoEdit):
    """A user's own profile form with one name field (姓名), as the admin's user form."""

    first_name = StringField(_l("Full name"), validators=[DataRequired()], widget=BS3TextFieldWidget())
    last_name = None  # WTForms: a field set to None is removed from the subclass


class OneNameUserInfoEditView(UserInfoEditView):
    """FAB's own-profile page with the one-name form; its permissions keep FAB's name."""

    class_permission_name = "UserInfoEditView"
    route_base = "/userinfoeditview"
    form = OneNameUserInfoEdit

    def form_get(self, form):
        super().form_get(form)
        item = self.appbuilder.sm.get_user_by_id(g.user.id)
        form.first_name.data = " ".join(filter(None, [item.first_name, item.last_name]))

    def form_post(self, form):
        item = self.appbuilder.sm.get_user_by_id(g.user.id)
        item.last_name = ""  # the whole name is now in first_name
        super().form_post(form)


def permission_label(permission_view) -> str:
    """'讀取：特約機構' instead of FAB's raw 'can read on Institution'."""
    from core.security.labels import permission_label as label

    return label(permission_view)


class ScopedRoleModelView(RoleModelView):
    """FAB's role admin, listing roles by their labels and permissions in words rather than
    identifiers; the unused anonymous role is not listed."""

    # FAB's RoleListWidget renders permissions itself and ignores formatters.
    list_widget = ListWidget
    show_widget = ShowWidget
    base_filters = [["name", FilterNotEqual, PUBLIC_ROLE]]
    search_columns = ["name", "permissions"]  # no users or groups by their FAB names
    label_columns = {**RoleModelView.label_columns, "name": _l("Role")}

    formatters_columns = {
        "name": lambda name: _role_label(name),
        "permissions": lambda pvs: "、".join(sorted(permission_label(pv) for pv in pvs or [])),
    }

    def _init_forms(self):
        super()._init_forms()
        for form in (self.add_form, self.edit_form):
            _relabel(form, "permissions", get_label=permission_label)

    def prefill_form(self, form, pk):
        """The edit form names the role as every screen does; a built-in role's stored name
        (what domain/*/grants.py and `flask init` know it by) is shown read-only beside it."""
        role = self.datamodel.get(pk)
        if role is None:
            return
        form.name.label.text = gettext("System name of the role")
        if role.name in ROLE_LABELS:
            form.name.render_kw = {**(form.name.render_kw or {}), "readonly": True}
            form.name.description = gettext(
                "Shown to users as %(label)s. The system name ties the role to its permissions "
                "and cannot be changed.", label=role_label(role.name),
            )

    def pre_update(self, item):
        """Refuse renaming a built-in role: the permission sync would no longer find it."""
        from sqlalchemy import inspect

        history = inspect(item).attrs.name.history
        old = history.deleted[0] if history.deleted else item.name
        if old in ROLE_LABELS and item.name != old:
            # FAB has already copied the form onto the row: undo it all (the permissions too),
            # or the next commit of this request would save what was refused.
            self.datamodel.session.rollback()
            raise ValueError(gettext(
                "The system name of the role %(label)s cannot be changed.", label=role_label(old)
            ))
        super().pre_update(item)


class LockoutAwareAuthDBView(AuthDBView):
    """FAB's login page; after too many failures it says the account is locked.

    The same words appear for usernames that do not exist (they are counted too), so the
    page never tells whether an account exists.
    """

    @property
    def invalid_login_message(self):
        if g.get("login_locked"):
            return _l(
                "Too many failed logins: this account is locked for 15 minutes. "
                "Contact the helpdesk if you need it sooner."
            )
        return _l("Invalid login. Please try again.")


class DocumentedSecurityApi(SecurityApi):
    """FAB's /api/v1/security/login and /refresh, documented as they answer: a 400 carries
    per-field messages (an object), as for every other API (core.web.views.fix_operation_spec)."""

    def operation_helper(self, path=None, operations=None, methods=None, func=None, **kwargs):
        super().operation_helper(path=path, operations=operations, methods=methods, func=func, **kwargs)
        for spec in operations.values():
            fix_operation_spec(spec, path or "")


class AppSecurityManager(SecurityManager):
    """Loads users as ScopedUser everywhere and caches role permissions across requests."""

    security_api = DocumentedSecurityApi

    def get_user_by_id(self, pk):
        """The signed-in user with their roles, the browser session's row and the ids of
        their scope's institutions, in one statement: every page reads the roles
        (permissions, menu, site name), which FAB's session.get loaded lazily as a second
        statement per request (measured on the course page: 9 statements → 8); the session
        check (sessions.session_is_valid) then finds its row in the identity map, and the
        scope (core/data/scope.py) its institution ids on the user, instead of a statement
        each. All three are read afresh on every request: a revoked or timed-out session and
        a changed scope take effect at the next one. Measured (demo scale, SQLite, CPU per
        request, median of 30, loaded 2-core machine): the login part of every page
        3.5 → 2.3 ms, a facility account's scope 1.2 → 0.05 ms; one statement fewer on
        every page, two for a facility account."""
        if pk is None:
            return None
        sid = accounts.request_session_id()
        parameters = {"user_id": pk} if sid is None else {"user_id": pk, "session_id": sid}
        row = self.session.execute(self._user_statement(sid is not None), parameters).unique().one_or_none()
        if row is None:
            return None
        user = row[0]
        if isinstance(user, ScopedUser):  # read by core/data/scope.py (dropped on expiry)
            user.__dict__["loaded_scope_institution_ids"] = frozenset(
                int(i) for i in (row[1] or "").split(",") if i
            )
        if sid is not None:
            # The identity map holds rows weakly: referenced from the user, the session row
            # stays there for session_is_valid's get (else it is collected and read again).
            user.__dict__["loaded_session_row"] = row[2]
        return user

    def _user_statement(self, with_session: bool):
        """get_user_by_id's statement, built once per process (with and without the browser
        session's row), the ids bound at each execution: building it on every request was
        0.3-0.4 ms CPU of the ~2 ms the user load takes (demo scale, SQLite, loaded machine)."""
        statements = self.__dict__.setdefault("_user_statements", {})
        statement = statements.get(with_session)
        if statement is not None:
            return statement
        from sqlalchemy import String, bindparam, cast, func
        from sqlalchemy.orm import joinedload

        from models.platform.session import UserSession
        from models.platform.user import user_institution
        from models.registry.institution import Institution

        model = self.user_model
        link = user_institution.c
        scope_ids = (
            select(func.aggregate_strings(cast(link.institution_id, String), ","))
            .join(Institution, Institution.id == link.institution_id)
            .where(link.user_id == model.id)
            .scalar_subquery()
        )
        statement = (
            select(model, scope_ids).options(joinedload(model.roles))
            .where(model.id == bindparam("user_id"))
        )  # fmt: skip
        if with_session:
            statement = statement.add_columns(UserSession).outerjoin(
                UserSession, UserSession.id == bindparam("session_id")
            )
        # populate_existing: rows already in the identity map (a long test context, a second
        # load in one request) are overwritten with what the database holds now.
        statements[with_session] = statement.execution_options(populate_existing=True)
        return statements[with_session]

    def create_jwt_manager(self, app):
        """A malformed or forged token is a 401 like a missing one (flask-jwt-extended
        answers 422 by default, which no client reads as "sign in again"); so is a revoked
        or expired one. Tokens end with the session (issue 12): see `token_revoked`."""
        from flask import jsonify

        _clamp_token_lifetimes(app)
        jwt_manager = super().create_jwt_manager(app)

        @jwt_manager.invalid_token_loader
        def _invalid(reason):
            return jsonify(message=reason), 401

        @jwt_manager.additional_claims_loader
        def _claims(identity):
            return token_claims()

        @jwt_manager.token_in_blocklist_loader
        def _in_blocklist(jwt_header, jwt_payload):
            return token_revoked(jwt_payload)

        def _ended(jwt_header, jwt_payload):
            return jsonify(message=gettext("Your session has ended. Please sign in again.")), 401

        jwt_manager.revoked_token_loader(_ended)
        jwt_manager.expired_token_loader(_ended)
        return jwt_manager
    user_model = ScopedUser
    # FAB's user statistics chart loads Google's chart script from the internet: not offered.
    userstatschartview = None
    userinfoeditview = OneNameUserInfoEditView
    userdbmodelview = ScopedUserDBModelView
    rolemodelview = ScopedRoleModelView
    authdbview = LockoutAwareAuthDBView

    def __init__(self, appbuilder):
        super().__init__(appbuilder)
        session = appbuilder.session
        if not event.contains(session, "after_flush", _bump_on_security_change):
            event.listen(session, "after_flush", _bump_on_security_change)

    # -- logins: one lockout counter for the web form, the API login and API keys --
    def auth_user_db(self, username, password):
        from core.extensions import db
        g.login_locked = False
        known = self.find_user(username=username) if username else None
        known_id = getattr(known, "id", None)
        if accounts.is_locked(username):
            g.login_locked = True
            accounts.record_event("login_refused", known_id, username, reason="locked")
            db.session.commit()
            return None
        demo = current_app.config.get("DEMO_PASSWORD")
        if not current_app.config.get("DEMO_MODE") and password == demo:
            user = None  # demo passwords stop working outside demo mode
        else:
            user = super().auth_user_db(username, password)
        if user is None:
            locked = accounts.register_failure(username)
            accounts.record_event("login_failed", known_id, username)
            from core.ops import count_failed_login

            count_failed_login()  # the Prometheus counter (issue 20)
            if locked:
                g.login_locked = True
                accounts.record_event("locked", known_id, username)
            db.session.commit()
            return None
        accounts.clear_failures(username)
        accounts.record_event("login", user.id, user.username)
        db.session.commit()
        return user

    # -- passwords: the policy holds on every path, CLI and API included --
    def add_user(self, username, first_name, last_name, email, role, password="", **kwargs):
        if password:
            check_password(password, username)
        return super().add_user(username, first_name, last_name, email, role, password, **kwargs)

    def reset_password(self, userid, password):
        """Every password change (own form, admin reset, one-time link, CLI) comes here:
        the policy holds, and the account's API tokens stop working."""
        user = self.get_user_by_id(userid)
        check_password(password, getattr(user, "username", None))
        result = super().reset_password(userid, password)
        revoke_api_tokens(userid)
        return result

    # -- API keys: FAB returns api_key.user, an instance of its base User (trap 2) --
    def validate_api_key(self, api_key_string):
        """FAB's check (the row found by its keyed lookup hash, then the key's slow scrypt
        hash, then the key and its user active), with the slow hash verified once per key and
        process for VERIFIED_API_KEY_SECONDS: FAB ran both scrypts on every request, and the
        slow one (n=2**15) cost 0.15-0.5 s of each HIS batch. The lookup hash is a keyed
        256-bit hash of the whole key, so a string with the same lookup hash is the same
        string; the row (revoked, expired, inactive) and the user are read on every request."""
        from werkzeug.security import check_password_hash

        lookup = self._compute_lookup_hash(api_key_string)
        api_key = self.session.query(self.api_key_model).filter(self.api_key_model.lookup_hash == lookup).one_or_none()
        if api_key is None:
            return None
        memo, now = (api_key.id, api_key.key_hash, lookup), time.monotonic()
        checked = _VERIFIED_API_KEYS.get(memo)
        if checked is None or now - checked > VERIFIED_API_KEY_SECONDS:
            if not check_password_hash(api_key.key_hash, api_key_string):
                log.warning("API key lookup hash matched but slow hash failed")
                return None
            if len(_VERIFIED_API_KEYS) >= _VERIFIED_API_KEYS_MAX:
                _VERIFIED_API_KEYS.clear()
            _VERIFIED_API_KEYS[memo] = now
        if not api_key.is_active:
            return None
        user = self.session.get(self.user_model, api_key.user_id)
        if not isinstance(user, self.user_model):
            # Same identity already loaded as the base class: reload it as ours.
            self.session.expunge(user)
            user = self.session.get(self.user_model, api_key.user_id)
        if user is None or not user.is_active or accounts.is_locked(user.username):
            g.pop("user", None)
            g.pop("_api_key_user", None)
            return None
        api_key.last_used_on = dt.datetime.now()
        self.session.commit()
        g.user = user
        g._api_key_user = True
        return user

    # -- permission checks: one cached set per role combination, not a query per check --
    def _role_ids(self, user) -> tuple[int, ...]:
        if user is None or not getattr(user, "is_authenticated", False):
            return _shared("roles", "public", self._public_role_ids)
        return _shared(
            "roles", user.id, lambda: tuple(sorted({r.id for r in self.get_user_roles(user)}))
        )

    def _public_role_ids(self) -> tuple[int, ...]:
        """The anonymous user's role ids (the public role's, if there is one)."""
        public = self.get_public_role()
        return (public.id,) if public else ()

    def permissions_for_roles(self, role_ids: tuple[int, ...]) -> frozenset[tuple[str, str]]:
        return _shared("perms", role_ids, lambda: self._load_permissions(role_ids))

    def _load_permissions(self, role_ids) -> frozenset[tuple[str, str]]:
        if not role_ids:
            return frozenset()
        from flask_appbuilder.security.sqla.models import (
            Permission,
            PermissionView,
            ViewMenu,
            assoc_permissionview_role,
        )

        rows = self.session.execute(
            select(Permission.name, ViewMenu.name)
            .select_from(PermissionView)
            .join(Permission, Permission.id == PermissionView.permission_id)
            .join(ViewMenu, ViewMenu.id == PermissionView.view_menu_id)
            .join(
                assoc_permissionview_role,
                assoc_permissionview_role.c.permission_view_id == PermissionView.id,
            )
            .where(assoc_permissionview_role.c.role_id.in_(role_ids))
        ).all()
        return frozenset((p, v) for p, v in rows)

    def _has_view_access(self, user, permission_name, view_name) -> bool:
        return (permission_name, view_name) in self.permissions_for_roles(self._role_ids(user))

    def is_item_public(self, permission_name, view_name) -> bool:
        return (permission_name, view_name) in self.permissions_for_roles(self._role_ids(None))

    def _get_user_permission_view_menus(self, user, permission_name, view_menus_name):
        perms = self.permissions_for_roles(self._role_ids(user))
        return {name for name in view_menus_name if (permission_name, name) in perms}


def _bump_on_security_change(session, flush_context):
    from flask_appbuilder.security.sqla.models import (
        Group,
        Permission,
        PermissionView,
        Role,
        User,
        ViewMenu,
    )
    from sqlalchemy import inspect

    watched = (Role, PermissionView, Permission, ViewMenu, Group)
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, watched) or (isinstance(obj, User) and obj in session.deleted):
            bump_security_version()
            return
        if isinstance(obj, User) and obj in session.dirty:
            state = inspect(obj)
            # Login bookkeeping (last_login, counters) must not flush every cache.
            if any(
                key in state.attrs and state.attrs[key].history.has_changes()
                for key in _USER_SCOPE_ATTRS
            ):
                bump_security_version()
                return


_USER_SCOPE_ATTRS = (
    "roles", "groups", "active", "scope_kind", "scope_county_id", "scope_county",
    "scope_institutions",
)  # fmt: skip


# --------------------------------------------------------------- HTTP hardening
#: Every page's Content-Security-Policy. FAB's templates and ours carry a nonce on each
#: inline <script> (baselib.get_nonce), so scripts need no 'unsafe-inline'; FAB's markup
#: has style="…" attributes, which no nonce can cover, hence 'unsafe-inline' for styles.
#: Nothing is loaded from another origin.
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data:",
    "font-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
#: Writes under /api/ that a session cookie could authorise.
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: API endpoints that never act on the session's identity (they take a password or a
#: refresh token), so a cookie rides along harmlessly.
_CSRF_FREE_API_PATHS = ("/api/v1/security/login", "/api/v1/security/refresh")


def install_http_security(app, appbuilder) -> None:
    """Security headers on every response, CSRF on cookie-authenticated API writes, and
    zh_TW answers for a too-large request and a refused CSRF token."""
    from flask import jsonify, render_template, request
    from flask_login import current_user
    from flask_talisman import Talisman
    from flask_wtf.csrf import CSRFError
    from werkzeug.exceptions import RequestEntityTooLarge

    from core.extensions import csrf

    https = bool(app.config.get("FORCE_HTTPS") or app.config.get("SESSION_COOKIE_SECURE"))
    Talisman(
        app,
        force_https=bool(app.config.get("FORCE_HTTPS")),
        strict_transport_security=https,
        strict_transport_security_max_age=app.config.get("HSTS_SECONDS", 365 * 24 * 3600),
        strict_transport_security_include_subdomains=False,
        frame_options="DENY",
        content_security_policy=CONTENT_SECURITY_POLICY,
        content_security_policy_nonce_in=["script-src"],
        referrer_policy="strict-origin-when-cross-origin",
        permissions_policy={"camera": "()", "microphone": "()", "geolocation": "()", "browsing-topics": "()"},
        # Talisman would force these cookie flags on; the app's own settings decide.
        session_cookie_secure=bool(app.config.get("SESSION_COOKIE_SECURE")),
        session_cookie_http_only=True,
        session_cookie_samesite=app.config.get("SESSION_COOKIE_SAMESITE", "Lax"),
        x_xss_protection=False,
    )

    @app.before_request
    def _csrf_for_cookie_api_writes():
        """FAB exempts every API blueprint from CSRF (BaseApi.csrf_exempt), so a page on
        another site could make a signed-in browser write through /api/v1/ with its cookie.
        A write that carries no Authorization header is authorised by the cookie alone:
        it needs the CSRF token (X-CSRFToken header). A bearer token (JWT or API key) is
        never sent by a browser on its own, so such writes need none."""
        if request.method not in _WRITE_METHODS or not request.path.startswith("/api/"):
            return None
        if request.path.rstrip("/") in _CSRF_FREE_API_PATHS:
            return None
        if request.headers.get("Authorization", "").strip():
            return None
        if not current_user.is_authenticated:
            return None  # nothing for a cookie to authorise: FAB answers 401
        csrf.protect()
        return None

    def _back_url() -> str:
        referrer = request.referrer or ""
        if referrer.startswith(request.host_url):
            return referrer
        return appbuilder.get_url_for_index

    def _message_page(message: str, status: int):
        html = render_template(
            "errors/message.html",
            message=message,
            back_url=_back_url(),
            base_template=appbuilder.base_template,
            appbuilder=appbuilder,
        )
        return html, status

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc):
        limit = app.config.get("MAX_CONTENT_LENGTH") or 0
        message = gettext(
            "What you sent is too large: at most %(mb)d MB can be sent at once. "
            "Please send smaller or fewer files.",
            mb=max(1, limit // (1024 * 1024)),
        )
        if request.path.startswith("/api/"):
            return jsonify(message=message), 413
        return _message_page(message, 413)

    @app.errorhandler(CSRFError)
    def _csrf_refused(exc):
        if request.path.startswith("/api/"):
            message = gettext(
                "This request needs the security token of your session (X-CSRFToken header), "
                "or a bearer token."
            )
            return jsonify(message=message), 400
        message = gettext(
            "The form has expired or its security token is missing. "
            "Please reload the page and try again."
        )
        return _message_page(message, 400)
