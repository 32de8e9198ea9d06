"""Flask extensions, created unbound and initialised by the app factory."""

from flask_appbuilder.models.sqla import Model
from flask_appbuilder.models.sqla.base import SQLA
from flask_caching import Cache
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect

# One metadata for FAB's tables and ours, so Alembic sees them all (trap 5).
db = SQLA(model_class=Model)
migrate = Migrate()
csrf = CSRFProtect()
cache = Cache()
