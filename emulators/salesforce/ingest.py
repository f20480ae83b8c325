"""Bulk API 2.0 ingest jobs: `delete` and `hardDelete` (Bulk API 2.0 Developer Guide,
"Create a Job", "Upload Job Data", "Close or Abort a Job", "Get Job Info", "Get Job
Successful/Failed Record Results").

`hardDelete` needs the "Bulk API Hard Delete" system permission (PermissionsBulkApiHardDelete;
disabled in a new org, our integration user's permission set grants it). Without it the job is
refused with FEATURENOTENABLED, the code the Salesforce CLI (plugin-data, `data delete bulk
--hard-delete`) recognises for that case. Hard-deleted records skip the recycle bin: queryAll
never sees them again; they are "immediately eligible for deletion", so getDeleted reports
them until the next purge (aging.purge_recycle_bin) removes that trace too.

Jobs are processed when closed (UploadComplete): the first status call says JobComplete.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from . import ids, schema
from .errors import ApiError, not_found
from .store import CASCADE_DELETE, SET_NULL_ON_DELETE, Store, keep_rid_floor, now_iso, q

HARD_DELETE_PERMISSION = "PermissionsBulkApiHardDelete"
_OPERATIONS = ("delete", "hardDelete")


@dataclass
class IngestJob:
    info: dict
    data: list[str] = field(default_factory=list)
    succeeded: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def create_hard_deleted_log(store: Store) -> None:
    store.conn.execute("CREATE TABLE IF NOT EXISTS _hard_deleted (sobject TEXT NOT NULL, Id TEXT NOT NULL, "
                       "deletedDate TEXT NOT NULL)")


class IngestJobs:
    def __init__(self) -> None:
        self.jobs: dict[str, IngestJob] = {}
        self.seq = 0
        self.hard_delete_permitted = True

    def create(self, body: object, version: str, user_id: str) -> dict:
        if not isinstance(body, dict) or not isinstance(body.get("object"), str):
            raise ApiError(400, "INVALIDJOB", "InvalidJob : Job must specify an object")
        operation = body.get("operation")
        if operation not in _OPERATIONS:
            raise ApiError(400, "INVALIDJOB", f"InvalidJob : the emulator supports only {', '.join(_OPERATIONS)}, "
                           f"not {operation}")
        obj = schema.sobject(body["object"])
        if obj is None:
            raise ApiError(400, "INVALIDJOB", f"InvalidJob : Unable to find object: {body['object']}")
        if body.get("contentType", "CSV") != "CSV" or body.get("columnDelimiter", "COMMA") != "COMMA" or \
                body.get("lineEnding", "LF") not in ("LF", "CRLF"):
            raise ApiError(400, "INVALIDJOB", "InvalidJob : unsupported contentType, columnDelimiter or lineEnding")
        if operation == "hardDelete" and not self.hard_delete_permitted:
            raise ApiError(400, "FEATURENOTENABLED", "The Bulk API Hard Delete permission is required for the "
                           "hardDelete operation")
        self.seq += 1
        job_id = ids.make_id("750", 5000 + self.seq)
        now = now_iso()
        info = {"id": job_id, "operation": operation, "object": obj.name, "createdById": user_id,
                "createdDate": now, "systemModstamp": now, "state": "Open", "concurrencyMode": "Parallel",
                "contentType": "CSV", "apiVersion": float(version), "jobType": "V2Ingest",
                "contentUrl": f"services/data/v{version}/jobs/ingest/{job_id}/batches",
                "lineEnding": body.get("lineEnding", "LF"), "columnDelimiter": "COMMA"}
        self.jobs[job_id] = IngestJob(info)
        return info

    def job(self, job_id: str) -> IngestJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise not_found()
        return job

    def upload(self, job_id: str, text: object) -> None:
        job = self.job(job_id)
        if job.info["state"] != "Open":
            raise ApiError(409, "INVALIDJOBSTATE", "Job's state must be Open to upload data")
        if not isinstance(text, str):
            raise ApiError(400, "INVALIDBATCH", "InvalidBatch : the request body must be CSV")
        rows = list(csv.reader(io.StringIO(text)))
        if not rows or [h.strip().lower() for h in rows[0]] != ["id"]:
            raise ApiError(400, "INVALIDBATCH", "InvalidBatch : The 'delete' batch must contain only ids")
        job.data += [r[0].strip() for r in rows[1:] if r and r[0].strip()]

    def close(self, store: Store, job_id: str, body: object, record_fault=lambda obj, rid: None) -> dict:
        job = self.job(job_id)
        state = body.get("state") if isinstance(body, dict) else None
        if state == "Aborted":
            job.info["state"] = "Aborted"
            return self._info(job)
        if state != "UploadComplete" or job.info["state"] != "Open":
            raise ApiError(400, "INVALIDJOBSTATE", f"Can't change the job's state to {state}")
        job.info["state"] = "UploadComplete"
        out = self._info(job)
        self._process(store, job, record_fault)
        job.info["state"] = "JobComplete"
        return out

    def _process(self, store: Store, job: IngestJob, record_fault) -> None:
        """Each record on its own; an admin fault rule for a record's DELETE fails just that
        record, reported in failedResults as Salesforce reports per-record errors."""
        obj = schema.SOBJECTS[job.info["object"]]
        hard = job.info["operation"] == "hardDelete"
        for raw in job.data:
            try:
                rid = ids.to18(raw)
            except ValueError:
                job.failed.append((raw, "MALFORMED_ID:malformed id " + raw + ":--"))
                continue
            fault = record_fault(obj.name, rid)
            if fault is not None:
                code = "ENTITY_IS_DELETED" if fault.status == 404 else fault.error_code
                job.failed.append((rid, f"{code}:{fault.message}:--"))
                continue
            try:
                if hard:
                    hard_delete(store, obj, rid)
                else:
                    store.delete(obj, rid)
                job.succeeded.append(rid)
            except ApiError as exc:
                code = "ENTITY_IS_DELETED" if exc.status == 404 else exc.error_code
                job.failed.append((rid, f"{code}:{exc.message}:--"))

    def _info(self, job: IngestJob) -> dict:
        done = job.info["state"] == "JobComplete"
        return {**job.info, "numberRecordsProcessed": len(job.succeeded) + len(job.failed) if done else 0,
                "numberRecordsFailed": len(job.failed) if done else 0, "retries": 0,
                "totalProcessingTime": 0, "apiActiveProcessingTime": 0, "apexProcessingTime": 0}

    def status(self, job_id: str) -> dict:
        return self._info(self.job(job_id))

    def results(self, job_id: str, kind: str) -> str:
        job = self.job(job_id)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
        if kind == "successfulResults":
            writer.writerow(["sf__Id", "sf__Created", "Id"])
            writer.writerows([rid, "false", rid] for rid in job.succeeded)
        elif kind == "failedResults":
            writer.writerow(["sf__Id", "sf__Error", "Id"])
            writer.writerows(["", error, rid] for rid, error in job.failed)
        else:
            raise not_found()
        return out.getvalue()

    def delete(self, job_id: str) -> None:
        self.job(job_id)
        del self.jobs[job_id]


def hard_delete(store: Store, obj: schema.SObject, rid: str) -> None:
    """Remove a record (live or in the recycle bin) and the children a delete cascades to,
    leaving only getDeleted's trace until the next purge."""
    with store.write():
        row = store.conn.execute(f"SELECT Id FROM {q(obj.name)} WHERE Id = ?", (rid,)).fetchone()
        if row is None:
            raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
        now = now_iso()
        targets = [(obj.name, "Id")] + [(child, fk) for child, fk in CASCADE_DELETE.get(obj.name, ())]
        for table, column in targets:
            store.conn.execute("INSERT INTO _hard_deleted (sobject, Id, deletedDate) "
                               f"SELECT ?, Id, ? FROM {q(table)} WHERE {q(column)} = ?", (table, now, rid))
            keep_rid_floor(store.conn, table)
            store.conn.execute(f"DELETE FROM {q(table)} WHERE {q(column)} = ?", (rid,))
        for child, fk in SET_NULL_ON_DELETE.get(obj.name, ()):
            store.conn.execute(f"UPDATE {q(child)} SET {q(fk)} = NULL, SystemModstamp = ? WHERE {q(fk)} = ?",
                               (now, rid))
