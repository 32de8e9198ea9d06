"""SQLite: AUTOINCREMENT on every table the audit trail keys on (issue 12, class 9)

Without AUTOINCREMENT SQLite hands a deleted row's id to the next insert, so the audit
trail's (model, row_key) would name two different records. PostgreSQL sequences never
reuse a value: there this migration does nothing.

Revision ID: 5ec0a1d7c9e4
Revises: b12e0a1f7c01
Create Date: 2026-05-01 10:00:00
"""
from alembic import op

revision = '5ec0a1d7c9e4'
down_revision = 'b12e0a1f7c01'
branch_labels = None
depends_on = None

#: Audited tables (models.base.AppModel) and ab_user (account events key on the user id).
TABLES = (
    'ab_user', 'county', 'institution_level', 'institution', 'contract_period',
    'practitioner', 'service_assignment', 'quitter', 'visit', 'account_application',
    'correction_ticket', 'correction_line', 'correction_attachment', 'correction_transition',
)


def _needs_rebuild(bind, table: str) -> bool:
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).scalar()
    return sql is not None and 'AUTOINCREMENT' not in sql.upper()


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        return
    if bind.exec_driver_sql('PRAGMA foreign_keys').scalar():
        # migrations/env.py turns them off; with them on, dropping the old table would
        # cascade-delete or null the rows that refer to it.
        raise RuntimeError('foreign keys must be off while tables are rebuilt')
    for table in TABLES:
        if _needs_rebuild(bind, table):
            with op.batch_alter_table(
                table, recreate='always', table_kwargs={'sqlite_autoincrement': True}
            ):
                pass


def downgrade():
    # AUTOINCREMENT is harmless to keep; the earlier schema did not depend on its absence.
    pass
