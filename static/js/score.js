// Per-token scores on the playground's chips: a model picker (none, smollm2, finished jobs) and a
// view switch (labels / loss / probability / before vs after). The editor form is turned into
// the /api/score body by the server (/fragments/score-request, the parser the render fragment
// uses), the picked model is added, and /api/score answers per token; the chips are shaded by
// index (a run's data-o plus the chip's place in it: hidden image repeats stay in the DOM, so
// indices hold) and the tooltip app.js writes gets the token's logprob, probability, entropy.
// Design concession: scores are kept in memory here, not written onto 8k chips as attributes;
// a re-render (htmx swap of #result) scores again while a model is picked.
(() => {
  "use strict";

  const model = document.getElementById("score-model");
  const view = document.getElementById("score-view");
  const status = document.getElementById("score-status");
  const form = document.getElementById("playground");
  if (!model || !view || !status || !form) return;
  const change = view.querySelector('option[value="change"]');
  let scores = null; // { count, logprob: [], entropy: [], base: [] | null }
  let seq = 0;

  const fmt = (x, digits = 3) => (x === null || x === undefined ? "—" : Number(x).toFixed(digits));
  const chipBox = () => document.querySelector("#result .chips[data-tokens]");

  function eachChip(box, fn) {
    for (const run of box.children) {
      const start = Number(run.dataset.o);
      Array.prototype.forEach.call(run.children, (el, k) => fn(el, start + k));
    }
  }

  function shade(i) {
    const lp = scores.logprob[i];
    if (lp === null || lp === undefined) return "";
    if (view.value === "loss") return `rgba(220, 38, 38, ${Math.min(1, -lp / 8) * 0.85})`;
    if (view.value === "probability") return `rgba(22, 163, 74, ${Math.exp(lp) * 0.85})`;
    if (view.value === "change" && scores.base) {
      const before = scores.base[i];
      if (before === null || before === undefined) return "";
      const worse = before - lp; // loss after minus loss before
      const alpha = Math.min(1, Math.abs(worse) / 4) * 0.85;
      return worse > 0 ? `rgba(220, 38, 38, ${alpha})` : `rgba(37, 99, 235, ${alpha})`;
    }
    return "";
  }

  function paint() {
    const box = chipBox();
    if (!box) return;
    const on = scores && view.value !== "labels";
    box.toggleAttribute("data-scored", Boolean(on));
    eachChip(box, (el, i) => {
      const colour = on && i < scores.count ? shade(i) : "";
      el.style.backgroundColor = colour;
      el.classList.toggle("scored", Boolean(colour));
    });
  }

  async function errorText(res) {
    try {
      const body = await res.json();
      const err = body.error || {};
      return `${res.status}: ${err.message || res.statusText}`;
    } catch {
      return `${res.status} ${res.statusText}`;
    }
  }

  async function score() {
    const mine = ++seq;
    if (!model.value) {
      scores = null;
      status.textContent = "";
      paint();
      return;
    }
    status.textContent = `scoring with ${model.value}…`;
    const posted = await fetch("/fragments/score-request", {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
    });
    if (mine !== seq) return;
    if (!posted.ok) { status.textContent = await errorText(posted); return; }
    const body = await posted.json();
    body.model = model.value;
    body.compare_base = model.value.startsWith("job:") && view.value === "change";
    body.format = "columns"; // parallel arrays: a few bytes per token, not an object each
    const res = await fetch("/api/score", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (mine !== seq) return;
    if (!res.ok) { status.textContent = await errorText(res); return; }
    const data = await res.json();
    scores = {
      count: data.ids.length,
      logprob: data.logprobs,
      entropy: data.entropies,
      base: data.base_logprobs || null,
    };
    const stats = data.stats;
    const modelLints = data.lints.filter((f) => f.code === "model-does-not-stop"
      || f.code === "extreme-token-loss");
    status.textContent = `mean trained loss ${fmt(stats.mean_trained_loss)}`
      + (scores.base ? ` (before: ${fmt(stats.base_mean_trained_loss)})` : "")
      + (modelLints.length ? ` · ${modelLints.map((f) => f.code).join(", ")}` : "");
    status.title = modelLints.map((f) => f.message).join("\n");
    paint();
  }

  async function listJobs() {
    try {
      const res = await fetch("/api/jobs");
      if (!res.ok) return;
      for (const job of (await res.json()).jobs) {
        if (job.status !== "succeeded") continue; // one without a saved model: a clear 422
        model.append(new Option(`job ${job.id} (${job.spec.model})`, `job:${job.id}`));
      }
    } catch {
      // no job list: the picker keeps none and smollm2
    }
  }

  model.addEventListener("change", () => {
    const job = model.value.startsWith("job:");
    if (change) change.disabled = !job;
    if (!job && view.value === "change") view.value = "loss";
    if (model.value && view.value === "labels") view.value = "loss";
    score();
  });
  view.addEventListener("change", () => {
    if (view.value === "change" && scores && !scores.base) score();
    else paint();
  });
  document.body.addEventListener("htmx:afterSwap", (e) => {
    if (e.detail?.target?.id === "result" && model.value) score();
  });

  // app.js writes the tooltip first (its listeners were added earlier); this adds the scores.
  function addToTip(e) {
    const el = e.target;
    const tip = document.getElementById("tip");
    if (!scores || !tip || tip.hidden || !(el instanceof HTMLElement)) return;
    const run = el.parentElement;
    if (!run?.classList.contains("run") || !run.parentElement?.matches(".chips[data-tokens]")) return;
    const i = Number(run.dataset.o) + Array.prototype.indexOf.call(run.children, el);
    if (i >= scores.count) return;
    const lp = scores.logprob[i];
    let line = lp === null ? "\nfirst token: nothing predicts it"
      : `\nlogprob ${fmt(lp)} · probability ${fmt(Math.exp(lp), 4)} · entropy ${fmt(scores.entropy[i])}`;
    if (scores.base && scores.base[i] !== null) line += `\nbefore: logprob ${fmt(scores.base[i])}`;
    tip.textContent += line;
  }
  document.addEventListener("mouseover", addToTip);
  document.addEventListener("focusin", addToTip);

  listJobs();
})();
