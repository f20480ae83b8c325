"""The org every emulator starts with: deterministic, so tests and demos can rely on it.

~50 agents (emails @techsupport.example), three queues in three sites, one division.
Seeded once, on the first start against an empty data dir.
"""

from __future__ import annotations

import random
import uuid

from .store import Store
from .wire import iso, now

SEED = 20240501
AGENT_COUNT = 50
EMAIL_DOMAIN = "techsupport.example"

FIRST_NAMES = [
    "Ava", "Liam", "Olivia", "Noah", "Emma", "Mateo", "Sofia", "Lucas", "Isabela", "Ethan",
    "Mia", "Gabriel", "Chloe", "Benjamin", "Laura", "Samuel", "Amelia", "Daniel", "Julia", "Henry",
    "Camila", "Owen", "Beatriz", "Jack", "Harper", "Rafael", "Zoe", "Leo", "Grace", "Thiago",
]
LAST_NAMES = [
    "Nguyen", "Smith", "Silva", "Johnson", "Tremblay", "Garcia", "Santos", "Brown", "Roy", "Miller",
    "Oliveira", "Davis", "Gagnon", "Martinez", "Souza", "Wilson", "Lee", "Pereira", "Taylor", "Côté",
    "Anderson", "Costa", "Thomas", "Lavoie", "Moore", "Araújo", "Clark", "Fortin", "Lewis", "Almeida",
]
QUEUES = [
    # name, site, language of the site
    ("Support Queue", "Austin", "en-US"),
    ("Toronto Support", "Toronto", "en-CA"),
    ("São Paulo Suporte", "São Paulo", "pt-BR"),
]
DIVISION_NAME = "Home"
TITLES = ["Support Agent", "Senior Support Agent", "Support Team Lead"]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _ascii(text: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def seed(store: Store) -> bool:
    """Create the org if this data dir is new; True when it did."""
    if store.meta_get("seeded"):
        return False
    rng = random.Random(SEED)
    created = iso(now())
    division = {"id": _uuid(rng), "name": DIVISION_NAME, "selfUri": None}
    division["selfUri"] = f"/api/v2/authorization/divisions/{division['id']}"
    store.put("division", division["id"], division)
    store.meta_set("home_division", division["id"])
    store.meta_set("org_id", _uuid(rng))

    queues = []
    for name, site, language in QUEUES:
        queue_id = _uuid(rng)
        queues.append({"id": queue_id, "name": name, "site": site, "language": language,
                       "divisionId": division["id"], "memberIds": [], "dateCreated": created})

    used: set[str] = set()
    for index in range(AGENT_COUNT):
        while True:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            if (first, last) not in used:
                used.add((first, last))  # type: ignore[arg-type]
                break
        user_id = _uuid(rng)
        email = f"{_ascii(first).lower()}.{_ascii(last).lower()}@{EMAIL_DOMAIN}"
        queue = queues[index % len(queues)]
        queue["memberIds"].append(user_id)
        user = {
            "id": user_id,
            "name": f"{first} {last}",
            "division": {"id": division["id"], "name": division["name"], "selfUri": division["selfUri"]},
            "chat": {"jabberId": f"{user_id.replace('-', '')}@techsupport.orgspan.com"},
            "department": "Technical Support",
            "email": email,
            "primaryContactInfo": [{"address": email, "mediaType": "EMAIL", "type": "PRIMARY"}],
            "addresses": [],
            "state": "active",
            "title": TITLES[2] if index % 10 == 0 else TITLES[index % 2],
            "username": email,
            "version": 1,
            "acdAutoAnswer": False,
            "selfUri": f"/api/v2/users/{user_id}",
        }
        store.put("user", user_id, user)
    for queue in queues:
        store.put("queue", queue["id"], queue)
    store.meta_set("seeded", created)
    return True
