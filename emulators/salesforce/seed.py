"""The demo org, TechSupport Inc.: sites, customer companies and contacts with messy phones.

Deterministic for a given random seed. Rows go in with one executemany per object inside
one transaction, so a million contacts take a minute or so, not hours.
"""

from __future__ import annotations

import random
from pathlib import Path

from . import schema
from .store import Store, bulk_insert

SITES = [  # (name, city, country, phone)
    ("TechSupport Inc. - Austin", "Austin", "United States", "(512) 555-0100"),
    ("TechSupport Inc. - Toronto", "Toronto", "Canada", "+1 416-555-0100"),
    ("TechSupport Inc. - São Paulo", "São Paulo", "Brazil", "+55 11 3555-0100"),
]

COMPANIES = [  # (name, domain, country code, city)
    ("Acme Corporation", "acme.com", "US", "Austin"), ("Globex Industries", "globex.com", "US", "Dallas"),
    ("Initech", "initech.com", "US", "Austin"), ("Umbrella Health", "umbrellahealth.com", "US", "Chicago"),
    ("Stark Logistics", "starklogistics.com", "US", "New York"), ("Wayne Retail", "wayneretail.com", "US", "Seattle"),
    ("Hooli Cloud", "hooli.com", "US", "San Francisco"), ("Vandelay Imports", "vandelay.com", "US", "New York"),
    ("Soylent Foods", "soylent.com", "US", "Boston"), ("Cyberdyne Systems", "cyberdyne.com", "US", "Miami"),
    ("Pied Piper", "piedpiper.com", "US", "San Francisco"), ("Dunder Mifflin Paper", "dundermifflin.com", "US", "Chicago"),
    ("Northwind Traders", "northwind.ca", "CA", "Toronto"), ("Maple Leaf Analytics", "mapleleaf-analytics.ca", "CA", "Toronto"),
    ("Laurentian Bank Services", "laurentian-services.ca", "CA", "Montreal"), ("Pacific Rim Shipping", "pacificrim.ca", "CA", "Vancouver"),
    ("Rideau Software", "rideausoft.ca", "CA", "Ottawa"), ("Prairie Energy", "prairie-energy.ca", "CA", "Calgary"),
    ("Banco Horizonte", "bancohorizonte.com.br", "BR", "São Paulo"), ("Carioca Telecom", "cariocatelecom.com.br", "BR", "Rio de Janeiro"),
    ("Minas Mineração", "minasmineracao.com.br", "BR", "Belo Horizonte"), ("Paulista Varejo", "paulistavarejo.com.br", "BR", "São Paulo"),
    ("Sul Logística", "sullogistica.com.br", "BR", "Porto Alegre"), ("Brasília Saúde", "brasiliasaude.com.br", "BR", "Brasília"),
]

AREA_CODES = {"US": ["512", "737", "214", "212", "646", "312", "415", "206", "305", "617"],
              "CA": ["416", "647", "514", "604", "613", "403"]}
BR_DDD = {"São Paulo": "11", "Rio de Janeiro": "21", "Belo Horizonte": "31", "Porto Alegre": "51", "Brasília": "61"}
COUNTRY_NAMES = {"US": ["United States", "United States", "USA", "US"], "CA": ["Canada", "Canada", "CA"],
                 "BR": ["Brazil", "Brazil", "Brasil", "BR"]}
CITIES = {"US": ["Austin", "Dallas", "New York", "Chicago", "Seattle", "San Francisco", "Boston", "Miami"],
          "CA": ["Toronto", "Montreal", "Vancouver", "Ottawa", "Calgary"],
          "BR": list(BR_DDD)}
FIRST = {"US": ["James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David", "Susan",
                "William", "Karen", "Daniel", "Emily", "Chris", "Ashley", "Kevin", "Megan", "Brian", "Olivia"],
         "CA": ["Liam", "Emma", "Noah", "Chloé", "Ethan", "Sophie", "Lucas", "Amélie", "Owen", "Charlotte",
                "Mathieu", "Isabelle", "Ryan", "Hannah", "Jacob"],
         "BR": ["João", "Maria", "José", "Ana", "Pedro", "Fernanda", "Lucas", "Juliana", "Gabriel", "Beatriz",
                "Rafael", "Camila", "Thiago", "Larissa", "Mateus", "Conceição"]}
LAST = {"US": ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Wilson", "Anderson",
               "Taylor", "Thomas", "Moore", "Martin", "Lee", "O'Brien", "Clark", "Lewis"],
        "CA": ["Tremblay", "Gagnon", "Roy", "Côté", "Bouchard", "Gauthier", "Morin", "Lavoie", "Fortin", "MacDonald",
               "Campbell", "Wong", "Singh"],
        "BR": ["Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima", "Gomes",
               "Costa", "Ribeiro", "Martins", "Carvalho", "Araújo"]}
TITLES = ["IT Manager", "Help Desk Lead", "CTO", "Office Manager", "Systems Administrator", "Procurement",
          "Network Engineer", "Operations Director", "CFO", "Analyst", None]
CASE_SUBJECTS = ["VPN drops every hour", "Laptop won't boot", "Printer offline", "Password reset loop",
                 "Email not syncing", "License renewal question", "Slow Wi-Fi in office", "Invoice discrepancy"]


def nanp_number(rng: random.Random, area: str) -> str:
    exchange = "555" if rng.random() < 0.3 else str(rng.randint(200, 999))
    line = f"{rng.randint(0, 9999):04d}"
    fmt = rng.choices(range(8), weights=[25, 10, 15, 15, 5, 8, 10, 12])[0]
    return [
        f"({area}) {exchange}-{line}",
        f"{area}.{exchange}.{line}",
        f"+1 {area}-{exchange}-{line}",
        f"{area}{exchange}{line}",
        f"{area}-{exchange}-{line} x{rng.randint(10, 999)}",
        f"1-{area}-{exchange}-{line}",
        f"+1{area}{exchange}{line}",
        f"{area}-{exchange}-{line}",
    ][fmt]


def br_number(rng: random.Random, ddd: str, mobile: bool) -> str:
    if mobile:
        first, second = f"9{rng.randint(1000, 9999)}", f"{rng.randint(0, 9999):04d}"
    else:
        first, second = f"{rng.randint(2, 5)}{rng.randint(100, 999)}", f"{rng.randint(0, 9999):04d}"
    fmt = rng.choices(range(5), weights=[30, 30, 10, 15, 15])[0]
    return [
        f"+55 {ddd} {first}-{second}",
        f"({ddd}) {first}-{second}",
        f"011 55 {ddd} {first}-{second}",  # dialled from North America
        f"+55{ddd}{first}{second}",
        f"{ddd} {first}-{second}",
    ][fmt]


def phone_for(rng: random.Random, country: str, city: str, mobile: bool = False) -> str:
    if country == "BR":
        return br_number(rng, BR_DDD.get(city, "11"), mobile)
    return nanp_number(rng, rng.choice(AREA_CODES[country]))


def build_techsupport_org(data_dir: Path, contacts: int = 3000, random_seed: int = 42) -> dict:
    """Create the demo org in DATA_DIR/org.db if it is empty; return what it holds."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(data_dir / "org.db")
    try:
        if not store.is_empty():
            return {"reused": True, **_counts(store)}
        rng = random.Random(random_seed)
        store.conn.execute("BEGIN IMMEDIATE")
        try:
            _build(store, rng, contacts)
        except BaseException:
            store.conn.execute("ROLLBACK")
            raise
        store.conn.execute("COMMIT")
        return {"reused": False, **_counts(store)}
    finally:
        store.close()


def _counts(store: Store) -> dict:
    return {"accounts": store.count("Account"), "contacts": store.count("Contact"), "cases": store.count("Case"),
            "tasks": store.count("Task")}


def _build(store: Store, rng: random.Random, n_contacts: int) -> None:
    account_rows = []
    for i, (name, city, country, phone) in enumerate(SITES):
        account_rows.append({"Name": name, "AccountNumber": f"TS-{i + 1:04d}", "Phone": phone, "BillingCity": city,
                             "BillingCountry": country, "Industry": "Technology", "Type": "Other"})
    companies = []
    for i, (name, domain, cc, city) in enumerate(COMPANIES):
        phone = phone_for(rng, cc, city)
        account_rows.append({"Name": name, "AccountNumber": f"CUST-{1000 + i}", "Phone": phone, "BillingCity": city,
                             "BillingCountry": COUNTRY_NAMES[cc][0],
                             "Industry": rng.choice(schema.ACCOUNT.field("Industry").picklist),
                             "Type": "Customer - Direct"})
        companies.append((name, domain, cc, city, phone))
    # Where the integration files calls from numbers that match no contact.
    account_rows.append({"Name": "Unknown callers", "AccountNumber": "TS-UNKNOWN", "Phone": None,
                         "BillingCity": "Austin", "BillingCountry": "United States", "Type": "Other"})
    account_ids = bulk_insert(store, schema.ACCOUNT, account_rows)
    company_ids = account_ids[len(SITES):len(SITES) + len(companies)]

    used_emails: dict[str, int] = {}
    made = 0
    # A stream of its own, so the contacts are the same as before consents were seeded.
    consent_rng = random.Random(rng.random())
    while made < n_contacts:
        # Chunks keep memory flat for a million contacts; one transaction still covers all.
        rows = _contact_rows(rng, companies, company_ids, used_emails, min(_CHUNK, n_contacts - made))
        contact_ids = bulk_insert(store, schema.CONTACT, rows)
        made += len(rows)
        case_rows = []
        for i in range(0, len(contact_ids), 25):
            j = rng.randrange(i, min(i + 25, len(contact_ids)))
            case_rows.append({"Subject": rng.choice(CASE_SUBJECTS),
                              "Status": rng.choice(["New", "Working", "Escalated"]),
                              "Priority": rng.choice(["High", "Medium", "Low"]), "Origin": "Phone",
                              "ContactId": contact_ids[j], "AccountId": rows[j].get("AccountId")})
        bulk_insert(store, schema.CASE, case_rows)
        # Most customers agreed to data processing when they first called; some never did
        # (contact sync leaves those out of Genesys, docs/privacy.md).
        bulk_insert(store, schema.CONTACT_CONSENT, [
            {"Contact__c": cid, "Consent_Type__c": "Data Processing", "Channel__c": "Phone", "Version__c": "2024-01",
             "Consent_Date__c": "2024-01-15T09:00:00.000+0000", "Withdrawn__c": False}
            for cid in contact_ids if consent_rng.random() < 0.95])


_CHUNK = 50_000


def _contact_rows(rng: random.Random, companies: list, company_ids: list[str], used_emails: dict[str, int],
                  n_contacts: int) -> list[dict]:
    rows: list[dict] = []
    while len(rows) < n_contacts:
        k = rng.randrange(len(companies))
        _, domain, company_cc, company_city, company_phone = companies[k]
        # Mostly local staff; some work abroad for the company.
        cc = company_cc if rng.random() < 0.85 else rng.choice(["US", "CA", "BR"])
        first, last = rng.choice(FIRST[cc]), rng.choice(LAST[cc])
        city = company_city if cc == company_cc and rng.random() < 0.6 else rng.choice(CITIES[cc])
        row: dict = {"FirstName": first, "LastName": last, "AccountId": company_ids[k] if rng.random() < 0.95 else None,
                     "MailingCity": city if rng.random() < 0.8 else None,
                     "MailingCountry": rng.choice(COUNTRY_NAMES[cc]) if rng.random() < 0.9 else None,
                     "Title": rng.choice(TITLES),
                     "Custom_Tier__c": rng.choices(["Standard", "Premium", "Enterprise"], weights=[70, 20, 10])[0]}
        local = _ascii(f"{first}.{last}").lower().replace("'", "")
        base = f"{local}@{domain}"
        if rng.random() < 0.95:
            n = used_emails.get(base, 0) + 1  # john.smith@, john.smith2@, ... stay unique
            used_emails[base] = n
            row["Email"] = base if n == 1 else f"{local}{n}@{domain}"
        roll = rng.random()
        if roll < 0.04:
            pass  # no phone at all
        elif roll < 0.09:
            row["Phone"] = company_phone  # shares the company's main line
        else:
            if rng.random() < 0.8:
                row["Phone"] = phone_for(rng, cc, city)
            if rng.random() < 0.5 or "Phone" not in row:
                row["MobilePhone"] = phone_for(rng, cc, city, mobile=True)
            if rng.random() < 0.1:
                row["HomePhone"] = phone_for(rng, cc, city)
            if rng.random() < 0.05:
                row["OtherPhone"] = phone_for(rng, cc, city)
        rows.append(row)
        # A duplicate entered by someone else: same person, email typed with other casing.
        if row.get("Email") and rng.random() < 0.01 and len(rows) < n_contacts:
            dup = dict(row)
            dup["Email"] = _title_case_email(row["Email"])
            dup.pop("MobilePhone", None)
            rows.append(dup)
    return rows


def _title_case_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return ".".join(p.capitalize() for p in local.split(".")) + "@" + domain.capitalize()


def _ascii(text: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
