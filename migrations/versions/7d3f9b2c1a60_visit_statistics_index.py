"""covering index for the yearly statistics (C9)

Revision ID: 7d3f9b2c1a60
Revises: 5c0e7a1d2b34
Create Date: 2026-11-23 12:00:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '7d3f9b2c1a60'
down_revision = '5c0e7a1d2b34'
branch_labels = None
depends_on = None


def upgrade():
    # A year's visits are read from this index alone (no table rows): tables 2 and 3 of C9.
    with op.batch_alter_table('visit', schema=None) as batch_op:
        batch_op.create_index(
            'ix_visit_statistics',
            ['visit_date', 'institution_id', 'quitter_id', 'practitioner_id', 'medication_days',
             'education_minutes'],
            unique=False,
        )


def downgrade():
    with op.batch_alter_table('visit', schema=None) as batch_op:
        batch_op.drop_index('ix_visit_statistics')
