// Maskscope front end: token tooltip and keyboard walk, permalink, copy-out, known templates.
// Design concession: one delegated listener per concern, so chips need no per-token handlers or
// markup; everything a chip shows in its tooltip comes from its class and data attributes.
(() => {
  "use strict";

  const ROLES = { s: "system", u: "user", a: "assistant", o: "tool", n: "(outside messages)" };
  const UNSHOW = { "·": " ", "↵": "\n", "→": "\t" };

  // ---------- chips: exact text, label, tooltip ----------
  // Token chips sit in runs (blocks laid out only when visible) under `.chips[data-tokens]`;
  // legend samples share the chip styles but not that marker, so they get no tooltip.
  const isChip = (el) => el instanceof HTMLElement && el.tagName === "SPAN"
    && el.parentElement?.classList.contains("run")
    && el.parentElement.parentElement?.matches(".chips[data-tokens]");

  const indexOf = (el) => Number(el.parentElement.dataset.o)
    + Array.prototype.indexOf.call(el.parentElement.children, el);

  function chipAt(box, i) {
    const runs = box.children;
    for (let r = runs.length - 1; r >= 0; r -= 1) {
      const start = Number(runs[r].dataset.o);
      if (i >= start) return runs[r].children[i - start] ?? null;
    }
    return null;
  }

  // A chip's label is its id when trained, else -100, unless data-l gives the row's own label
  // (a pre-tokenized row whose labels are shifted, or otherwise differ from its ids).
  const labelOf = (el) => (el.dataset.l !== undefined ? Number(el.dataset.l)
    : el.classList.contains("t") ? Number(el.dataset.id) : -100);

  function chipInfo(el) {
    const id = Number(el.dataset.id);
    const trained = el.classList.contains("t");
    const roleClass = el.classList[0];
    const text = el.dataset.x
      ?? JSON.stringify(Array.from(el.textContent, (c) => UNSHOW[c] ?? c).join(""));
    return {
      index: indexOf(el), id, trained, text,
      label: labelOf(el),
      role: el.dataset.r ?? ROLES[roleClass] ?? roleClass,
      message: el.dataset.m ?? "—",
      special: el.classList.contains("k"),
      escaped: el.classList.contains("e"),
      part: el.classList.contains("q") ? "reasoning" : el.classList.contains("f") ? "tool call"
        : el.classList.contains("au") ? "audio" : el.classList.contains("i") ? "image" : "",
    };
  }

  const tip = document.createElement("div");
  tip.id = "tip";
  tip.setAttribute("role", "tooltip");
  tip.hidden = true;

  function showTip(el) {
    const i = chipInfo(el);
    const flags = [i.special ? "special token" : "", i.escaped ? "shown escaped: " + el.textContent : ""]
      .filter(Boolean).join(" · ");
    tip.textContent = `#${i.index}  id ${i.id}  label ${i.label}${i.trained ? "" : " (not trained)"}\n`
      + `role ${i.role} · message ${i.message}${i.part ? " · " + i.part : ""}`
      + `${flags ? "\n" + flags : ""}\ntext ${i.text}`;
    if (!tip.isConnected) document.body.append(tip);
    tip.hidden = false;
    const r = el.getBoundingClientRect();
    const t = tip.getBoundingClientRect();
    const left = Math.min(Math.max(4, r.left), window.innerWidth - t.width - 4);
    const below = r.bottom + 6 + t.height < window.innerHeight;
    tip.style.left = `${left}px`;
    tip.style.top = `${below ? r.bottom + 6 : Math.max(4, r.top - t.height - 6)}px`;
    el.setAttribute("aria-describedby", "tip");
  }

  function hideTip() { tip.hidden = true; }

  document.addEventListener("mouseover", (e) => { if (isChip(e.target)) showTip(e.target); });
  document.addEventListener("mouseout", (e) => { if (isChip(e.target)) hideTip(); });
  document.addEventListener("focusin", (e) => { if (isChip(e.target)) showTip(e.target); else hideTip(); });

  // Roving focus: the chip run is one tab stop; arrows walk it, Home/End jump, Escape leaves.
  function moveTo(box, el) {
    if (!el) return;
    box.querySelectorAll("span[tabindex]").forEach((c) => c.removeAttribute("tabindex"));
    el.tabIndex = 0;
    el.focus();
    el.scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  document.addEventListener("keydown", (e) => {
    const box = e.target.matches?.(".chips[data-tokens]") ? e.target
      : isChip(e.target) ? e.target.parentElement.parentElement : null;
    if (!box) return;
    // Walk the box's chips in order: a compare cell holds one message's tokens, which need not
    // be contiguous indices (Llama 2 folds the system prompt into the first user turn).
    const chips = box.querySelectorAll(".run > span");
    const at = isChip(e.target) ? Array.prototype.indexOf.call(chips, e.target) : -1;
    const last = chips.length - 1;
    const jump = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: 10, ArrowUp: -10 }[e.key];
    if (jump !== undefined) {
      moveTo(box, chips[Math.min(last, Math.max(0, at < 0 ? 0 : at + jump))]);
    } else if (e.key === "Home") {
      moveTo(box, chips[0]);
    } else if (e.key === "End") {
      moveTo(box, chips[last]);
    } else if (e.key === "Escape") {
      hideTip();
      box.focus();
    } else {
      return;
    }
    e.preventDefault();
  });

  // ---------- copy-out ----------
  async function copyText(text, status) {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const area = Object.assign(document.createElement("textarea"), { value: text });
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    if (status) status.textContent = "Copied";
    setTimeout(() => { if (status) status.textContent = ""; }, 1500);
  }

  function chipArrays(scope) {
    const chips = Array.from(document.querySelectorAll(`${scope} .chips[data-tokens] .run > span`));
    return {
      input_ids: chips.map((c) => Number(c.dataset.id)),
      labels: chips.map(labelOf),
    };
  }

  document.addEventListener("click", (e) => {
    const btn = e.target.closest?.("button[data-copy]");
    if (!btn) return;
    const status = document.querySelector(btn.dataset.status || "#copy-status");
    const what = btn.dataset.copy;
    if (what === "permalink") return copyText(window.location.href, status);
    const arrays = chipArrays(btn.dataset.scope || "#result");
    const value = what === "both" ? arrays : arrays[what];
    copyText(JSON.stringify(value), status);
  });

  // ---------- lint findings point at their tokens ----------
  document.addEventListener("click", (e) => {
    const btn = e.target.closest?.("button[data-show-tokens]");
    if (!btn) return;
    const box = document.querySelector("#result .chips[data-tokens]");
    if (!box) return;
    box.querySelectorAll("span.hl").forEach((c) => c.classList.remove("hl"));
    const wanted = JSON.parse(btn.dataset.showTokens);
    wanted.forEach((i) => chipAt(box, i)?.classList.add("hl"));
    moveTo(box, chipAt(box, wanted[0]));
  });

  // ---------- editors (the conversation's turns: static/js/editor.js) ----------
  function changed(form) { form.dispatchEvent(new Event("change", { bubbles: true })); }

  // An image's repeated tokens show as one chip with its count; a click (or Enter / Space on the
  // focused chip) shows or hides them.
  function toggleRepeats(first) {
    const open = first.classList.toggle("open");
    first.setAttribute("aria-expanded", String(open));
    let el = first;
    for (let n = Number(first.dataset.rep) - 1; n > 0; n--) {
      el = el.nextElementSibling ?? el.parentElement.nextElementSibling?.firstElementChild;
      if (!el) break;
      el.classList.toggle("ih", !open);
    }
  }
  document.addEventListener("click", (e) => {
    const first = e.target.closest?.(".chips span[data-rep]");
    if (first) toggleRepeats(first);
  });
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Enter" && e.key !== " ") return;
    const first = e.target.closest?.(".chips span[data-rep]");
    if (!first) return;
    e.preventDefault();
    toggleRepeats(first);
  });

  // "Start from a known template": the list is fetched on first use, the source on choice.
  document.addEventListener("focusin", async (e) => {
    const pick = e.target.closest?.("select[data-known-templates]");
    if (!pick || pick.dataset.loaded) return;
    pick.dataset.loaded = "1";
    const res = await fetch("/api/templates");
    if (!res.ok) return;
    for (const t of await res.json()) {
      if (!t.available) continue;
      pick.append(new Option(t.name, t.name));
    }
  });

  document.addEventListener("change", async (e) => {
    const pick = e.target.closest?.("select[data-known-templates]");
    if (!pick || !pick.value) return;
    const res = await fetch("/api/templates/" + pick.value);
    const box = pick.closest(".template-editor")?.querySelector("textarea[name=template]");
    if (!res.ok || !box) return;
    box.value = (await res.json()).source;
    const dialect = pick.form?.querySelector("select[name=dialect]");
    if (dialect && [...dialect.options].some((o) => o.value === "custom")) dialect.value = "custom";
    pick.value = "";
    changed(pick.form);
  });

  // "Start from this tokenizer's template": the chosen tokenizer's own template, to edit.
  document.addEventListener("click", async (e) => {
    const btn = e.target.closest?.("button[data-own-template]");
    const form = btn?.form;
    const box = btn?.closest(".template-editor")?.querySelector("textarea[name=template]");
    const tokenizer = form?.querySelector("[name=tokenizer]")?.value;
    if (!btn || !box || !tokenizer) return;
    const status = btn.parentElement.querySelector("[data-own-template-status]");
    const res = await fetch(`/api/templates/tokenizer?tokenizer=${encodeURIComponent(tokenizer)}`);
    const body = await res.json();
    if (!res.ok) {
      if (status) status.textContent = body.error?.message ?? `${res.status}`;
      return;
    }
    box.value = body.source;
    if (status) status.textContent = `${tokenizer}'s template loaded`;
    changed(form);
  });

  // Compare columns: clone the last one (or the template) on add; keep at least one.
  document.addEventListener("click", (e) => {
    const btn = e.target.closest?.("button[data-column]");
    if (!btn) return;
    const form = btn.form;
    const box = form.querySelector(".targets");
    if (btn.dataset.column === "add") {
      const last = box.lastElementChild;
      const node = (last || document.getElementById("target-template").content.firstElementChild)
        .cloneNode(true);
      if (last) {
        // cloneNode copies attributes, not the live selection of each select.
        last.querySelectorAll("select").forEach((sel, i) => { node.querySelectorAll("select")[i].value = sel.value; });
      }
      box.append(node);
      node.querySelector("select").focus();
    } else if (box.children.length > 1) {
      btn.closest(".target").remove();
    }
    changed(form);
  });

  // ---------- results announced: one short sentence in a live region, not the whole result ----------
  function announcement(box) {
    const error = box.querySelector(".error");
    if (error) return "Error: " + error.textContent.trim().replace(/\s+/g, " ");
    const stat = (name) => Array.from(box.querySelectorAll(`[data-stat=${name}]`), (e) => e.textContent);
    const tokens = stat("tokens");
    const trained = stat("trained");
    const rows = box.querySelectorAll(".brow").length;
    const differs = box.querySelectorAll("tr.differs").length;
    if (tokens.length > 1) {
      return `${tokens.length} columns: ${tokens.map((t, i) => `${t} tokens, ${trained[i]} trained`).join("; ")}`
        + `. ${differs} row${differs === 1 ? "" : "s"} differ.`;
    }
    if (tokens.length === 1) return `${tokens[0]} tokens, ${trained[0]} trained.`;
    if (rows) return `${rows} rows built.`;
    return "";
  }

  document.addEventListener("htmx:afterSwap", (e) => {
    const target = e.detail?.target;
    if (!(target instanceof HTMLElement) || !target.id) return;
    document.querySelectorAll(`[data-announce="#${target.id}"]`).forEach((live) => {
      live.textContent = announcement(target);
    });
  });

  // ---------- forms say what is wrong where it is wrong ----------
  // A field the browser refuses (max_length 0, -5, 1.5) stops htmx's request: the field is
  // outlined with the message beside it, and the result it would have replaced is marked out of
  // date. A field the server refuses (its error names it) is marked the same way.
  function markField(field, message) {
    const id = `error-${field.name}`;
    let note = document.getElementById(id);
    if (!note) {
      note = Object.assign(document.createElement("span"), { id, className: "field-error" });
      field.after(note);
    }
    note.textContent = message;
    field.setAttribute("aria-invalid", "true");
    field.setAttribute("aria-describedby", id);
  }

  function clearField(field) {
    document.getElementById(`error-${field.name}`)?.remove();
    field.removeAttribute("aria-invalid");
    field.removeAttribute("aria-describedby");
  }

  const fieldMessage = (field) => field.dataset.invalid || field.validationMessage;

  document.addEventListener("htmx:validation:halted", (e) => {
    const form = e.target.closest?.("form");
    (e.detail?.errors || []).forEach(({ elt }) => markField(elt, fieldMessage(elt)));
    const target = form && document.querySelector(form.getAttribute("hx-target"));
    if (!target || target.dataset.stale !== undefined) return;
    target.dataset.stale = "";
    const note = Object.assign(document.createElement("p"), {
      className: "stale-note",
      textContent: "Not updated: fix the marked field first; what is shown below is the last valid result.",
    });
    note.setAttribute("role", "alert");
    target.prepend(note);
  });

  document.addEventListener("input", (e) => {
    const field = e.target;
    if (field instanceof HTMLInputElement && field.hasAttribute("aria-invalid") && field.checkValidity()) {
      clearField(field);
    }
  });

  document.addEventListener("htmx:afterSwap", (e) => {
    const target = e.detail?.target;
    if (!(target instanceof HTMLElement) || !target.id) return;
    delete target.dataset.stale;
    const form = document.querySelector(`form[hx-target="#${target.id}"]`);
    if (!form) return;
    form.querySelectorAll("[aria-invalid]").forEach(clearField);
    const named = target.querySelector(".error[data-field]")?.dataset.field;
    const field = named && form.elements.namedItem(named);
    if (field instanceof HTMLElement && "name" in field) {
      markField(field, target.querySelector(".error .message")?.textContent ?? "");
    }
  });

  // ---------- tokenizer picker: bundled names, or a local folder / Hub id typed in ----------
  function showAvail(select) {
    const note = select.closest(".tokenizer-pick")?.querySelector(".avail");
    if (note) note.textContent = select.selectedOptions[0]?.dataset.avail ?? "";
  }

  function useTyped(pick) {
    const entry = pick.querySelector("[data-tokenizer-entry]");
    const select = pick.querySelector("select[data-tokenizer-select]");
    const value = entry?.value.trim();
    if (!value || !select) return;
    let option = [...select.options].find((o) => o.value === value);
    if (!option) {
      option = select.querySelector("option[data-free]") ?? select.appendChild(new Option());
      option.dataset.free = "";
      option.dataset.avail = "local folder or Hub id: loaded when rendered";
      option.value = value;
      option.textContent = value;
    }
    select.value = value;
    showAvail(select);
    select.dispatchEvent(new Event("change", { bubbles: true }));
  }

  document.addEventListener("click", (e) => {
    const btn = e.target.closest?.("button[data-tokenizer-use]");
    if (btn) useTyped(btn.closest(".tokenizer-pick"));
  });
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Enter" || !e.target.matches?.("[data-tokenizer-entry]")) return;
    e.preventDefault();
    useTyped(e.target.closest(".tokenizer-pick"));
  });
  document.addEventListener("change", (e) => {
    if (e.target.matches?.("select[data-tokenizer-select]")) showAvail(e.target);
  });

  // ---------- Inspect takes the conversation being edited as a one-row dataset ----------
  const CARRIED = "maskscope.carried-row";
  document.addEventListener("click", async (e) => {
    const link = e.target.closest?.("a[data-carry-row]");
    const form = document.querySelector("form[data-permalink]");
    if (!link || !form || !form.querySelector("[name=role]")) return;
    e.preventDefault();
    const query = new URLSearchParams(new FormData(form)).toString();
    try {
      const res = await fetch(`/fragments/conversation.jsonl?${query}`);
      if (res.ok) sessionStorage.setItem(CARRIED, JSON.stringify({ row: await res.text(), query }));
    } catch { /* no storage or no answer: Inspect opens empty, as a plain link would */ }
    window.location.href = link.href;
  });

  function receiveRow() {
    const file = document.querySelector("form.inspect-form input[type=file][name=file]");
    let carried = null;
    try {
      carried = JSON.parse(sessionStorage.getItem(CARRIED) || "null");
      sessionStorage.removeItem(CARRIED);
    } catch { return; }
    if (!file || !carried) return;
    const form = file.form;
    const files = new DataTransfer();
    files.items.add(new File([carried.row], "conversation.jsonl", { type: "application/jsonl" }));
    file.files = files.files;
    const query = new URLSearchParams(carried.query);
    for (const name of ["tokenizer", "dialect", "template", "train_on", "max_length"]) {
      const field = form.elements.namedItem(name);
      if (field && query.has(name) && "value" in field) field.value = query.get(name);
    }
    const eot = form.querySelector("input[name=train_on_eot]");
    if (eot) eot.checked = query.has("train_on_eot");
    const note = Object.assign(document.createElement("p"), {
      className: "hint",
      textContent: "The conversation you were editing is loaded as a one-row dataset "
        + "(conversation.jsonl), with its tokenizer and settings: press Inspect.",
    });
    note.dataset.carried = "";
    file.closest("label")?.after(note);
  }

  // ---------- view choices that outlive the page (the playground's layout) ----------
  function restoreChoices() {
    document.querySelectorAll("input[type=checkbox][data-remember]").forEach((box) => {
      const key = `maskscope.${box.dataset.remember}`;
      try {
        box.checked = localStorage.getItem(key) === "1";
        box.addEventListener("change", () => localStorage.setItem(key, box.checked ? "1" : "0"));
      } catch { /* storage disabled: the choice lasts for this page only */ }
    });
  }

  // ---------- batch grids: the rows of one group scroll together ----------
  document.addEventListener("scroll", (e) => {
    const box = e.target;
    if (!(box instanceof HTMLElement) || !box.matches(".bscroll")) return;
    box.closest("[data-sync-scroll]")?.querySelectorAll(".bscroll").forEach((other) => {
      if (other !== box && other.scrollLeft !== box.scrollLeft) other.scrollLeft = box.scrollLeft;
    });
  }, true);

  // ---------- permalink: the form state lives in the URL ----------
  const MAX_URL = 8000;
  // The conversation and settings travel with the main links (Playground, Compare, Batch, Jobs);
  // what only one page has (its batch text, its compare columns) stays on that page.
  const PAGE_ONLY = /^(conversations|padding_side|pack_length|target_.*)$/;
  function carry(data, form) {
    const shared = new URLSearchParams([...data].filter(([key]) => !PAGE_ONLY.test(key)));
    if (!shared.has("role")) {
      // No conversation here (the batch page): carry the settings as a hand-made link, which
      // keeps the next page's own conversation; an unticked box is said so explicitly.
      shared.delete("v");
      form?.querySelectorAll("input[type=checkbox][name]").forEach((box) => {
        if (!box.checked && !PAGE_ONLY.test(box.name)) shared.set(box.name, "off");
      });
    }
    document.querySelectorAll("a[data-carry]").forEach((link) => {
      const url = `${link.pathname}?${shared}`;
      link.href = url.length <= MAX_URL ? url : link.pathname;
    });
  }

  // A turn's optional fields left empty (reasoning_2=, image_width_0=...) mean the same as
  // absent (app/views/forms.py), so the permalink leaves them out; tool-call rows stay whole.
  const OPTIONAL_TURN_FIELD = /^(reasoning|tool_name|tool_call_id|image_width|image_height|audio_seconds)_\d+$/;
  function syncUrl(form) {
    const data = new URLSearchParams(
      [...new FormData(form)].filter(([name, value]) => value !== "" || !OPTIONAL_TURN_FIELD.test(name)),
    );
    const url = `${window.location.pathname}?${data}`;
    const note = document.getElementById("permalink-note");
    const fits = url.length <= MAX_URL;
    if (fits) window.history.replaceState(null, "", url);
    if (note) note.hidden = fits;
    carry(data, form);
  }

  function wirePermalink() {
    document.querySelectorAll("form[data-permalink]").forEach((form) => {
      ["input", "change"].forEach((type) => form.addEventListener(type, () => syncUrl(form)));
      carry(new URLSearchParams(new FormData(form)), form);
    });
  }

  function start() {
    wirePermalink();
    restoreChoices();
    receiveRow();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
