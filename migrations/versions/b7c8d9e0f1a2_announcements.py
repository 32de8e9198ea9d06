"""announcements (公告) shown on the home page for a period

Revision ID: b7c8d9e0f1a2
Revises: a1b2c3d4e5f6
Create Date: 2026-12-01 17:30:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b7c8d9e0f1a2'
down_revision = 'a1b2c3d4e5f6'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'announcement',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('title', sa.String(length=100), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('start_date', sa.Date(), nullable=False),
        sa.Column('end_date', sa.Date(), nullable=True),
        sa.Column('created_on', sa.DateTime(), nullable=False),
        sa.Column('changed_on', sa.DateTime(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('changed_by_id', sa.Integer(), nullable=True),
        sa.CheckConstraint('end_date IS NULL OR end_date >= start_date', name='ck_announcement_range'),
        sa.CheckConstraint('length(title) BETWEEN 1 AND 100', name='ck_announcement_title'),
        sa.CheckConstraint('length(body) BETWEEN 1 AND 2000', name='ck_announcement_body'),
        sa.CheckConstraint("start_date >= '1900-01-01' AND start_date <= '2099-12-31'",
                           name='ck_announcement_start_date'),
        sa.CheckConstraint("end_date IS NULL OR (end_date >= '1900-01-01' AND end_date <= '2099-12-31')",
                           name='ck_announcement_end_date'),
        sa.ForeignKeyConstraint(['created_by_id'], ['ab_user.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['changed_by_id'], ['ab_user.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_announcement_period', 'announcement', ['start_date', 'end_date'], unique=False)


def downgrade():
    op.drop_index('ix_announcement_period', table_name='announcement')
    op.drop_table('announcement')
