"""Extra msgids that Flask-AppBuilder 5.3 shows to users but never marks for
translation (or marks in a way extraction cannot see).

This module is never imported by the application: ``babel/extract.sh`` only
scans it so that these strings land in ``messages.pot`` and get a
zh_Hant_TW translation.  They take effect in three different ways:

1. Runtime lookups FAB already does on a *computed* string (work as soon as
   the msgid is in the catalog, no override needed):
   - ``lazy_formatter_gettext`` in ``security/views.py`` appends an HTML
     warning to the roles/groups descriptions when
     ``AUTH_ROLES_SYNC_AT_LOGIN`` is on, then calls ``gettext`` on the
     concatenation; the exact concatenated strings are listed below.
   (WTForms' own messages are not listed here: extract.sh scans the
   installed WTForms package directly.)
2. Strings for template overrides the app has to add (``confirm.html``,
   ``alert.html``, ``chart_time.html``, ``widgets/chart.html``,
   ``register_mail.html``): the override wraps them with ``_()``.
3. Labels/flash messages hard-coded in FAB's Python code: the app's view
   subclasses / security manager overrides use these msgids with
   ``lazy_gettext``.

Keep every string byte-identical to FAB's source.
"""


def _(string: str) -> str:  # extraction marker only
    return string


FAB_UNWRAPPED_MSGIDS = [
    # -- (1) security/views.py:146-154 + 196-205, _roles_custom_formatter ----
    _(
        "The user role on the application, this will associate with a list of"
        " permissions. <div class='alert alert-warning' role='alert'>"
        "AUTH_ROLES_SYNC_AT_LOGIN is enabled, changes to this field will not"
        " persist between user logins.</div>"
    ),
    _(
        "The user group on the application, this will associate with a list of"
        " roles associated with the group. <div class='alert alert-warning'"
        " role='alert'>AUTH_ROLES_SYNC_AT_LOGIN is enabled, changes to this"
        " field will not persist between user logins.</div>"
    ),
    # -- (2) templates/appbuilder/general/confirm.html:13-14, alert.html:8 ----
    _("Cancel"),
    _("OK"),
    # -- (2) templates/appbuilder/general/charts/chart_time.html:20,23 --------
    _("Month"),
    _("Year"),
    # -- (2) templates/appbuilder/general/widgets/chart.html:56 ---------------
    _("Count"),
    # -- (2) templates/appbuilder/general/security/register_mail.html ---------
    _("Activation Email"),
    _("Hello"),
    _("Please go to activation page to finish your registration,"),
    _("your username is"),
    _("Follow this link to activate"),
    # -- (3) security/views.py:466,468 (UserStatsChartView.definitions) -------
    _("Login Count"),
    _("Failed Login Count"),
    # -- (3) security/views.py (OAuth / SAML flash messages) ------------------
    _("Provider not supported."),
    _("The request to sign in was denied."),
    _("You denied the request to sign in."),
    _("You are not authorized."),
    _("Invalid state signature"),
    _("Could not determine identity provider."),
    # -- (3) views.py:202 flash(f"An error occurred: {exc}") ------------------
    _("An error occurred: %(error)s"),
    # -- (3) static/appbuilder/js/ab_actions.js:27 ab_alert('No row selected')
    _("No row selected"),
    # -- (3) column labels FAB leaves to _prettify_name (no label_columns for
    #        these columns): UserGroupModelView (security/views.py:538),
    #        RegisterUserModelView (security/views.py:560), RoleModelView search
    #        form ("user", "groups"), UserStatsChartView search form
    #        (security/views.py:456) ------------------------------------------
    _("Label"),
    _("Description"),
    _("User"),
    _("Users"),
    _("Roles"),
    _("Registration Date"),
    _("Registration Hash"),
    _("Active"),
    _("Created On"),
    _("Changed On"),
    _("Last Login"),
]
