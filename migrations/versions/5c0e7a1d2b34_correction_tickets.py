"""correction request tickets (Appendix 9)

Revision ID: 5c0e7a1d2b34
Revises: 239574eb4f39
Create Date: 2026-11-22 11:15:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5c0e7a1d2b34'
down_revision = '239574eb4f39'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('correction_ticket_counter',
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last_number', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('year')
    )
    op.create_table('correction_ticket',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=12), nullable=False),
    sa.Column('institution_id', sa.Integer(), nullable=False),
    sa.Column('quitter_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('received_on', sa.Date(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('institution_seal_checked', sa.Boolean(), nullable=False),
    sa.Column('supervisor_seal_checked', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('return_reason', sa.Text(), nullable=True),
    sa.Column('converted_at', sa.DateTime(), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('created_on', sa.DateTime(), nullable=False),
    sa.Column('changed_on', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('changed_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['changed_by_id'], ['ab_user.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by_id'], ['ab_user.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], ),
    sa.ForeignKeyConstraint(['quitter_id'], ['quitter.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    with op.batch_alter_table('correction_ticket', schema=None) as batch_op:
        batch_op.create_index('ix_correction_ticket_institution', ['institution_id', 'status'], unique=False)
        batch_op.create_index('ix_correction_ticket_status_received', ['status', 'received_on', 'id'], unique=False)

    op.create_table('correction_attachment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('stored_name', sa.String(length=100), nullable=False),
    sa.Column('mime_type', sa.String(length=40), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('created_on', sa.DateTime(), nullable=False),
    sa.Column('changed_on', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('changed_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['changed_by_id'], ['ab_user.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by_id'], ['ab_user.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['correction_ticket.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('stored_name')
    )
    with op.batch_alter_table('correction_attachment', schema=None) as batch_op:
        batch_op.create_index('ix_correction_attachment_ticket', ['ticket_id'], unique=False)

    op.create_table('correction_line',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('visit_id', sa.Integer(), nullable=False),
    sa.Column('recorded_date', sa.Date(), nullable=False),
    sa.Column('corrected_date', sa.Date(), nullable=False),
    sa.Column('displaced_date', sa.Date(), nullable=True),
    sa.Column('applied_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['ticket_id'], ['correction_ticket.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['visit_id'], ['visit.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ticket_id', 'visit_id', name='uq_correction_line_visit')
    )
    with op.batch_alter_table('correction_line', schema=None) as batch_op:
        batch_op.create_index('ix_correction_line_visit', ['visit_id'], unique=False)

    op.create_table('correction_transition',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('from_status', sa.String(length=12), nullable=True),
    sa.Column('to_status', sa.String(length=12), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('username', sa.String(length=100), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['ticket_id'], ['correction_ticket.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('correction_transition', schema=None) as batch_op:
        batch_op.create_index('ix_correction_transition_ticket', ['ticket_id', 'id'], unique=False)

    with op.batch_alter_table('visit', schema=None) as batch_op:
        batch_op.add_column(sa.Column('original_date', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('corrected_by_ticket_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_visit_corrected_by_ticket_id'), ['corrected_by_ticket_id'], unique=False)
        batch_op.create_foreign_key('fk_visit_corrected_by_ticket', 'correction_ticket', ['corrected_by_ticket_id'], ['id'], ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('visit', schema=None) as batch_op:
        batch_op.drop_constraint('fk_visit_corrected_by_ticket', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_visit_corrected_by_ticket_id'))
        batch_op.drop_column('corrected_by_ticket_id')
        batch_op.drop_column('original_date')

    with op.batch_alter_table('correction_transition', schema=None) as batch_op:
        batch_op.drop_index('ix_correction_transition_ticket')
    op.drop_table('correction_transition')
    with op.batch_alter_table('correction_line', schema=None) as batch_op:
        batch_op.drop_index('ix_correction_line_visit')
    op.drop_table('correction_line')
    with op.batch_alter_table('correction_attachment', schema=None) as batch_op:
        batch_op.drop_index('ix_correction_attachment_ticket')
    op.drop_table('correction_attachment')
    with op.batch_alter_table('correction_ticket', schema=None) as batch_op:
        batch_op.drop_index('ix_correction_ticket_status_received')
        batch_op.drop_index('ix_correction_ticket_institution')
    op.drop_table('correction_ticket')
    op.drop_table('correction_ticket_counter')
