"""field rule checks: CHECK constraints backing the field rules (issue 12, class 6)

Every enum and range that core/rules.py enforces on every write path is backed by the
database: sex and profession in their enums, medication days 1–365, education minutes
1–600, dates from 1900-01-01 (visits, contracts and assignments up to 2099-12-31), national
IDs stored upper case and 10 long, and the lengths of names, codes and addresses.
SQLite adds constraints by recreating the table (batch mode); the demo data satisfies them.

Revision ID: e12c6f0a7d15
Revises: 5ec0a1d7c9e4
Create Date: 2026-12-01 10:00:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'e12c6f0a7d15'
down_revision = '5ec0a1d7c9e4'
branch_labels = None
depends_on = None

_PROFESSIONS = "'physician', 'dentist', 'pharmacist', 'nurse', 'psychologist', 'social_worker', 'other'"

CHECKS = {
    'quitter': [
        ('ck_quitter_sex', "sex IN ('M', 'F')"),
        ('ck_quitter_national_id', 'national_id = upper(national_id) AND length(national_id) = 10'),
        ('ck_quitter_name', 'length(name) BETWEEN 1 AND 50'),
        ('ck_quitter_birth_date', "birth_date >= '1900-01-01'"),
    ],
    'visit': [
        ('ck_visit_visit_date', "visit_date >= '1900-01-01' AND visit_date <= '2099-12-31'"),
        ('ck_visit_medication_name', 'medication_name IS NULL OR (length(medication_name) <= 50)'),
        ('ck_visit_medication_days', 'medication_days IS NULL OR (medication_days BETWEEN 1 AND 365)'),
        ('ck_visit_education_minutes', 'education_minutes IS NULL OR (education_minutes BETWEEN 1 AND 600)'),
        ('ck_visit_entry_timeliness',
         "entry_timeliness IN ('within_24h', 'before_deadline', 'after_deadline')"),
    ],
    'practitioner': [
        ('ck_practitioner_national_id', 'national_id = upper(national_id) AND length(national_id) = 10'),
        ('ck_practitioner_name', 'length(name) BETWEEN 1 AND 50'),
        ('ck_practitioner_profession', f'profession IN ({_PROFESSIONS})'),
        ('ck_practitioner_licence_number', 'licence_number IS NULL OR (length(licence_number) <= 30)'),
    ],
    'service_assignment': [
        ('ck_service_assignment_start_date',
         "start_date >= '1900-01-01' AND start_date <= '2099-12-31'"),
        ('ck_service_assignment_end_date',
         "end_date IS NULL OR (end_date >= '1900-01-01' AND end_date <= '2099-12-31')"),
    ],
    'institution': [
        ('ck_institution_nhi_code', 'length(nhi_code) = 10'),
        ('ck_institution_name', 'length(name) BETWEEN 1 AND 100'),
        ('ck_institution_address', 'address IS NULL OR (length(address) <= 200)'),
        ('ck_institution_phone', 'phone IS NULL OR (length(phone) <= 30)'),
    ],
    'contract_period': [
        ('ck_contract_period_start_date', "start_date >= '1900-01-01' AND start_date <= '2099-12-31'"),
        ('ck_contract_period_end_date',
         "end_date IS NULL OR (end_date >= '1900-01-01' AND end_date <= '2099-12-31')"),
    ],
}


def upgrade():
    # IDs typed in lower case or with blanks before the rules existed: store them as the
    # rules do, so the upper-case check holds (a clash would stop the migration, by design).
    for table in ('quitter', 'practitioner'):
        op.execute(f'UPDATE {table} SET national_id = upper(trim(national_id)) '
                   f'WHERE national_id <> upper(trim(national_id))')
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table, schema=None, **_kept(table)) as batch_op:
            for name, condition in checks:
                batch_op.create_check_constraint(name, condition)


def _kept(table) -> dict:
    """SQLite recreates the table; reflection does not see AUTOINCREMENT, so say it again."""
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        return {}
    sql = bind.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"), {'t': table}
    ).scalar() or ''
    return {'table_kwargs': {'sqlite_autoincrement': True}} if 'AUTOINCREMENT' in sql.upper() else {}


def downgrade():
    for table, checks in reversed(list(CHECKS.items())):
        with op.batch_alter_table(table, schema=None, **_kept(table)) as batch_op:
            for name, _condition in reversed(checks):
                batch_op.drop_constraint(name, type_='check')
