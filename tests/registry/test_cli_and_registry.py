"""The CLI is idempotent, demo data is deterministic, and the registry answers the
questions later reports ask (contracted at year end, service on a date)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from app import create_app
from domain.roles import ROLE_GRANTS
from models.registry.institution import ContractPeriod, Institution
from models.registry.reference import County, InstitutionLevel


def _permissions(db):
    from flask_appbuilder.security.sqla.models import Role

    db.session.expire_all()
    return {
        role.name: sorted((p.permission.name, p.view_menu.name) for p in role.permissions)
        for role in db.session.query(Role).all()
    }


def test_init_twice_gives_the_same_roles_and_permissions(app, db):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["init"])
    assert first.exit_code == 0, first.output
    before = _permissions(db)
    second = runner.invoke(args=["init"])
    assert second.exit_code == 0, second.output
    assert _permissions(db) == before
    assert set(ROLE_GRANTS) | {"Admin", "Public"} <= set(before)
    assert before["Public"] == []


def test_seed_reference_is_idempotent_and_levels_follow_the_bulletin(app, db):
    runner = app.test_cli_runner()
    for _ in range(2):
        result = runner.invoke(args=["seed", "reference"])
        assert result.exit_code == 0, result.output
    assert db.session.query(County).count() == 22
    levels = db.session.scalars(select(InstitutionLevel.name).order_by(InstitutionLevel.sort_order))
    assert list(levels) == ["醫學中心", "區域醫院", "地區醫院", "西醫診所", "衛生所", "牙科診所", "藥局"]
    bureaus = {c.name: c.bureau_name for c in db.session.query(County)}
    assert bureaus["臺北市"] == "臺北市政府衛生局" and bureaus["連江縣"] == "連江縣衛生福利局"


def _fingerprint(url, tmp_path, seed):
    from flask_migrate import upgrade

    from core.extensions import db
    from models.registry.practitioner import Practitioner, ServiceAssignment
    from seed.demo import seed_demo

    scratch = create_app({"SQLALCHEMY_DATABASE_URI": url, "CACHE_TYPE": "SimpleCache",
                          "UPLOAD_FOLDER": str(tmp_path / "up")})  # fmt: skip
    with scratch.app_context():
        upgrade()
        # The registry only (the addiction cases have their own determinism test).
        seed_demo(seed=seed, scale=0.02, addiction_cases=False)
        rows = (
            db.session.execute(select(Institution.nhi_code, Institution.name, Institution.county_id,
                                      Institution.level_id).order_by(Institution.nhi_code)).all(),
            db.session.execute(select(Practitioner.national_id, Practitioner.name)
                               .order_by(Practitioner.national_id)).all(),
            db.session.execute(select(ServiceAssignment.practitioner_id, ServiceAssignment.institution_id,
                                      ServiceAssignment.start_date).order_by(ServiceAssignment.id)).all(),
        )  # fmt: skip
        db.session.remove()
        db.engine.dispose()
    return rows


def test_demo_data_is_deterministic_for_a_seed(tmp_path):
    one = _fingerprint(f"sqlite:///{tmp_path / 'a.db'}", tmp_path, seed=5)
    two = _fingerprint(f"sqlite:///{tmp_path / 'b.db'}", tmp_path, seed=5)
    other = _fingerprint(f"sqlite:///{tmp_path / 'c.db'}", tmp_path, seed=6)
    assert one == two
    assert one != other
    institutions = one[0]
    assert len({county for _, _, county, _ in institutions}) == 22  # every county
    # every level (A1's non-hospital institutions have none)
    assert len({level for _, _, _, level in institutions if level is not None}) == 7


def test_demo_users_have_the_documented_scopes(db):
    from models.platform.user import ScopedUser

    users = {u.username: u for u in db.session.query(ScopedUser)}
    assert users["bureau_tpe"].scope_county.name == "臺北市"
    assert users["bureau_khh"].scope_county.name == "高雄市"
    assert [i.county.name for i in users["facility_tpe"].scope_institutions] == ["臺北市"]
    assert [i.county.name for i in users["facility_khh"].scope_institutions] == ["高雄市"]
    for name in ("admin", "office", "ministry", "helpdesk"):
        assert users[name].scope_kind == "national"


def test_contracted_at_year_end_for_any_year(db):
    """A contract may start and end within one year; year-end status is per year (C9)."""
    institution = db.session.query(Institution).order_by(Institution.id.desc()).first()
    saved = [(c.start_date, c.end_date) for c in institution.contracts]
    institution.contracts = [
        ContractPeriod(start_date=dt.date(2022, 3, 1), end_date=dt.date(2022, 9, 30)),
        ContractPeriod(start_date=dt.date(2023, 7, 1), end_date=dt.date(2024, 12, 31)),
    ]
    db.session.commit()
    try:
        def contracted(year):
            return db.session.scalar(
                select(Institution.id).where(
                    Institution.id == institution.id, Institution.contracted_at_year_end(year)
                )
            ) is not None

        assert [contracted(y) for y in (2021, 2022, 2023, 2024, 2025)] == [
            False, False, True, True, False,
        ]  # fmt: skip
        assert institution.is_contracted_on(dt.date(2022, 6, 1))
        assert not institution.is_contracted_on(dt.date(2022, 12, 31))
    finally:
        institution.contracts = [ContractPeriod(start_date=s, end_date=e) for s, e in saved]
        db.session.commit()
