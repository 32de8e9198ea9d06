"""Issue 20 operations, measured: /healthz, /readyz and /metrics per request; a 1 MB file put and
read on each storage backend; `flask backup` and `flask restore` of a seeded demo world.

    PYTHONPATH=. .venv/bin/python bench/ops.py [--scale 0.02] [--url postgresql://…]

Prints each figure beside its target (a probe must stay far below a load balancer's 1 s timeout
and cost the app nothing it would notice).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HUEY_IMMEDIATE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=0.02)
    parser.add_argument(
        "--url", default=None, help="an empty PostgreSQL database (default: SQLite)"
    )
    args = parser.parse_args()
    from flask_migrate import upgrade

    from app import create_app
    from core.backup import backup, restore
    from core.extensions import db
    from core.security.permissions import sync_roles
    from domain.roles import ROLE_GRANTS
    from seed.demo import seed_demo
    from seed.testing import reset_database

    tmp = Path(tempfile.mkdtemp(prefix="bench-ops-"))
    url = args.url or f"sqlite:///{tmp / 'source.db'}"
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": url, "UPLOAD_FOLDER": str(tmp / "uploads"), "CACHE_TYPE": "SimpleCache",
        "RATELIMIT_STORAGE_URI": f"sqlitefile://{tmp / 'rl.db'}", "LOG_REQUESTS": False, "LOG_LEVEL": "WARNING",
    })  # fmt: skip
    with app.app_context():
        reset_database(db)
        upgrade()
        sync_roles(app.appbuilder, ROLE_GRANTS)
        seed_demo(seed=7, scale=args.scale)
        db.session.remove()
    client = app.test_client()
    print(f"database: {url.split(':')[0]}, demo scale {args.scale}")
    for path, target in (("/healthz", 5), ("/readyz", 20), ("/metrics", 50)):
        client.get(path)
        print(
            f"{path:<10} median {_ms(lambda p=path: client.get(p), 300):6.2f} ms   (target < {target} ms)"
        )
    data = os.urandom(1024 * 1024)
    for backend in ("local", "database"):
        app.config["STORAGE_BACKEND"] = backend
        with app.test_request_context():
            from core.storage import storage

            backend = storage()

            def put_read(s=backend):
                key = s.put("bench", data, "one.bin", "application/octet-stream")
                db.session.commit()
                assert s.read(key) == data

            print(f"storage {backend:<8} 1 MB put+commit+read median {_ms(put_read, 30):6.2f} ms")
            storage().delete("bench/one.bin")
            db.session.commit()
    app.config["STORAGE_BACKEND"] = "local"
    start = time.perf_counter()
    archive = backup({**app.config, "INSTANCE_DIR": str(tmp)}, tmp / "backups")
    took = time.perf_counter() - start
    print(f"backup  {took:6.2f} s, archive {archive.stat().st_size / 1e6:.1f} MB")
    if args.url:
        print("restore: skipped for --url (give it an empty target database by hand)")
        return
    start = time.perf_counter()
    manifest = restore({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'target.db'}",
                        "UPLOAD_FOLDER": str(tmp / "target-uploads")}, archive)  # fmt: skip
    took = time.perf_counter() - start
    rows = sum(manifest["tables"].values())
    print(
        f"restore {took:6.2f} s, {rows} rows in {len(manifest['tables'])} tables, {len(manifest['files'])} files"
    )


if __name__ == "__main__":
    main()
