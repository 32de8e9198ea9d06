#!/usr/bin/env bash
# Extract translatable strings from the installed Flask-AppBuilder package and
# from this app's own code into babel/messages.pot, then update (or create) the
# zh_Hant_TW catalog. Run from the repository root (/work/main):
#     bash babel/extract.sh
# Idempotent: when no msgid or location changed, messages.pot and
# messages.po are left byte-identical (POT-Creation-Date is not bumped).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYBABEL="${PYBABEL:-.venv/bin/pybabel}"
PYTHON="${PYTHON:-.venv/bin/python}"
LOCALE="zh_Hant_TW"
BABEL_DIR="babel"
CFG="$BABEL_DIR/babel.cfg"
POT="$BABEL_DIR/messages.pot"
TRANSLATIONS="$BABEL_DIR/translations"
PO="$TRANSLATIONS/$LOCALE/LC_MESSAGES/messages.po"

# Every keyword FAB and our code use to mark strings.
#  - lazy_formatter_gettext: FAB helper in flask_appbuilder.utils.base
#    (used for the user views' "roles"/"groups" descriptions).
KEYWORDS=(
  -k _ -k __ -k _l -k gettext -k lazy_gettext
  -k ngettext:1,2 -k lazy_ngettext:1,2
  -k lazy_formatter_gettext
)

# Installed Flask-AppBuilder package (python sources + templates).
FAB_DIR="$("$PYTHON" -c 'import flask_appbuilder, os; print(os.path.dirname(flask_appbuilder.__file__))')"
FAB_VERSION="$("$PYTHON" -c 'import flask_appbuilder; print(flask_appbuilder.__version__)')"
# Installed WTForms: its validator/field messages (field.gettext/ngettext)
# reach FAB forms; WTForms ships no zh_Hant_TW catalog (only zh_TW, which
# Flask-WTF never picks for the zh_Hant_TW locale, falling back to
# Simplified "zh"), so they are translated in our catalog too.
WTFORMS_DIR="$("$PYTHON" -c 'import wtforms, os; print(os.path.dirname(wtforms.__file__))')"

# FAB + WTForms, the FAB strings FAB never marks for translation (see
# babel/fab_extra_msgids.py), then our own code; directories/files that do
# not exist (yet) are skipped.
INPUTS=("$FAB_DIR" "$WTFORMS_DIR" "$BABEL_DIR/fab_extra_msgids.py")
for p in app.py worker.py core models domain views seed templates; do
  if [ -e "$p" ]; then
    INPUTS+=("$p")
  else
    echo "extract.sh: skipping missing input '$p'" >&2
  fi
done

# -F babel.cfg mapping patterns are matched relative to each input dir,
# so "**.py" and "**/templates/**.html" work for both FAB and the app.
# --ignore-dirs: skip FAB tests (if the wheel ever ships them), caches, venvs.
TMP_POT="$(mktemp "${TMPDIR:-/tmp}/messages.XXXXXX.pot")"
trap 'rm -f "$TMP_POT"' EXIT

"$PYBABEL" extract \
  -F "$CFG" \
  "${KEYWORDS[@]}" \
  --ignore-dirs ".* ._ __pycache__ tests test node_modules" \
  --sort-by-file \
  --no-wrap \
  --project "backoffice (Flask-AppBuilder $FAB_VERSION)" \
  --version "$FAB_VERSION" \
  -o "$TMP_POT" \
  "${INPUTS[@]}"

# Make the FAB/WTForms locations portable (site-packages differs per
# machine): "#: /abs/.../site-packages/flask_appbuilder/x.py:12" becomes
# "#: flask_appbuilder/x.py:12".  Then keep the previous messages.pot when
# nothing but its POT-Creation-Date changed, so that re-running the script
# leaves both messages.pot and messages.po byte-identical (idempotent).
"$PYTHON" - "$TMP_POT" "$POT" "$(dirname "$FAB_DIR")/" "$(dirname "$WTFORMS_DIR")/" <<'PY'
import os
import re
import shutil
import sys

tmp_pot, pot, prefixes = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(tmp_pot, encoding="utf-8") as f:
    text = f.read()
for prefix in prefixes:
    text = text.replace(prefix, "")
with open(tmp_pot, "w", encoding="utf-8") as f:
    f.write(text)


def strip_date(s):
    return re.sub(r'^"POT-Creation-Date: .*$', "", s, flags=re.M)


if os.path.exists(pot):
    with open(pot, encoding="utf-8") as f:
        if strip_date(f.read()) == strip_date(text):
            sys.exit(0)
shutil.copyfile(tmp_pot, pot)
PY

if [ -f "$PO" ]; then
  "$PYBABEL" update -i "$POT" -d "$TRANSLATIONS" -l "$LOCALE" \
    --no-fuzzy-matching --no-wrap --ignore-obsolete
else
  "$PYBABEL" init -i "$POT" -d "$TRANSLATIONS" -l "$LOCALE" --no-wrap
fi
echo "extract.sh: catalog at $PO"
