"""Registration answers alike (issue 12, class 3): POST /api/v1/quitter/ as facility_tpe for
a new ID, for an ID registered elsewhere with other identity data, and for one registered
elsewhere with matching data. Prints status, body keys and the median time of each case side
by side, with the new-ID case as the baseline: the three should be indistinguishable.

    .venv/bin/python bench/person_registration.py [--database-url URL] [--repeat 30]

Without --database-url a fresh SQLite file is migrated and seeded (demo scale 0.05).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--scale", type=float, default=0.05)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-person-")
    os.environ.setdefault("HUEY_IMMEDIATE", "1")
    from app import create_app

    app = create_app({
        "SQLALCHEMY_DATABASE_URI": args.database_url or f"sqlite:///{tmp}/bench.db",
        "CACHE_TYPE": "SimpleCache", "UPLOAD_FOLDER": f"{tmp}/up", "MAIL_FOLDER": f"{tmp}/mail",
        "RATELIMIT_STORAGE_URI": "memory://", "AUTH_RATE_LIMIT": "100000 per minute",
    })  # fmt: skip
    from flask_migrate import upgrade
    from sqlalchemy import select

    from core.extensions import db
    from core.security.permissions import sync_roles
    from core.validators import personal_id_check_digit
    from domain.roles import ROLE_GRANTS
    from models.cessation.visit import Quitter
    from models.platform.user import ScopedUser
    from models.registry.person import PersonLink
    from seed.demo import seed_demo

    with app.app_context():
        upgrade()
        sync_roles(app.appbuilder, ROLE_GRANTS)
        seed_demo(seed=7, scale=args.scale)
        user = db.session.scalar(select(ScopedUser).where(ScopedUser.username == "facility_tpe"))
        mine = {i.id for i in user.scope_institutions}
        seen = select(PersonLink.person_id).where(
            PersonLink.person_kind == "quitter", PersonLink.institution_id.in_(mine))
        strangers = db.session.scalars(
            select(Quitter).where(Quitter.id.not_in(seen)).limit(2 * args.repeat)).all()  # fmt: skip
        password = app.config.get("DEMO_PASSWORD") or "Demo-Pass-2024!"
    client = app.test_client()
    token = client.post("/api/v1/security/login", json={
        "username": "facility_tpe", "password": password, "provider": "db"}).json["access_token"]  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}

    def body(person=None, serial=0):
        if person is None:
            prefix = f"W2{serial:07d}"
            return {"national_id": prefix + personal_id_check_digit(prefix), "name": "新登記",
                    "sex": "F", "birth_date": "1990-01-01"}  # fmt: skip
        return {"national_id": person.national_id, "name": person.name, "sex": person.sex,
                "birth_date": person.birth_date.isoformat()}  # fmt: skip

    cases = {
        "new ID (baseline)": [body(serial=i) for i in range(args.repeat)],
        "registered, other data": [{**body(p), "name": "猜名字"} for p in strangers[: args.repeat]],
        "registered, matching": [body(p) for p in strangers[args.repeat :]],
    }
    results = {}
    for name, bodies in cases.items():
        times, statuses, keys = [], set(), set()
        for payload in bodies:
            start = time.perf_counter()
            response = client.post("/api/v1/quitter/", headers=headers, json=payload)
            times.append((time.perf_counter() - start) * 1000)
            statuses.add(response.status_code)
            keys.add(tuple(sorted(response.json or {})))
        results[name] = (statistics.median(times), statuses, keys)
    base = results["new ID (baseline)"][0]
    print(f"{'case':28} {'status':>8} {'p50 ms':>8} {'ratio':>6}  body keys")
    for name, (p50, statuses, keys) in results.items():
        print(f"{name:28} {','.join(map(str, sorted(statuses))):>8} {p50:8.2f} {p50 / base:6.2f}  {sorted(keys)}")


if __name__ == "__main__":
    main()
