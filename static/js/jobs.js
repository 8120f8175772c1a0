// Maskscope jobs: the fine-tune form (presets -> JSON body -> POST /api/jobs) and one job's live
// view (Server-Sent Events -> progress per arm, phase, tokens/s, training and held-out loss curves
// drawn as inline SVG, the answers before training as soon as they exist).
// Design concession: the chart is a few dozen lines of SVG rather than a charting library; it
// only ever shows one or two curves of at most a few thousand points.
(() => {
  "use strict";

  const SVG = "http://www.w3.org/2000/svg";
  const ARM_STYLE = {
    neftune: { cls: "arm-neftune", label: "NEFTune" },
    plain: { cls: "arm-plain", label: "no noise" },
    baseline: { cls: "arm-baseline", label: "baseline (no noise)" },
  };
  const FINISHED = ["succeeded", "failed", "cancelled"];

  // ---------- the form ----------
  function readJson(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function applyPreset(form, preset) {
    const spec = preset.spec;
    for (const [name, value] of Object.entries(spec)) {
      const field = form.elements[name];
      if (!field || typeof value === "object") continue;
      if (field.type === "checkbox") field.checked = Boolean(value);
      else field.value = value ?? "";
    }
    const inline = Boolean(spec.data && spec.data.conversations);
    form.elements.data_source.value = inline ? "inline" : "demo";
    form.elements.conversations.value = inline
      ? spec.data.conversations.map((c) => JSON.stringify({ messages: c })).join("\n") : "";
    form.dataset.extra = JSON.stringify({
      tokenizer: spec.tokenizer ?? null, sample_prompts: spec.sample_prompts ?? null,
    });
  }

  function parseConversations(text) {
    const trimmed = text.trim();
    if (!trimmed) throw new Error("Paste at least one conversation, or choose the demo dataset.");
    if (trimmed.startsWith("[")) return JSON.parse(trimmed);
    return trimmed.split("\n").filter((line) => line.trim()).map((line, i) => {
      try { return JSON.parse(line); } catch (err) { throw new Error(`Line ${i + 1}: ${err.message}`); }
    });
  }

  function specFromForm(form) {
    const f = form.elements;
    const number = (name) => Number(f[name].value);
    const extra = JSON.parse(form.dataset.extra || "{}");
    const data = f.data_source.value === "demo"
      ? { dataset: "demo" } : { conversations: parseConversations(f.conversations.value) };
    const spec = {
      model: f.model.value.trim(), dialect: f.dialect.value, train_on: f.train_on.value, data,
      steps: number("steps"), batch_size: number("batch_size"), max_length: number("max_length"),
      learning_rate: number("learning_rate"), neftune_alpha: number("neftune_alpha"),
      neftune_mode: f.neftune_mode.value, seed: number("seed"),
      compare_baseline: f.compare_baseline.checked, pack: f.pack.checked,
    };
    if (f.eval_examples.value !== "") spec.eval_examples = number("eval_examples");
    if (f.eval_every.value !== "") spec.eval_every = number("eval_every");
    if (extra.tokenizer) spec.tokenizer = extra.tokenizer;
    if (extra.sample_prompts && data.conversations) spec.sample_prompts = extra.sample_prompts;
    return spec;
  }

  function showError(box, message) {
    box.replaceChildren();
    if (!message) return;
    const div = document.createElement("div");
    div.className = "error";
    div.setAttribute("role", "alert");
    div.textContent = message;
    box.append(div);
  }

  function wireForm(form) {
    const presets = readJson("job-presets") || [];
    const picker = form.elements.preset;
    const pick = () => {
      const preset = presets.find((p) => p.name === picker.value);
      if (preset) applyPreset(form, preset);
    };
    picker.addEventListener("change", pick);
    pick();
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const status = document.getElementById("form-status");
      const errors = document.getElementById("form-error");
      let spec;
      try { spec = specFromForm(form); } catch (err) { showError(errors, err.message); return; }
      showError(errors, "");
      status.textContent = "submitting…";
      const response = await fetch("/api/jobs", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Idempotency-Key": crypto.randomUUID() },
        body: JSON.stringify(spec),
      });
      const body = await response.json();
      status.textContent = "";
      if (response.status === 202) window.location.assign(`/jobs/${body.id}`);
      else showError(errors, body.error ? body.error.message : `Error ${response.status}`);
    });
  }

  // ---------- the chart ----------
  function el(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function niceTicks(lo, hi, count) {
    const span = hi - lo || 1;
    const step = 10 ** Math.floor(Math.log10(span / count));
    const unit = [1, 2, 5, 10].map((m) => m * step).find((s) => span / s <= count) || step * 10;
    const ticks = [];
    for (let v = Math.ceil(lo / unit) * unit; v <= hi + 1e-9; v += unit) ticks.push(+v.toFixed(6));
    return ticks;
  }

  // One series per arm and kind: training loss (thin, every step) and held-out loss (thick, with
  // dots, at intervals). A series of one point is drawn as a dot, not as an invisible path.
  function seriesOf(metrics) {
    const series = {};
    for (const m of metrics) {
      const kind = m.loss !== null && m.loss !== undefined ? "train" : "eval";
      const value = kind === "train" ? m.loss : m.eval_loss;
      if (value === null || value === undefined) continue;
      (series[`${m.arm}:${kind}`] ||= { arm: m.arm, kind, points: [] }).points.push({ step: m.step, value });
    }
    return Object.values(series);
  }

  function drawChart(svg, metrics, totalSteps) {
    const W = 720, H = 280, L = 52, R = 16, T = 14, B = 40;
    svg.replaceChildren();
    const series = seriesOf(metrics);
    const points = series.flatMap((s) => s.points);
    if (!points.length) {
      svg.append(el("text", { x: W / 2, y: H / 2, class: "chart-empty", "text-anchor": "middle" },
        "The curve appears with the first optimizer step."));
      return;
    }
    const first = Math.min(1, ...points.map((p) => p.step));
    const maxStep = Math.max(totalSteps || 1, ...points.map((p) => p.step));
    let lo = Math.min(...points.map((p) => p.value)), hi = Math.max(...points.map((p) => p.value));
    const pad = (hi - lo) * 0.08 || 0.1;
    lo -= pad; hi += pad;
    const x = (s) => L + ((s - first) / Math.max(1, maxStep - first)) * (W - L - R);
    const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
    for (const v of niceTicks(lo, hi, 5)) {
      svg.append(el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
      svg.append(el("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "tick" }, String(v)));
    }
    for (const s of niceTicks(first, maxStep, 8).filter((s) => s >= first)) {
      svg.append(el("text", { x: x(s), y: H - B + 16, "text-anchor": "middle", class: "tick" }, String(s)));
    }
    svg.append(el("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle", class: "axis" }, "optimizer step"));
    svg.append(el("text", { x: 12, y: T + (H - T - B) / 2, "text-anchor": "middle", class: "axis",
      transform: `rotate(-90 12 ${T + (H - T - B) / 2})` }, "loss"));
    let legendX = L + 8;
    for (const s of series) {
      const style = ARM_STYLE[s.arm] || { cls: "arm-plain", label: s.arm };
      const label = s.kind === "eval" ? `${style.label}, held-out` : style.label;
      const cls = `curve ${s.kind} ${style.cls}`;
      const title = `${label}: last loss ${s.points.at(-1).value.toFixed(4)} at step ${s.points.at(-1).step}`;
      if (s.points.length > 1) {
        const d = s.points.map((p, i) => `${i ? "L" : "M"}${x(p.step).toFixed(1)},${y(p.value).toFixed(1)}`).join("");
        const path = el("path", { d, class: cls });
        path.append(el("title", {}, title));
        svg.append(path);
      }
      if (s.kind === "eval" || s.points.length === 1) {
        for (const p of s.points) {
          const dot = el("circle", { cx: x(p.step).toFixed(1), cy: y(p.value).toFixed(1), r: 3.5, class: `point ${s.kind} ${style.cls}` });
          dot.append(el("title", {}, `${label}: ${p.value.toFixed(4)} at step ${p.step}`));
          svg.append(dot);
        }
      }
      svg.append(el("line", { x1: legendX, x2: legendX + 22, y1: T + 6, y2: T + 6, class: cls }));
      svg.append(el("text", { x: legendX + 28, y: T + 10, class: "legend-text" }, label));
      legendX += 40 + label.length * 6.5;
    }
  }

  // ---------- one job, live ----------
  // Samples, artifacts and error come as a server-rendered (escaped) fragment when the job ends.
  async function refreshResults(id) {
    const response = await fetch(`/jobs/${id}/results`, { headers: { "HX-Request": "true" } });
    if (response.ok) document.getElementById("results").innerHTML = await response.text();
  }

  function wireJob(article) {
    const job = readJson("job-data");
    const metrics = job.metrics || [];
    const svg = document.getElementById("loss-chart");
    const bar = document.getElementById("job-progress");
    const stepText = document.getElementById("job-step");
    const badge = document.getElementById("job-status");
    const cancel = document.getElementById("cancel");

    const showStats = () => {
      const trained = metrics.filter((m) => m.loss !== null && m.loss !== undefined);
      const last = trained.at(-1);
      if (last) document.getElementById("stat-tps").textContent = Math.round(last.tokens_per_s).toLocaleString();
      for (const m of trained) {
        const id = m.arm === "neftune" ? "stat-loss-neftune" : "stat-loss-other";
        document.getElementById(id).textContent = m.loss.toFixed(3);
      }
    };
    const showProgress = (p) => {
      bar.max = p.total_steps;
      bar.value = p.step;
      const arms = p.arms || [];
      stepText.textContent = arms.length
        ? arms.map((a, i) => `arm ${i + 1}${arms.length > 1 ? ` (${(ARM_STYLE[a.arm] || { label: a.arm }).label})` : ""}: ${a.step}/${a.steps}`).join(" · ")
        : `${p.step}/${p.total_steps}`;
      if (p.phase) document.getElementById("job-phase").textContent = p.phase;
    };
    const setStatus = (status) => {
      badge.textContent = status;
      badge.className = `badge ${status}`;
      article.dataset.status = status;
      cancel.hidden = FINISHED.includes(status);
    };
    drawChart(svg, metrics, job.spec.steps);
    showStats();
    cancel.addEventListener("click", async () => {
      cancel.disabled = true;
      const response = await fetch(`/api/jobs/${job.id}/cancel`, { method: "POST" });
      const body = await response.json();
      if (response.ok) setStatus(body.status === "running" ? "stopping at the next step…" : body.status);
      cancel.disabled = false;
    });
    if (FINISHED.includes(job.status)) return;

    // The stream starts after the last metric the page was rendered with; a reconnect resumes
    // from Last-Event-ID. Seqs still de-duplicate, so no point is ever drawn twice.
    const seen = new Set(metrics.map((m) => m.seq));
    const after = Math.max(0, ...seen);
    const source = new EventSource(`/api/jobs/${job.id}/events?after=${after}`);
    source.addEventListener("metric", (event) => {
      const m = JSON.parse(event.data);
      if (seen.has(m.seq)) return;
      seen.add(m.seq);
      metrics.push(m);
      drawChart(svg, metrics, job.spec.steps);
      showStats();
    });
    source.addEventListener("progress", (event) => {
      const p = JSON.parse(event.data);
      showProgress(p);
      if (p.device) document.getElementById("stat-device").textContent = p.device;
    });
    // The answers before training are shown as soon as they exist, not when the job ends.
    source.addEventListener("samples", () => refreshResults(job.id));
    source.addEventListener("status", (event) => {
      const s = JSON.parse(event.data);
      if (!badge.textContent.startsWith("stopping") || FINISHED.includes(s.status)) setStatus(s.status);
      if (FINISHED.includes(s.status)) {
        if (s.progress) showProgress(s.progress);
        document.getElementById("job-phase").textContent = s.status === "succeeded" ? "done" : s.status;
        source.close();
        refreshResults(job.id);
      }
    });
  }

  function localTimes() {
    document.querySelectorAll("time[data-epoch]").forEach((t) => {
      t.textContent = new Date(Number(t.dataset.epoch) * 1000).toLocaleString();
    });
  }

  function init() {
    const form = document.getElementById("job-form");
    if (form) wireForm(form);
    const article = document.getElementById("job");
    if (article) wireJob(article);
    localTimes();
    document.body.addEventListener("htmx:afterSwap", localTimes);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
