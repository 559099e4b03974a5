// Fills the page from the control API with the visitor's own session (same origin).
// Every value goes in with textContent: a service name can never become markup.
"use strict";

async function getJSON(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (r.status === 401) { window.location.reload(); throw new Error("signed out"); }
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function age(timestamp) {
  const seconds = Math.max(0, (Date.now() - Date.parse(timestamp)) / 1000);
  if (seconds < 120) return `${Math.round(seconds)}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86400)}d`;
}

function ready(item) {
  const found = ((item.status || {}).conditions || []).find((c) => c.type === "Ready");
  return found ? found.status : "Unknown";
}

function examples(item) {
  const origin = window.location.origin;
  const { name, namespace } = item.metadata;
  const host = new URL(item.status.url || `http://${name}.${namespace}.example.com`).host;
  return [
    `modelport infer ${name} -n ${namespace} -d '{"instances": [[6.8, 2.8, 4.8, 1.4]]}'`,
    `curl -H "Authorization: Bearer $(modelport token)" -H "Host: ${host}" \\\n` +
      `     -d @input.json ${origin}/v1/models/${name}:predict`,
    `curl -H "Authorization: Bearer $(modelport token)" \\\n` +
      `     -d @input.json ${origin}/serving/${namespace}/${name}/v2/models/${name}/infer`,
  ].join("\n\n");
}

async function main() {
  document.getElementById("login-cmd").textContent = `modelport login ${window.location.origin}`;
  const status = document.getElementById("status");
  try {
    const [services, namespaces] = await Promise.all([
      getJSON("/api/v1/inferenceservices"),
      getJSON("/api/v1/namespaces"),
    ]);
    const names = namespaces.items.map((n) => `${n.name} (${n.role})`);
    document.getElementById("namespaces").textContent = names.join(", ") || "none yet";
    const items = services.items;
    if (items.length === 0) {
      status.textContent = "No InferenceServices in your namespaces yet.";
      return;
    }
    status.hidden = true;
    const table = document.getElementById("services");
    const body = table.tBodies[0];
    for (const item of items) {
      const row = body.insertRow();
      cell(row, item.metadata.namespace);
      cell(row, item.metadata.name);
      const state = ready(item);
      cell(row, state, `ready-${state}`);
      cell(row, (item.status || {}).url || "");
      cell(row, age(item.metadata.creationTimestamp));
    }
    table.hidden = false;
    document.getElementById("examples").textContent = examples(items[0]);
  } catch (error) {
    status.textContent = `Could not load your services: ${error.message}`;
  }
}

main();

// Sign out with the gateway's logout API (oidc-authservice's POST), then reload: the
// platform then asks for a login again.
document.querySelector("header form").addEventListener("submit", async (event) => {
  event.preventDefault();
  await fetch("/authservice/logout", { method: "POST", credentials: "same-origin" });
  window.location.assign("/");
});
