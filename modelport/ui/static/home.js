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
  const metrics = root.querySelector("#metrics[data-src]");
  if (metrics) watchMetrics(metrics);
  const logs = root.querySelector("#logs[data-stream]");
  if (logs && window.EventSource) followLogs(logs);
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

  fetch(`${base}/openai/v1/models`, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then((r) => (r.ok ? r.json() : null))
    .then((found) => {
      // Every model server answers this route; only an OpenAI-style model is listed in it.
      const listed = found && Array.isArray(found.data) && found.data.some((m) => m && m.id === model);
      if (listed) setUpChat(base, model);
    })
    .catch(() => {});
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

// ---- Chat, for models that answer OpenAI's API ------------------------------------------

function setUpChat(base, model) {
  const panel = document.getElementById("chat");
  const log = document.getElementById("chat-log");
  const input = document.getElementById("chat-input");
  const latency = document.getElementById("chat-latency");
  const curl = document.getElementById("chat-curl");
  const url = `${base}/openai/v1/chat/completions`;
  let messages = [];
  panel.hidden = false;
  // A chat model is tried by chatting: the panel goes first.
  document.getElementById("try-meta").after(panel);
  const say = (role, content) => {
    const item = document.createElement("li");
    item.className = role;
    item.textContent = content;
    log.append(item);
  };
  const showCurl = (body) => {
    curl.textContent = `curl -H "Authorization: Bearer $(modelport token)" \\\n` +
      `     -H "Content-Type: application/json" \\\n` +
      `     -d ${shellQuote(JSON.stringify(body))} \\\n     ${window.location.origin}${url}`;
  };
  document.getElementById("chat-clear").addEventListener("click", () => {
    messages = [];
    log.textContent = "";
    latency.textContent = "";
  });
  document.getElementById("chat-send").addEventListener("click", async () => {
    const text = input.value.trim();
    if (!text) return;
    messages.push({ role: "user", content: text });
    say("user", text);
    input.value = "";
    const body = { model, messages };
    showCurl(body);
    latency.textContent = "waiting for the model…";
    const started = performance.now();
    try {
      const r = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
      });
      const answer = await r.json();
      latency.textContent = `HTTP ${r.status} in ${Math.round(performance.now() - started)} ms`;
      if (!r.ok) {
        say("assistant", `Error: ${(answer.error && answer.error.message) || JSON.stringify(answer)}`);
        return;
      }
      const reply = answer.choices[0].message;
      messages.push({ role: reply.role || "assistant", content: reply.content });
      say("assistant", reply.content);
    } catch (error) {
      latency.textContent = `The request failed: ${error.message}`;
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

// ---- Metrics: drawn from the platform's samples -----------------------------------------

function draw(canvas, lines) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 300;
  const height = canvas.clientHeight || 140;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  g.clearRect(0, 0, width, height);
  const values = lines.flatMap((l) => l.points.map((p) => p[1]).filter((v) => v !== null));
  const highest = Math.max(0, ...values);
  const top = highest > 0 ? highest * 1.15 : 1;
  const times = lines.flatMap((l) => l.points.map((p) => p[0]));
  const start = Math.min(...times);
  const span = Math.max(1, Math.max(...times) - start);
  g.strokeStyle = "#d8dee4";
  g.fillStyle = "#57606a";
  g.font = "11px system-ui, sans-serif";
  g.beginPath(); g.moveTo(30, 4); g.lineTo(30, height - 14); g.lineTo(width, height - 14); g.stroke();
  g.fillText(top >= 10 ? String(Math.round(top)) : top.toPrecision(2), 0, 12);
  g.fillText("0", 18, height - 14);
  for (const line of lines) {
    g.strokeStyle = line.color;
    g.lineWidth = 2;
    g.beginPath();
    let drawing = false;
    for (const [t, v] of line.points) {
      if (v === null) { drawing = false; continue; }
      const x = 30 + ((t - start) / span) * (width - 34);
      const y = height - 14 - (v / top) * (height - 22);
      if (drawing) g.lineTo(x, y); else g.moveTo(x, y);
      drawing = true;
    }
    g.stroke();
    // Each sample as a dot too: a lone sample has no line to show it.
    g.fillStyle = line.color;
    for (const [t, v] of line.points) {
      if (v === null) continue;
      const x = 30 + ((t - start) / span) * (width - 34);
      const y = height - 14 - (v / top) * (height - 22);
      g.beginPath(); g.arc(x, y, 2.5, 0, 2 * Math.PI); g.fill();
    }
  }
}

function watchMetrics(container) {
  const state = document.getElementById("metrics-state");
  const show = (samples) => {
    for (const figure of container.querySelectorAll("figure[data-series]")) {
      const series = figure.dataset.series;
      const unit = figure.dataset.unit;
      const lines = series === "latency"
        ? [{ color: "#0b62c4", points: samples.map((s) => [s.t, s.p50_ms]) },
          { color: "#b42318", points: samples.map((s) => [s.t, s.p99_ms]) }]
        : [{ color: "#0b62c4", points: samples.map((s) => [s.t, s[series]]) }];
      draw(figure.querySelector("canvas"), lines);
      const last = samples[samples.length - 1];
      let text = "—";
      if (last && series === "latency") {
        text = last.p50_ms === null ? "no requests" : `${last.p50_ms.toFixed(1)} / ${last.p99_ms.toFixed(1)} ms`;
      } else if (last && last[series] !== null) {
        text = `${last[series]}${unit ? ` ${unit}` : ""}`;
      }
      figure.querySelector("[data-latest]").textContent = text;
    }
  };
  const poll = async () => {
    try {
      const r = await fetch(container.dataset.src, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const body = await r.json();
      show(body.samples);
      state.textContent = `${body.samples.length} samples, one every ${body.interval_s} s, while this page is open.`;
      window.setTimeout(poll, body.interval_s * 1000);
    } catch (error) {
      state.textContent = `The metrics could not be read (${error.message}).`;
    }
  };
  poll();
}

// ---- Logs: a live tail ----------------------------------------------------------------

const MAX_LOG_LINES = 2000;

function followLogs(pre) {
  const state = document.getElementById("logs-state");
  const resume = document.getElementById("logs-resume");
  let lines = [];
  let file = "";
  let fresh = true;
  const source = new EventSource(pre.dataset.stream);
  state.textContent = "Following the logs live…";
  source.addEventListener("line", (event) => {
    const { file: from, line } = JSON.parse(event.data);
    if (fresh) { lines = []; file = ""; fresh = false; }
    if (from !== file) { lines.push(`==> ${from} <==`); file = from; }
    lines.push(line);
    if (lines.length > MAX_LOG_LINES) lines = lines.slice(-MAX_LOG_LINES);
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent = `${lines.join("\n")}\n`;
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  });
  const stop = (why) => {
    source.close();
    state.textContent = why;
    resume.hidden = false;
  };
  source.addEventListener("end", (event) => stop(`Live tail stopped: ${JSON.parse(event.data).reason}`));
  // Each response is short; EventSource reconnects by itself and the tail goes on.
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) stop("Live tail stopped: the connection was lost.");
  };
  resume.onclick = () => { resume.hidden = true; followLogs(pre); };
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
