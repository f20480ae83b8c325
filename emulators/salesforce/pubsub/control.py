"""Control endpoints of the emulator's change event bus (not part of Salesforce's API)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from emulators.salesforce import schema
from emulators.salesforce.errors import ApiError

FAULT_KEYS = {"drop_after", "gap"}


def mount_pubsub_control(app: FastAPI, emu) -> None:
    bus = emu.pubsub

    @app.get("/_emulator/pubsub")
    async def state() -> dict:
        async with emu.write_lock:
            last, before_oldest = bus.bounds()
            stored = emu.store.conn.execute("SELECT COUNT(*) FROM _change_events").fetchone()[0]
        return {"events": stored, "last_replay": last, "oldest_replay": before_oldest + 1,
                "faults": bus.faults, "rpcs": bus.rpcs}

    @app.post("/_emulator/pubsub/faults")
    async def set_faults(request: Request) -> JSONResponse:
        """{"drop_after": N} ends every open Subscribe stream (UNAVAILABLE) after N more events;
        {"gap": "gap" | "overflow"} publishes changes from now on as GAP_* / GAP_OVERFLOW events;
        null clears one."""
        body = await request.json()
        if not isinstance(body, dict) or set(body) - FAULT_KEYS:
            return JSONResponse({"error": f"known faults: {sorted(FAULT_KEYS)}"}, status_code=400)
        if body.get("gap") not in (None, "gap", "overflow"):
            return JSONResponse({"error": "gap: 'gap', 'overflow' or null"}, status_code=400)
        for key, value in body.items():
            if value is None:
                bus.faults.pop(key, None)
            else:
                bus.faults[key] = value
        return JSONResponse(bus.faults)

    @app.delete("/_emulator/pubsub/faults")
    async def clear_faults() -> dict:
        bus.faults.clear()
        return {}

    @app.post("/_emulator/pubsub/age")
    async def age(request: Request) -> dict:
        """{"hours": H}: every stored event becomes H hours older (past 72, it is purged)."""
        hours = float((await request.json())["hours"])
        async with emu.write_lock:
            return {"aged": bus.age(hours)}

    @app.post("/_emulator/undelete/{type_name}/{record_id}")
    async def undelete(type_name: str, record_id: str) -> JSONResponse:
        """What the Recycle Bin's Undelete (or the SOAP API's undelete()) does."""
        obj = schema.SOBJECTS.get(type_name)
        if obj is None:
            return JSONResponse({"error": f"unknown sObject {type_name}"}, status_code=404)
        async with emu.write_lock:
            emu.store.call_origin = ""
            try:
                return JSONResponse({"id": emu.store.undelete(obj, record_id)})
            except ApiError as exc:
                return JSONResponse(exc.body(), status_code=exc.status)
