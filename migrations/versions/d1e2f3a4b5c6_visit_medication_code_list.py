"""visit medication code list: medication_name holds a code of the programme's medicines

Until now medication_name was free text (the demo wrote four English names). It now holds a
code of models/cessation/visit.py `Medication`; the codes are those English names, so stored
rows keep their values. Spellings that name a listed medicine in another case or as its zh_TW
name are rewritten to the code; any other value stops the migration (by design: a person
must say which medicine it was), naming it.

Revision ID: d1e2f3a4b5c6
Revises: e6a1bc3e4cad
Create Date: 2026-12-01 20:30:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'd1e2f3a4b5c6'
down_revision = 'e6a1bc3e4cad'
branch_labels = None
depends_on = None

#: code → other spellings found in free text (compared trimmed and lower-cased).
CODES = {
    'Varenicline': ['varenicline', '戒必適', '戒必適 (varenicline)', 'champix'],
    'Bupropion': ['bupropion', '耐煙盼', '耐煙盼 (bupropion)', 'zyban'],
    'Nicotine patch': ['nicotine patch', '尼古丁貼片', '尼古丁貼片 (nicotine patch)'],
    'Nicotine gum': ['nicotine gum', '尼古丁口嚼錠', '尼古丁口嚼錠 (nicotine gum)', '尼古丁咀嚼錠'],
    'Nicotine lozenge': ['nicotine lozenge', '尼古丁口含錠', '尼古丁口含錠 (nicotine lozenge)'],
    'Nicotine inhaler': ['nicotine inhaler', '尼古丁吸入劑', '尼古丁吸入劑 (nicotine inhaler)'],
    'Nicotine oral spray': ['nicotine oral spray', '尼古丁口腔噴劑', '尼古丁口腔噴劑 (nicotine oral spray)'],
}
NEW_CHECK = 'medication_name IS NULL OR (medication_name IN ({}))'.format(
    ', '.join(f"'{code}'" for code in CODES)
)
OLD_CHECK = 'medication_name IS NULL OR (length(medication_name) <= 50)'


def upgrade():
    bind = op.get_bind()
    # Blank text meant no name: stored as NULL, as the form stores it.
    op.execute("UPDATE visit SET medication_name = NULL WHERE trim(medication_name) = ''")
    for code, spellings in CODES.items():
        bind.execute(
            sa.text('UPDATE visit SET medication_name = :code '
                    'WHERE lower(trim(medication_name)) IN :spellings AND medication_name <> :code')
            .bindparams(sa.bindparam('spellings', expanding=True)),
            {'code': code, 'spellings': spellings},
        )
    unknown = bind.execute(
        sa.text('SELECT DISTINCT medication_name FROM visit WHERE medication_name IS NOT NULL '
                'AND medication_name NOT IN :codes LIMIT 20')
        .bindparams(sa.bindparam('codes', expanding=True)),
        {'codes': list(CODES)},
    ).scalars().all()
    if unknown:
        raise RuntimeError(f'visit.medication_name holds values outside the code list: {unknown}; '
                           'map them to a code first')
    with op.batch_alter_table('visit', schema=None, **_kept('visit')) as batch_op:
        batch_op.drop_constraint('ck_visit_medication_name', type_='check')
        batch_op.create_check_constraint('ck_visit_medication_name', NEW_CHECK)


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
    # Codes are valid free text: the values stay as they are.
    with op.batch_alter_table('visit', schema=None, **_kept('visit')) as batch_op:
        batch_op.drop_constraint('ck_visit_medication_name', type_='check')
        batch_op.create_check_constraint('ck_visit_medication_name', OLD_CHECK)
