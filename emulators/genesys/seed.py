"""The org every emulator starts with: deterministic, so tests and demos can rely on it.

~50 agents (emails @techsupport.example), three queues in three sites, one division, and
the external contacts the demo starts with: 6 customer organizations and 40 contacts in the
US, Canada and Brazil (fictional 555-01xx numbers), each linked to its Salesforce record by
an externalId. Seeded once, on the first start against an empty data dir (the external
contacts also on the first start of a data dir seeded before they existed).
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
    seed_external_contacts(store)
    return True


# name, industry, region, city, state, postal code, area code (fictional 555-01xx lines)
ORGANIZATIONS = [
    ("Lone Star Logistics", "Transportation", "US", "Austin", "TX", "78701", "512"),
    ("Bluebonnet Health", "Healthcare", "US", "Dallas", "TX", "75201", "214"),
    ("Great Lakes Retail", "Retail", "CA", "Toronto", "ON", "M5H 2N2", "416"),
    ("Prairie Grain Co-op", "Agriculture", "CA", "Calgary", "AB", "T2P 1J9", "403"),
    ("Paulista Engenharia", "Engineering", "BR", "São Paulo", "SP", "01310-100", "11"),
    ("Carioca Turismo", "Hospitality", "BR", "Rio de Janeiro", "RJ", "20040-002", "21"),
]
EXTERNAL_CONTACTS = 40
CUSTOMER_TITLES = ["IT Manager", "Operations Director", "Office Manager", "Procurement Lead", "CFO", None]
SALESFORCE_SOURCE = "Salesforce"


def _display(region: str, area: str, line: int) -> str:
    if region == "BR":
        return f"({area}) 95555-{line:04d}"
    return f"({area}) 555-{line:04d}"


def seed_external_contacts(store: Store) -> bool:
    """The demo's external organizations and contacts; deterministic ids and content."""
    from .externalcontacts import _phone

    if store.meta_get("seeded_external_contacts"):
        return False
    rng = random.Random(SEED + 1)
    created = iso(now())
    division = store.get("division", store.meta_get("home_division") or "")
    division_ref = {"id": division["id"], "name": division["name"], "selfUri": division["selfUri"]}
    source = {"id": _uuid(rng), "name": SALESFORCE_SOURCE}
    orgs = []
    for index, (name, industry, region, city, state, postal, area) in enumerate(ORGANIZATIONS):
        org_id = _uuid(rng)
        org = {
            "id": org_id, "name": name, "division": division_ref, "companyType": "Customer", "industry": industry,
            "address": {"address1": f"{100 + index * 17} Main Street", "city": city, "state": state,
                        "postalCode": postal, "countryCode": region},
            "phoneNumber": _phone("phoneNumber", {"display": _display(region, area, 100 + index),
                                                  "countryCode": region}),
            "websites": [f"https://{_ascii(name).lower().replace(' ', '')}.example"],
            "externalIds": [{"externalSource": source, "value": f"001DEMO{index:011d}"}],
            "createDate": created, "modifyDate": created,
            "selfUri": f"/api/v2/externalcontacts/organizations/{org_id}",
        }
        store.put("externalorganization", org_id, org)
        orgs.append((org, region, area))
    for index in range(EXTERNAL_CONTACTS):
        org, region, area = orgs[index % len(orgs)]
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        contact_id = _uuid(rng)
        domain = org["websites"][0].removeprefix("https://")
        contact: dict = {
            "id": contact_id, "division": division_ref, "firstName": first, "lastName": last,
            "workPhone": _phone("workPhone", {"display": _display(region, area, 110 + index), "countryCode": region}),
            "workEmail": f"{_ascii(first).lower()}.{_ascii(last).lower()}{index}@{domain}",
            "address": dict(org["address"]),
            "externalOrganization": {"id": org["id"], "name": org["name"], "selfUri": org["selfUri"]},
            "externalIds": [{"externalSource": source, "value": f"003DEMO{index:011d}"}],
            "externalSystemUrl": f"https://callbridge-demo.example/lightning/r/Contact/003DEMO{index:011d}/view",
            "type": "Curated", "createDate": created, "modifyDate": created,
            "selfUri": f"/api/v2/externalcontacts/contacts/{contact_id}",
        }
        title = CUSTOMER_TITLES[index % len(CUSTOMER_TITLES)]
        if title:
            contact["title"] = title
        if index % 3 == 0:  # some have a mobile too
            contact["cellPhone"] = _phone("cellPhone", {"display": _display(region, area, 160 + index),
                                                        "countryCode": region})
        store.put("externalcontact", contact_id, contact)
    store.meta_set("seeded_external_contacts", created)
    return True
