"""persons shared across institutions: person_link, identity status, verified-only unique IDs

Revision ID: b12e0a1f7c01
Revises: a7c3e91f5d20
Create Date: 2026-12-01 11:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'b12e0a1f7c01'
down_revision = 'a7c3e91f5d20'
branch_labels = None
depends_on = None

PERSON_TABLES = ('quitter', 'practitioner')
#: Names an unnamed UNIQUE of the SQLite table so batch mode can drop it.
NAMING = {'uq': 'uq_%(table_name)s_%(column_0_name)s'}


def upgrade():
    op.create_table(
        'person_link',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('person_kind', sa.String(length=20), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('institution_id', sa.Integer(), nullable=False),
        sa.Column('source', sa.String(length=20), nullable=False),
        sa.Column('created_on', sa.DateTime(), nullable=False),
        sa.CheckConstraint("person_kind IN ('quitter', 'practitioner')", name='ck_person_link_kind'),
        sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('person_kind', 'person_id', 'institution_id', name='uq_person_link'),
    )
    op.create_index('ix_person_link_scope', 'person_link', ['person_kind', 'institution_id', 'person_id'])
    sqlite = op.get_bind().dialect.name == 'sqlite'
    for table in PERSON_TABLES:
        if sqlite:
            with op.batch_alter_table(table, naming_convention=NAMING, recreate='always') as batch:
                batch.drop_constraint(f'uq_{table}_national_id', type_='unique')
                batch.add_column(sa.Column('identity_status', sa.String(length=10), nullable=False,
                                           server_default='verified'))
                batch.create_check_constraint(f'ck_{table}_identity_status',
                                              "identity_status IN ('verified', 'conflict')")
        else:
            op.drop_constraint(f'{table}_national_id_key', table, type_='unique')
            op.add_column(table, sa.Column('identity_status', sa.String(length=10), nullable=False,
                                           server_default='verified'))
            op.create_check_constraint(f'ck_{table}_identity_status', table,
                                       "identity_status IN ('verified', 'conflict')")
        op.create_index(f'ix_{table}_national_id', table, ['national_id'])
        where = sa.text("identity_status = 'verified'")
        op.create_index(f'uq_{table}_national_id_verified', table, ['national_id'], unique=True,
                        sqlite_where=where, postgresql_where=where)
    # The links today's rows imply: visits, assignments, and quitters registered by an
    # institution's staff before any visit (the old scope's "created by this user").
    op.execute(
        "INSERT INTO person_link (person_kind, person_id, institution_id, source, created_on) "
        "SELECT DISTINCT 'quitter', quitter_id, institution_id, 'visit', CURRENT_TIMESTAMP FROM visit"
    )
    op.execute(
        "INSERT INTO person_link (person_kind, person_id, institution_id, source, created_on) "
        "SELECT DISTINCT 'practitioner', practitioner_id, institution_id, 'service_assignment', "
        "CURRENT_TIMESTAMP FROM service_assignment"
    )
    op.execute(
        "INSERT INTO person_link (person_kind, person_id, institution_id, source, created_on) "
        "SELECT DISTINCT 'quitter', q.id, ui.institution_id, 'registration', CURRENT_TIMESTAMP "
        "FROM quitter q JOIN ab_user_institution ui ON ui.user_id = q.created_by_id "
        "WHERE NOT EXISTS (SELECT 1 FROM person_link l WHERE l.person_kind = 'quitter' "
        "AND l.person_id = q.id AND l.institution_id = ui.institution_id)"
    )


def downgrade():
    for table in PERSON_TABLES:
        op.drop_index(f'uq_{table}_national_id_verified', table_name=table)
        op.drop_index(f'ix_{table}_national_id', table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f'ck_{table}_identity_status', type_='check')
            batch.drop_column('identity_status')
            batch.create_unique_constraint(f'{table}_national_id_key', ['national_id'])
    op.drop_index('ix_person_link_scope', table_name='person_link')
    op.drop_table('person_link')
