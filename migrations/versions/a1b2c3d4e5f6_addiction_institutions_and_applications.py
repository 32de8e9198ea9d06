"""addiction institutions and applications (A1): non-hospital institutions without an NHI code

An institution gets a kind (medical, psychotherapy clinic, social-worker office) and a
registry code of the system's own; the NHI code and the level become optional except for
medical institutions (CHECKs), and one of the two codes is always there. An account
application may ask for an addiction role and carries the national ID and professions that
link the approved account to a staff profile.

Revision ID: a1b2c3d4e5f6
Revises: 366faee71a20
Create Date: 2026-12-01 15:10:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'a1b2c3d4e5f6'
down_revision = '366faee71a20'
branch_labels = None
depends_on = None

_KINDS = "'medical', 'psychotherapy_clinic', 'social_work_office'"


def upgrade():
    with op.batch_alter_table('institution', schema=None, **_kept('institution')) as batch_op:
        batch_op.add_column(sa.Column('registry_code', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('kind', sa.String(length=30), nullable=False,
                                      server_default='medical'))
        batch_op.alter_column('nhi_code', existing_type=sa.String(length=10), nullable=True)
        batch_op.alter_column('level_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_unique_constraint('uq_institution_registry_code', ['registry_code'])
        batch_op.drop_constraint('ck_institution_nhi_code', type_='check')
        batch_op.create_check_constraint(
            'ck_institution_nhi_code', 'nhi_code IS NULL OR (length(nhi_code) = 10)')
        batch_op.create_check_constraint('ck_institution_kind', f'kind IS NULL OR (kind IN ({_KINDS}))')
        batch_op.create_check_constraint(
            'ck_institution_medical_code',
            "kind <> 'medical' OR (nhi_code IS NOT NULL AND level_id IS NOT NULL)")
        batch_op.create_check_constraint(
            'ck_institution_code', 'nhi_code IS NOT NULL OR registry_code IS NOT NULL')
    with op.batch_alter_table('account_application', schema=None,
                              **_kept('account_application')) as batch_op:
        batch_op.add_column(sa.Column('national_id', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('professions', sa.String(length=200), nullable=True))


def downgrade():
    # Institutions without an NHI code (or a level) cannot exist before this revision: they
    # go, with the rows that name them (found from the schema, so every table is covered).
    doomed = "SELECT id FROM institution WHERE nhi_code IS NULL OR level_id IS NULL"
    inspector = sa.inspect(op.get_bind())
    for table in inspector.get_table_names():
        for fk in inspector.get_foreign_keys(table):
            if fk['referred_table'] == 'institution' and table != 'institution':
                column = fk['constrained_columns'][0]
                op.execute(f"DELETE FROM {table} WHERE {column} IN ({doomed})")
    op.execute(f"DELETE FROM institution WHERE id IN ({doomed})")
    with op.batch_alter_table('account_application', schema=None,
                              **_kept('account_application')) as batch_op:
        batch_op.drop_column('professions')
        batch_op.drop_column('national_id')
    with op.batch_alter_table('institution', schema=None, **_kept('institution')) as batch_op:
        batch_op.drop_constraint('ck_institution_code', type_='check')
        batch_op.drop_constraint('ck_institution_medical_code', type_='check')
        batch_op.drop_constraint('ck_institution_kind', type_='check')
        batch_op.drop_constraint('ck_institution_nhi_code', type_='check')
        batch_op.create_check_constraint('ck_institution_nhi_code', 'length(nhi_code) = 10')
        batch_op.drop_constraint('uq_institution_registry_code', type_='unique')
        batch_op.alter_column('level_id', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('nhi_code', existing_type=sa.String(length=10), nullable=False)
        batch_op.drop_column('kind')
        batch_op.drop_column('registry_code')


def _kept(table) -> dict:
    """SQLite recreates the table; reflection does not see AUTOINCREMENT, so say it again."""
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        return {}
    sql = bind.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"), {'t': table}
    ).scalar() or ''
    return {'table_kwargs': {'sqlite_autoincrement': True}} if 'AUTOINCREMENT' in sql.upper() else {}
