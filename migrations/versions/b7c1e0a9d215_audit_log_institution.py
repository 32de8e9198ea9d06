"""audit log: the institution each entry concerns, so the trail can be filtered by it

A changed row of an institution, or of a table with an institution_id (visits, contracts,
cases, ...), records that institution on its audit entry. Entries written before this
revision get it from their stored values (the Institution row's key, else the
institution_id in the values after or before the change).

Revision ID: b7c1e0a9d215
Revises: b7c8d9e0f1a2
Create Date: 2026-12-01 17:30:00.000000

"""
import re

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'b7c1e0a9d215'
down_revision = "b7c8d9e0f1a2"
branch_labels = None
depends_on = None


def _institution_of(model, row_key, before, after):
    if model == 'Institution':
        return int(row_key) if str(row_key).isdigit() else None
    for values in (after, before):
        value = (values or {}).get('institution_id') if isinstance(values, dict) else None
        if isinstance(value, int):
            return value
    return None


def upgrade():
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('institution_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_audit_institution', ['institution_id', 'id'], unique=False)
    audit = sa.table(
        'audit_log', sa.column('id', sa.Integer), sa.column('model', sa.String),
        sa.column('row_key', sa.String), sa.column('before', sa.JSON), sa.column('after', sa.JSON),
        sa.column('institution_id', sa.Integer),
    )
    conn = op.get_bind()
    last = 0
    while True:  # in batches: a long trail is not read into memory at once
        rows = conn.execute(
            sa.select(audit.c.id, audit.c.model, audit.c.row_key, audit.c.before, audit.c.after)
            .where(audit.c.id > last).order_by(audit.c.id).limit(5000)
        ).all()
        if not rows:
            break
        last = rows[-1][0]
        updates = [
            {'pk': r[0], 'inst': inst} for r in rows
            if (inst := _institution_of(r[1], r[2], r[3], r[4])) is not None
        ]
        if updates:
            conn.execute(
                audit.update().where(audit.c.id == sa.bindparam('pk'))
                .values(institution_id=sa.bindparam('inst')),
                updates,
            )


    # Updates store only what changed: take the institution from the row itself where it
    # still exists (model VisitRecord -> table visit_record, when it has an institution_id).
    inspector = sa.inspect(conn)
    tables = set(inspector.get_table_names())
    models = [r[0] for r in conn.execute(
        sa.select(audit.c.model).where(audit.c.institution_id.is_(None)).distinct()
    )]
    for model in models:
        table = re.sub(r'(?<!^)(?=[A-Z])', '_', model).lower()
        if table == 'audit_log' or table not in tables:
            continue
        if 'institution_id' not in {c['name'] for c in inspector.get_columns(table)}:
            continue
        target = sa.table(table, sa.column('id', sa.Integer), sa.column('institution_id', sa.Integer))
        owner = (
            sa.select(target.c.institution_id)
            .where(sa.cast(target.c.id, sa.String) == audit.c.row_key)
            .scalar_subquery()
        )
        conn.execute(
            audit.update()
            .where(audit.c.model == model, audit.c.institution_id.is_(None))
            .values(institution_id=owner)
        )


def downgrade():
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_institution')
        batch_op.drop_column('institution_id')
