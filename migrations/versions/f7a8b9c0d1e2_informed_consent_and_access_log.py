"""informed consent (A12) and the append-only cross-hospital lookup log

consent: one row per signed 治療知情同意書 of a person, with at most one current (not revoked,
not superseded) per person (partial unique index). consent_access: one row per view of another
institution's timeline; triggers refuse UPDATE and DELETE on both databases (the session
refuses them too, core/data/audit.py).

Revision ID: f7a8b9c0d1e2
Revises: d1e2f3a4b5c6
Create Date: 2026-12-01 23:30:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'f7a8b9c0d1e2'
down_revision = 'd1e2f3a4b5c6'
branch_labels = None
depends_on = None

CURRENT = 'revoked_at IS NULL AND superseded_at IS NULL'
APPEND_ONLY_MESSAGE = 'consent_access is append-only'


def upgrade():
    op.create_table('consent',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('institution_id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.Column('recorded_by_name', sa.String(length=100), nullable=True),
    sa.Column('signed_on', sa.Date(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=True),
    sa.Column('cross_hospital', sa.Boolean(), nullable=False),
    sa.Column('lab_results', sa.Boolean(), nullable=False),
    sa.Column('scan_name', sa.String(length=64), nullable=False),
    sa.Column('scan_mime', sa.String(length=30), nullable=False),
    sa.Column('scan_size', sa.Integer(), nullable=False),
    sa.Column('scan_sha256', sa.String(length=64), nullable=False),
    sa.Column('superseded_at', sa.DateTime(), nullable=True),
    sa.Column('superseded_by_id', sa.Integer(), nullable=True),
    sa.Column('revoked_on', sa.Date(), nullable=True),
    sa.Column('revoked_reason', sa.String(length=200), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_by_name', sa.String(length=100), nullable=True),
    sa.Column('created_on', sa.DateTime(), nullable=False),
    sa.Column('changed_on', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('changed_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('lab_results = false OR cross_hospital = true', name='ck_consent_lab_needs_lookup'),
    sa.CheckConstraint('valid_until IS NULL OR valid_until >= signed_on', name='ck_consent_period'),
    sa.CheckConstraint('revoked_on IS NULL OR revoked_on >= signed_on', name='ck_consent_revoked_after_signed'),
    sa.CheckConstraint('(revoked_at IS NULL) = (revoked_on IS NULL)', name='ck_consent_revocation'),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], ),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], ),
    sa.ForeignKeyConstraint(['case_id'], ['addiction_case.id'], ),
    sa.ForeignKeyConstraint(['superseded_by_id'], ['consent.id'], ),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['ab_user.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['changed_by_id'], ['ab_user.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by_id'], ['ab_user.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True
    )
    op.create_index('ix_consent_patient', 'consent', ['patient_id', 'id'], unique=False)
    op.create_index('uq_consent_current', 'consent', ['patient_id'], unique=True,
                    sqlite_where=sa.text(CURRENT), postgresql_where=sa.text(CURRENT))
    op.create_table('consent_access',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('username', sa.String(length=100), nullable=True),
    sa.Column('institution_id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('consent_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('rows_shown', sa.Integer(), nullable=False),
    sa.Column('source_ip', sa.String(length=45), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True
    )
    op.create_index('ix_consent_access_patient', 'consent_access', ['patient_id', 'id'], unique=False)
    op.create_index('ix_consent_access_at', 'consent_access', ['at', 'id'], unique=False)
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        op.execute(f"""
            CREATE OR REPLACE FUNCTION consent_access_append_only() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}'; END;
            $$ LANGUAGE plpgsql""")
        op.execute("""CREATE TRIGGER consent_access_no_update BEFORE UPDATE OR DELETE ON consent_access
                      FOR EACH ROW EXECUTE FUNCTION consent_access_append_only()""")
    else:
        for action in ('UPDATE', 'DELETE'):
            op.execute(f"""CREATE TRIGGER consent_access_no_{action.lower()} BEFORE {action} ON consent_access
                           BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END""")


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        op.execute('DROP TRIGGER IF EXISTS consent_access_no_update ON consent_access')
        op.execute('DROP FUNCTION IF EXISTS consent_access_append_only()')
    else:
        op.execute('DROP TRIGGER IF EXISTS consent_access_no_update')
        op.execute('DROP TRIGGER IF EXISTS consent_access_no_delete')
    op.drop_index('ix_consent_access_at', table_name='consent_access')
    op.drop_index('ix_consent_access_patient', table_name='consent_access')
    op.drop_table('consent_access')
    op.drop_index('uq_consent_current', table_name='consent')
    op.drop_index('ix_consent_patient', table_name='consent')
    op.drop_table('consent')
