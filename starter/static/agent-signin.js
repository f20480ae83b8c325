// Agent sign-in for Callbridge pages: Genesys OAuth authorization code grant with PKCE
// (RFC 7636, S256), as Genesys browser apps do. The token is kept in this tab's
// sessionStorage and sent to the starter as a bearer header, never in a URL.
const KEY = "callbridge.agent";

function b64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function config() {
  const resp = await fetch("/agent/config");
  if (!resp.ok) throw new Error("sign-in settings unavailable");
  return resp.json();
}

// The agent's token: the stored one, else off to the Genesys login (the page reloads after).
export async function agentToken() {
  const token = sessionStorage.getItem(KEY + ".token");
  if (token) return token;
  const cfg = await config();
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(48)));
  const state = b64url(crypto.getRandomValues(new Uint8Array(16)));
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem(KEY + ".verifier", verifier);
  sessionStorage.setItem(KEY + ".state", state);
  sessionStorage.setItem(KEY + ".return", location.pathname + location.search);
  const query = new URLSearchParams({response_type: "code", client_id: cfg.clientId, redirect_uri: cfg.redirectUri,
                                     state, code_challenge: challenge, code_challenge_method: "S256"});
  location.assign(`${cfg.loginUrl}/oauth/authorize?${query}`);
  return new Promise(() => {});  // the page is leaving
}

export function signOut() {
  sessionStorage.removeItem(KEY + ".token");
}

// fetch() with the agent's token; a refused token (expired) signs in again.
export async function agentFetch(url, options = {}) {
  const token = await agentToken();
  const resp = await fetch(url, {...options, headers: {...(options.headers || {}), Authorization: `Bearer ${token}`}});
  if (resp.status === 401) {
    signOut();
    await agentToken();
  }
  return resp;
}

// On /agent/signed-in: redeem the code with the verifier, then back to the page that asked.
export async function completeSignIn() {
  const params = new URLSearchParams(location.search);
  const expected = sessionStorage.getItem(KEY + ".state");
  if (params.get("error")) throw new Error(params.get("error_description") || params.get("error"));
  if (!params.get("code") || !expected || params.get("state") !== expected) throw new Error("sign-in was not started here");
  const cfg = await config();
  const resp = await fetch(`${cfg.loginUrl}/oauth/token`, {
    method: "POST",
    headers: {"Content-Type": "application/x-www-form-urlencoded"},
    body: new URLSearchParams({grant_type: "authorization_code", code: params.get("code"), redirect_uri: cfg.redirectUri,
                               client_id: cfg.clientId, code_verifier: sessionStorage.getItem(KEY + ".verifier")}),
  });
  if (!resp.ok) throw new Error("Genesys refused the sign-in");
  sessionStorage.setItem(KEY + ".token", (await resp.json()).access_token);
  sessionStorage.removeItem(KEY + ".verifier");
  sessionStorage.removeItem(KEY + ".state");
  // Only a path on this site: never an open redirect.
  const back = sessionStorage.getItem(KEY + ".return") || "/desktop/";
  location.replace(/^\/(?![\/\\])/.test(back) && !back.includes("\\") ? back : "/desktop/");
}
