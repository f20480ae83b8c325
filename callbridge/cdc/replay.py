"""The last processed replay id per topic, in the state store (survives restarts and redeploys)."""

from __future__ import annotations

from callbridge.store import caller_index
from callbridge.store.db import get_engine


def _key(topic: str) -> str:
    return f"cdc_replay_id:{topic}"


def load(database_url: str, topic: str) -> bytes | None:
    text = caller_index.get_text(get_engine(database_url), _key(topic))
    return bytes.fromhex(text) if text else None


def save(database_url: str, topic: str, replay_id: bytes) -> None:
    caller_index.set_text(get_engine(database_url), _key(topic), replay_id.hex())


def forget(database_url: str, topic: str) -> None:
    caller_index.set_text(get_engine(database_url), _key(topic), "")
