"""Bulk API 2.0 query jobs: create, status, CSV results paged with Sforce-Locator.

Jobs run at creation against the store and complete at once (state JobComplete from the
first status call); results are read page by page from the compiled query.
"""

from __future__ import annotations

import base64
import csv
import io
from dataclasses import dataclass, field

from . import ids, soql
from .errors import ApiError, not_found
from .store import Store, now_iso

_DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
_LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}


@dataclass
class QueryJob:
    info: dict
    compiled: soql.Compiled
    total: int
    headers: list[str]
    anchors: dict[int, int] = field(default_factory=dict)  # offset -> rowid before it (keyset paging)


class BulkJobs:
    def __init__(self) -> None:
        self.jobs: dict[str, QueryJob] = {}
        self.seq = 0

    def create(self, store: Store, body: object, version: str, user_id: str) -> dict:
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            raise ApiError(400, "INVALIDJOB", "Job must specify a query")
        operation = body.get("operation", "query")
        if operation not in ("query", "queryAll"):
            raise ApiError(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
        delimiter = body.get("columnDelimiter", "COMMA")
        line_ending = body.get("lineEnding", "LF")
        if delimiter not in _DELIMITERS or line_ending not in _LINE_ENDINGS or body.get("contentType", "CSV") != "CSV":
            raise ApiError(400, "INVALIDJOB", "InvalidJob : unsupported contentType, columnDelimiter or lineEnding")
        compiled = soql.compile_query(body["query"], include_deleted=operation == "queryAll", version=version)
        if compiled.count_only or compiled.children:
            # Bulk API 2.0 refuses aggregate COUNT() and parent-to-child subqueries.
            raise ApiError(400, "INVALIDJOB", "InvalidJob : COUNT() and relationship subqueries are not supported "
                           "by Bulk API 2.0 queries")
        headers = [".".join(col.path) for col in compiled.columns]
        self.seq += 1
        job_id = ids.make_id("750", self.seq)
        now = now_iso()
        info = {"id": job_id, "operation": operation, "object": compiled.sobject.name, "createdById": user_id,
                "createdDate": now, "systemModstamp": now, "state": "UploadComplete", "concurrencyMode": "Parallel",
                "contentType": "CSV", "apiVersion": float(version), "lineEnding": line_ending,
                "columnDelimiter": delimiter}
        total = soql.total_size(store.conn, compiled)
        self.jobs[job_id] = QueryJob(info, compiled, total, headers)
        return dict(info)

    def get(self, job_id: str) -> QueryJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise not_found()
        return job

    def status(self, job_id: str) -> dict:
        job = self.get(job_id)
        if job.info["state"] == "UploadComplete":
            job.info["state"] = "JobComplete"
            job.info["systemModstamp"] = now_iso()
        return {**job.info, "jobType": "V2Query", "numberRecordsProcessed": job.total, "retries": 0,
                "totalProcessingTime": 0, "isPkChunkingSupported": True}

    def results(self, store: Store, job_id: str, params: dict) -> tuple[str, dict]:
        job = self.get(job_id)
        if job.info["state"] not in ("JobComplete", "UploadComplete"):
            raise ApiError(400, "INVALIDJOB", f"InvalidJob : Job is in state {job.info['state']}")
        job.info["state"] = "JobComplete"
        start = 0
        if params.get("locator"):
            try:
                start = int(base64.b64decode(params["locator"]).decode())
            except ValueError:
                raise ApiError(400, "INVALIDLOCATOR", "InvalidLocator : Invalid locator") from None
        max_records = int(params.get("maxRecords") or 50_000)
        records, last_rid = soql.fetch_page(store.conn, job.compiled, start, max_records,
                                            after_rid=job.anchors.get(start))
        out = io.StringIO()
        writer = csv.writer(out, delimiter=_DELIMITERS[job.info["columnDelimiter"]],
                            lineterminator=_LINE_ENDINGS[job.info["lineEnding"]], quoting=csv.QUOTE_ALL)
        writer.writerow(job.headers)
        for rec in records:
            writer.writerow([_csv_value(_walk(rec, h.split("."))) for h in job.headers])
        end = start + len(records)
        if last_rid is not None:
            job.anchors[end] = last_rid
        locator = base64.b64encode(str(end).encode()).decode() if end < job.total else "null"
        return out.getvalue(), {"Sforce-Locator": locator, "Sforce-NumberOfRecords": str(len(records)),
                                "Content-Type": "text/csv"}

    def list(self) -> dict:
        return {"done": True, "records": [dict(j.info) for j in self.jobs.values()], "nextRecordsUrl": None}

    def abort(self, job_id: str, body: object) -> dict:
        job = self.get(job_id)
        if not isinstance(body, dict) or body.get("state") != "Aborted":
            raise ApiError(400, "INVALIDJOB", "InvalidJob : only state Aborted may be set")
        job.info["state"] = "Aborted"
        return dict(job.info)

    def delete(self, job_id: str) -> None:
        self.get(job_id)
        del self.jobs[job_id]


def _walk(rec: dict | None, path: list[str]) -> object:
    cur: object = rec
    for part in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
