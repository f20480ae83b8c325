"""Server-rendered record pages: the screen-pop target and a demo index. Everything escaped."""

from __future__ import annotations

from html import escape

from . import ids, schema
from .store import Store, q

_STYLE = """<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#181818;background:#f3f3f3}
.card{background:#fff;border-radius:8px;padding:1rem 1.5rem;margin-bottom:1rem;box-shadow:0 1px 3px #0002}
h1{font-size:1.4rem;margin:.2rem 0} .type{color:#706e6b;text-transform:uppercase;font-size:.8rem}
table{border-collapse:collapse;width:100%} td,th{padding:.3rem .5rem;border-bottom:1px solid #ddd;text-align:left}
th{color:#706e6b;font-weight:600;width:12rem} .tier{background:#0176d3;color:#fff;border-radius:4px;padding:0 .4rem}
</style>"""


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>{_STYLE}</head>"
            f"<body>{body}</body></html>")


def _rows(conn, sql: str, params: tuple) -> list[dict]:
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def _fields_table(pairs: list[tuple[str, object]]) -> str:
    cells = "".join(f"<tr><th>{escape(k)}</th><td>{escape('' if v is None else str(v))}</td></tr>"
                    for k, v in pairs)
    return f"<table>{cells}</table>"


def record_page(store: Store, record_id: str, type_name: str | None) -> tuple[int, str]:
    try:
        rid = ids.to18(record_id)
    except ValueError:
        return 404, _page("Not found", "<div class='card'><h1>URL No Longer Exists</h1></div>")
    obj = schema.sobject_for_id(rid)
    if obj is None or (type_name and obj.name.lower() != type_name.lower()) or obj.name not in ("Contact", "Account"):
        return 404, _page("Not found", "<div class='card'><h1>URL No Longer Exists</h1></div>")
    conn = store.conn
    rows = _rows(conn, f"SELECT * FROM {q(obj.name)} WHERE Id = ? AND IsDeleted = 0", (rid,))
    if not rows:
        return 404, _page("Not found", "<div class='card'><h1>Record deleted or not found</h1></div>")
    rec = rows[0]
    parts = []
    if obj.name == "Contact":
        account = None
        if rec["AccountId"]:
            acc = _rows(conn, "SELECT Id, Name FROM Account WHERE Id = ?", (rec["AccountId"],))
            account = acc[0] if acc else None
        tier = f" <span class='tier'>{escape(rec['Custom_Tier__c'])}</span>" if rec["Custom_Tier__c"] else ""
        account_link = (f"<a href='/{escape(account['Id'])}'>{escape(account['Name'])}</a>" if account else "")
        parts.append(f"<div class='card'><div class='type'>Contact</div><h1 id='name'>{escape(rec['Name'] or '')}"
                     f"{tier}</h1><div>Account: {account_link}</div></div>")
        parts.append("<div class='card'>" + _fields_table([
            ("Email", rec["Email"]), ("Phone", rec["Phone"]), ("Mobile", rec["MobilePhone"]),
            ("Home Phone", rec["HomePhone"]), ("Other Phone", rec["OtherPhone"]),
            ("Mailing Country", rec["MailingCountry"]), ("Tier", rec["Custom_Tier__c"]),
            ("Last Call", rec["Last_Call_Date__c"]), ("Last Activity", rec["LastActivityDate"]),
        ]) + "</div>")
        parts.append(_open_cases(conn, "ContactId", rid))
        parts.append(_timeline(conn, "WhoId", rid))
    else:
        parts.append(f"<div class='card'><div class='type'>Account</div><h1 id='name'>{escape(rec['Name'])}</h1></div>")
        parts.append("<div class='card'>" + _fields_table([
            ("Account Number", rec["AccountNumber"]), ("Phone", rec["Phone"]), ("Billing City", rec["BillingCity"]),
            ("Billing Country", rec["BillingCountry"]), ("Industry", rec["Industry"]), ("Type", rec["Type"]),
        ]) + "</div>")
        contacts = _rows(conn, "SELECT Id, Name, Phone, Email FROM Contact WHERE AccountId = ? AND IsDeleted = 0 "
                         "ORDER BY Name LIMIT 200", (rid,))
        items = "".join(f"<tr><td><a href='/{escape(c['Id'])}'>{escape(c['Name'] or '')}</a></td>"
                        f"<td>{escape(c['Phone'] or '')}</td><td>{escape(c['Email'] or '')}</td></tr>" for c in contacts)
        parts.append(f"<div class='card'><h2>Contacts ({len(contacts)})</h2><table>{items}</table></div>")
        parts.append(_open_cases(conn, "AccountId", rid))
        parts.append(_timeline(conn, "WhatId", rid))
    return 200, _page(rec.get("Name") or rid, "".join(parts))


def _open_cases(conn, column: str, record_id: str) -> str:
    cases = _rows(conn, f"SELECT Id, CaseNumber, Subject, Status, Priority FROM \"Case\" WHERE {column} = ? "
                  "AND IsDeleted = 0 AND IsClosed = 0 ORDER BY CreatedDate DESC", (record_id,))
    rows = "".join(f"<tr class='case'><td>{escape(c['CaseNumber'])}</td><td>{escape(c['Subject'] or '')}</td>"
                   f"<td>{escape(c['Status'])}</td><td>{escape(c['Priority'])}</td></tr>" for c in cases)
    return (f"<div class='card'><h2>Open Cases ({len(cases)})</h2><table>"
            f"<tr><th>Number</th><th>Subject</th><th>Status</th><th>Priority</th></tr>{rows}</table></div>")


def _timeline(conn, column: str, record_id: str) -> str:
    """Tasks (logged calls among them) and Events about the record, newest first."""
    items = _rows(conn, f"SELECT COALESCE(ActivityDate, substr(CreatedDate, 1, 10)) AS Day, Subject, CallType, "
                  f"CallDurationInSeconds, Description, CreatedDate FROM Task WHERE {column} = ? AND IsDeleted = 0 "
                  f"UNION ALL SELECT substr(COALESCE(StartDateTime, CreatedDate), 1, 10), Subject, NULL, NULL, "
                  f"Description, CreatedDate FROM Event WHERE {column} = ? AND IsDeleted = 0 "
                  f"ORDER BY 1 DESC, 6 DESC", (record_id, record_id))
    rows = "".join(
        f"<tr class='activity'><td>{escape(t['Day'] or '')}</td><td>{escape(t['Subject'] or '')}</td>"
        f"<td>{escape(t['CallType'] or '')}</td>"
        f"<td>{escape('' if t['CallDurationInSeconds'] is None else str(t['CallDurationInSeconds']) + ' s')}</td>"
        f"<td>{escape(t['Description'] or '')}</td></tr>" for t in items)
    return (f"<div class='card'><h2>Activity Timeline ({len(items)})</h2><table><tr><th>Date</th>"
            f"<th>Subject</th><th>Call Type</th><th>Duration</th><th>Description</th></tr>{rows}</table></div>")


def index_page(store: Store, limit: int = 50) -> str:
    tasks = _rows(store.conn, "SELECT t.Id, t.Subject, t.ActivityDate, t.CallType, t.CreatedDate, t.WhoId, "
                  "c.Name AS ContactName FROM Task t LEFT JOIN Contact c ON c.Id = t.WhoId WHERE t.IsDeleted = 0 "
                  "ORDER BY t.CreatedDate DESC, t.rid DESC LIMIT ?", (limit,))
    items = "".join(
        f"<tr><td>{escape(t['CreatedDate'])}</td><td>{escape(t['Subject'] or '')}</td>"
        f"<td>{escape(t['CallType'] or '')}</td><td>"
        + (f"<a href='/{escape(t['WhoId'])}'>{escape(t['ContactName'] or t['WhoId'])}</a>" if t["WhoId"] else "")
        + "</td></tr>" for t in tasks)
    counts = {name: store.count(name) for name in schema.SOBJECTS}
    summary = ", ".join(f"{escape(k)}: {v}" for k, v in counts.items())
    return _page("Salesforce emulator", f"<div class='card'><h1>Salesforce emulator</h1><div>{summary}</div></div>"
                 f"<div class='card'><h2>Newest Tasks</h2><table><tr><th>Created</th><th>Subject</th>"
                 f"<th>Call Type</th><th>Contact</th></tr>{items}</table></div>")
