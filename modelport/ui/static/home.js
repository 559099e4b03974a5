// modelport's web UI: small enhancements over server-rendered pages. Every value from the
// platform goes into the page with textContent, never as markup; the only HTML inserted is
// the server's own (autoescaped) rendering of the list on "/".
"use strict";

function say(text) {
  const status = document.getElementById("copy-status");
  if (status) status.textContent = text;
}

async function copy(text, what) {
  try {
    await navigator.clipboard.writeText(text);
    say(`Copied ${what}.`);
  } catch (error) {
    say(`Could not copy (${error.message}); select the text and copy it yourself.`);
  }
}

// "/" is the list: its main part comes from /ui/ with the visitor's cookie.
async function loadInto(main) {
  const response = await fetch(main.dataset.load, {
    headers: { Accept: "text/html", "X-Modelport-Fragment": "1" },
    credentials: "same-origin",
  });
  if (response.status === 401) {
    window.location.reload();
    return;
  }
  const text = await response.text();
  main.innerHTML = text; // the server's autoescaped HTML, from this origin
  setUp(main);
}

function setUp(root) {
  for (const range of root.querySelectorAll("input[type=range][data-output]")) {
    const output = document.getElementById(range.dataset.output);
    range.addEventListener("input", () => { output.textContent = range.value; });
  }
  const tryPanel = root.querySelector("#try");
  if (tryPanel) setUpTry(tryPanel);
  const live = root.querySelector("[data-live]");
  if (live && window.EventSource) watchStatus(live);
  const list = root.querySelector("[data-live-list]");
  if (list && window.EventSource) watchList(list);
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (button) copy(button.dataset.copy, button.dataset.what || "the URL");
});

document.addEventListener("submit", async (event) => {
  if (!event.target.matches("[data-signout]")) return;
  event.preventDefault();
  await fetch("/authservice/logout", { method: "POST", credentials: "same-origin" });
  window.location.assign("/");
});

// ---- Try it ----------------------------------------------------------------------------

function zeros(shape) {
  const dims = shape.map((d) => (d > 0 ? d : 1));
  const build = (level) => (level === dims.length ? 0 : Array.from({ length: dims[level] }, () => build(level + 1)));
  return { dims, value: build(0) };
}

function requestFor(protocol, inputs) {
  if (protocol === "v2") {
    return {
      inputs: inputs.map((input) => {
        const { dims } = zeros(input.shape);
        const count = dims.reduce((a, b) => a * b, 1);
        return { name: input.name, shape: dims, datatype: input.datatype, data: new Array(count).fill(0) };
      }),
    };
  }
  const first = inputs[0];
  return { instances: zeros(first.shape).value };
}

function shellQuote(text) {
  return `'${text.replace(/'/g, "'\\''")}'`;
}

function setUpTry(panel) {
  const base = panel.dataset.base;
  const model = panel.dataset.model;
  const protocol = document.getElementById("try-protocol");
  const body = document.getElementById("try-body");
  const meta = document.getElementById("try-meta");
  const response = document.getElementById("try-response");
  const latency = document.getElementById("try-latency");
  const curl = document.getElementById("try-curl");
  let inputs = [{ name: "input-0", shape: [1, 4], datatype: "FP64" }];

  const target = () => (protocol.value === "v2"
    ? `${base}/v2/models/${encodeURIComponent(model)}/infer`
    : `${base}/v1/models/${encodeURIComponent(model)}:predict`);
  const showCurl = () => {
    curl.textContent = `curl -H "Authorization: Bearer $(modelport token)" \\\n` +
      `     -H "Content-Type: application/json" \\\n` +
      `     -d ${shellQuote(body.value)} \\\n     ${window.location.origin}${target()}`;
  };
  const rebuild = () => {
    body.value = JSON.stringify(requestFor(protocol.value, inputs));
    showCurl();
  };

  fetch(`${base}/v2/models/${encodeURIComponent(model)}`, { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
    .then((found) => {
      if (Array.isArray(found.inputs) && found.inputs.length) inputs = found.inputs;
      const described = inputs.map((i) => `${i.name} ${i.datatype} [${i.shape.join(", ")}]`);
      meta.textContent = `Inputs from the model's metadata: ${described.join("; ")}.`;
    })
    .catch((error) => {
      meta.textContent = `The model's metadata could not be read (${error.message}); the request below is a guess: edit it.`;
    })
    .finally(rebuild);

  protocol.addEventListener("change", rebuild);
  body.addEventListener("input", showCurl);
  document.getElementById("try-reset").addEventListener("click", rebuild);
  document.getElementById("try-copy-curl").addEventListener("click", () => copy(curl.textContent, "the curl command"));
  document.getElementById("try-send").addEventListener("click", async () => {
    latency.textContent = "sending…";
    const started = performance.now();
    try {
      const r = await fetch(target(), {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: body.value,
      });
      const text = await r.text();
      const took = Math.round(performance.now() - started);
      latency.textContent = `HTTP ${r.status} in ${took} ms`;
      try {
        response.textContent = JSON.stringify(JSON.parse(text), null, 2);
      } catch {
        response.textContent = text;
      }
    } catch (error) {
      latency.textContent = "";
      response.textContent = `The request failed: ${error.message}`;
    }
  });
}

// ---- Live status -----------------------------------------------------------------------

function watchStatus(element) {
  const source = new EventSource(element.dataset.live);
  source.addEventListener("status", (event) => {
    const state = JSON.parse(event.data);
    element.textContent = `Ready: ${state.ready}`;
    element.dataset.replicas = state.replicas;
    element.className = `state state-${state.ready}`;
    element.title = state.reason || "";
  });
  source.onerror = () => { if (source.readyState === EventSource.CLOSED) element.title = "Live updates stopped."; };
}

function watchList(table) {
  const source = new EventSource(table.dataset.liveList);
  source.addEventListener("statuses", (event) => {
    const states = JSON.parse(event.data);
    const rows = table.querySelectorAll("tr[data-service]");
    for (const row of rows) {
      const badge = row.querySelector("[data-ready]");
      const state = states[row.dataset.service];
      if (badge && state) {
        badge.textContent = state;
        badge.className = `state state-${state}`;
      }
    }
    const shown = new Set(Array.from(rows, (row) => row.dataset.service));
    const changed = Object.keys(states).length !== shown.size || Object.keys(states).some((k) => !shown.has(k));
    document.getElementById("list-changed").textContent = changed
      ? "Services were added or deleted since this page was loaded: reload to see them." : "";
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const main = document.querySelector("main[data-load]");
  if (main) {
    loadInto(main).catch((error) => {
      main.textContent = `Could not load your services: ${error.message}. Reload the page to try again.`;
    });
  } else {
    setUp(document);
  }
});
