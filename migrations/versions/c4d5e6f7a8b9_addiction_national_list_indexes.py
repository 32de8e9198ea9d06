"""addiction national list indexes: cases, courses and records in their lists' date order

A national user (admin, ministry) opens the case, course and record lists unfiltered, ordered
by date: without an index on (date, id) SQLite walked every row and sorted it, at demo scale
(15,000 cases, 17,000 courses, 450,000 records) 1.6, 3.1 and 273 ms for 25 ids (min of 30,
sqlite3); with the index each is an index walk of 25 entries (0.02 ms). Institution users
keep their (institution_id, date, id) indexes (issue 14 speed, branch addiction-speed).

Revision ID: c4d5e6f7a8b9
Revises: b7c1e0a9d215
Create Date: 2026-12-01 17:15:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'c4d5e6f7a8b9'
down_revision = "b7c1e0a9d215"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_case_opened', 'addiction_case', ['opened_on', 'id'], unique=False)
    op.create_index('ix_course_start', 'course', ['start_date', 'id'], unique=False)
    op.create_index('ix_record_date', 'treatment_record', ['executed_on', 'id'], unique=False)
    # The planner's statistics, so that an institution's lists keep their (institution_id, …)
    # index instead of walking the new date index.
    for table in ('addiction_case', 'course', 'treatment_record'):
        op.execute(f'ANALYZE {table}')


def downgrade():
    op.drop_index('ix_record_date', table_name='treatment_record')
    op.drop_index('ix_course_start', table_name='course')
    op.drop_index('ix_case_opened', table_name='addiction_case')
