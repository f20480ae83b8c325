// The agent's screen pop. The agent signs in with Genesys (agent-signin.js); the starter
// relays their own conversations only. In an interaction widget, Genesys fills in
// {{gcConversationId}}, {{gcHostOrigin}} and {{gcTargetEnv}} in this page's URL.
import {agentFetch} from "/agent/signin.js";

const params = new URLSearchParams(location.search);
const conversationId = params.get("conversationId") || params.get("gcConversationId") || "";
const targetEnv = params.get("gcTargetEnv") || "";
const hostOrigin = params.get("gcHostOrigin") || "";
const statusEl = document.getElementById("status");
const callerEl = document.getElementById("caller");
const popped = new Set();
let config = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c == null ? "" : c);
  return node;
}

function recordUrl(contactId) { return config.recordUrl.replace("{id}", encodeURIComponent(contactId)); }

function pop(contactId) {
  // One named window: every pop reuses it instead of piling up tabs.
  window.open(recordUrl(contactId), "callbridge-crm");
}

function showCard(card) {
  callerEl.replaceChildren(el("div", {class: "card", "data-contact-id": card.contactId,
                                      "data-conversation-id": card.conversationId || ""},
    el("div", {class: "name"}, card.name || "Unknown name"),
    el("div", {class: "muted"}, card.accountName || ""),
    card.tier ? el("span", {class: "tier"}, card.tier) : "",
    el("div", {class: "muted"}, card.lastActivity ? "Last contact: " + card.lastActivity.slice(0, 10) : "No earlier contact"),
    el("button", {onclick: () => pop(card.contactId)}, "Open record")));
}

function showChooser(matches) {
  callerEl.replaceChildren(el("div", {class: "card", id: "chooser"},
    el("div", {}, matches.length + " contacts share this number — who is calling?"),
    ...matches.map(m => el("button", {"data-contact-id": m.contactId, onclick: () => { showCard(m); pop(m.contactId); }},
      (m.name || m.contactId) + (m.accountName ? " · " + m.accountName : "")))));
}

function showUnknown(ani) {
  const href = config.searchUrl.replace("{number}", encodeURIComponent(ani));
  callerEl.replaceChildren(el("div", {class: "card", id: "unknown"},
    el("div", {class: "name"}, "Unknown caller"),
    el("a", {href, target: "callbridge-crm"}, "Search the CRM for this number")));
}

async function onConversation(event) {
  if (!["alerting", "connected"].includes(event.state) || popped.has(event.conversationId)) return;
  popped.add(event.conversationId);
  document.body.dataset.conversations = [...popped].join(",");  // what this page has popped
  const a = event.attributes || {};
  let matches = [];
  if (event.ani) {
    const r = await agentFetch("lookup?phone=" + encodeURIComponent(event.ani));
    if (r.ok) matches = (await r.json()).matches;
  }
  if (a.contact_id) {
    const m = matches.find(x => x.contactId === a.contact_id) || {};
    showCard({contactId: a.contact_id, conversationId: event.conversationId, name: a.contact_name,
              accountName: a.account_name, tier: a.customer_tier, lastActivity: m.lastActivity});
    pop(a.contact_id);
  } else if (matches.length > 1) {
    showChooser(matches);
  } else if (matches.length === 1) {
    showCard({...matches[0], conversationId: event.conversationId});
    pop(matches[0].contactId);
  } else {
    showUnknown(event.ani);
  }
}

// Server-Sent Events over fetch (EventSource cannot send the agent's token as a header).
async function follow() {
  for (;;) {
    try {
      const resp = await agentFetch("events", {headers: {Accept: "text/event-stream"}});
      if (!resp.ok) throw new Error(String(resp.status));
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const data = frame.split("\n").filter(l => l.startsWith("data: ")).map(l => l.slice(6)).join("\n");
          if (!data) continue;
          const event = JSON.parse(data);
          if (event.type === "ready") statusEl.textContent = "Waiting for calls.";
          else if (event.type === "conversation") onConversation(event);
        }
      }
    } catch (err) {
      // Starter restarting or Genesys briefly away: try again shortly.
    }
    statusEl.textContent = "Reconnecting…";
    await new Promise(r => setTimeout(r, 2000));
  }
}

async function start() {
  const r = await agentFetch("config");
  if (!r.ok) { statusEl.textContent = "Sign-in failed."; return; }
  config = await r.json();
  if (targetEnv && targetEnv !== config.environment) {
    // Opened from another Genesys org or region than the one this Callbridge serves.
    statusEl.textContent = `This Callbridge serves ${config.environment}, not ${targetEnv}.`;
    return;
  }
  if (hostOrigin && config.appsOrigin && hostOrigin !== config.appsOrigin) {
    // Embedded by something else than this org's Genesys apps.
    statusEl.textContent = `This Callbridge serves ${config.appsOrigin}, not ${hostOrigin}.`;
    return;
  }
  document.body.dataset.agentId = config.agentId;
  if (conversationId) {
    const c = await agentFetch("conversation?conversationId=" + encodeURIComponent(conversationId));
    statusEl.textContent = c.ok ? "" : "Conversation not found.";
    if (c.ok) onConversation({...(await c.json()), state: "connected"});
    return;
  }
  follow();
}
start();
