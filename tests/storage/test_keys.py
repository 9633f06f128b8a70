"""Projects and keys in the database: stored hashed, found by their secret, revoked, expired."""

from __future__ import annotations

import time

from sqlalchemy import select

from parley.storage import Storage
from parley.storage.keys import hash_secret
from parley.storage.schema import api_keys

NASTY = 'O\'Brien "&" Co; DROP TABLE api_keys; -- % _ \\ \x01 ünï 🙂'


def test_a_key_is_stored_hashed_and_found_by_its_secret(storage: Storage) -> None:
    secret, record = storage.keys.create(NASTY, rpm=5, max_sessions=2, minutes_per_day=1.5)
    assert secret.startswith("sk-parley-") and len(secret) > 40
    with storage.engine.connect() as connection:
        stored = connection.execute(select(api_keys)).mappings().one()
    assert secret not in {str(value) for value in stored.values()}
    assert stored["hash"] == hash_secret(secret)
    found = storage.keys.find(secret)
    assert found == record
    assert (found.project, found.rpm, found.max_sessions, found.minutes_per_day) == (NASTY, 5, 2, 1.5)
    assert storage.keys.find(secret + "x") is None
    assert storage.keys.find("' OR '1'='1") is None


def test_keys_of_one_project_share_it_and_list_in_order(storage: Storage) -> None:
    _, first = storage.keys.create("clinic")
    _, second = storage.keys.create("clinic")
    _, other = storage.keys.create("bank")
    assert first.project_id == second.project_id != other.project_id
    assert [k.id for k in storage.keys.list()] == [first.id, second.id, other.id]
    assert [k.id for k in storage.keys.list("clinic")] == [first.id, second.id]
    assert storage.keys.list(NASTY) == []


def test_revoked_and_expired_keys_say_why(storage: Storage) -> None:
    secret, record = storage.keys.create("clinic")
    assert storage.keys.any_usable()
    assert record.problem(time.time()) is None
    revoked = storage.keys.revoke(record.prefix)
    assert revoked is not None and revoked.revoked_at is not None
    assert "revoked" in (storage.keys.find(secret).problem(time.time()) or "")  # type: ignore[union-attr]
    assert not storage.keys.any_usable()
    assert storage.keys.revoke("key_unknown") is None

    _, expiring = storage.keys.create("clinic", expires_at=time.time() + 0.2)
    assert storage.keys.any_usable()
    time.sleep(0.3)
    assert "expired" in (expiring.problem(time.time()) or "")
    assert not storage.keys.any_usable()
